"""The `/watch` commands as plain functions, shared by Slack, Discord and the CLI.

Each returns a `Reply` (bot/reply.py): lines of spans that the caller renders
for its platform (Slack mrkdwn, Discord markdown, terminal text). Nothing
here escapes or formats for a platform; the caller's platform is explicit in
`CommandContext.platform` and decides only who may change terms and what
source a new term records.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.channels import display_channel
from bot.config import Config
from bot.match import Matcher
from bot.messages import format_time
from bot.query import Query, QueryError, parse_query
from bot.reply import (
    Bold,
    Code,
    Command,
    Platform,
    Reply,
    ReplyBuilder,
    Text,
    Time,
    User,
    reply,
    starred,
    with_code,
)
from bot.store import FeedRow, Store
from bot.watchlist import added_term_scope

MAX_TERMS_PER_CHANNEL = 500
RECENT_ITEMS_SCANNED = 500
PREVIEW_ITEMS = 5


def help_reply() -> Reply:
    b = ReplyBuilder()
    b.line(Bold("newshound"), " watches news feeds and posts one alert per matching story here.")
    b.bullet(
        Command("add", "QUERY"),
        " - watch a term in this channel, e.g. ",
        Command("add", "trade deal"),
    )
    b.bullet(Command("remove", "QUERY"), " - stop watching a term")
    b.bullet(Command("list"), " - terms this channel watches")
    b.bullet(Command("test", "QUERY"), " - show recent stories a query would match (adds nothing)")
    b.bullet(Command("feeds"), " - the feeds and their health")
    b.bullet(Command("help"), " - this text")
    b.line(
        "Query language: words side by side form a phrase (",
        Code("trade deal"),
        ' also matches "Trade-Deal"); the last word also matches plurals (',
        Code("tariff"),
        " → tariffs); ",
        Code('"quotes"'),
        " for the exact form; ",
        Code("a OR b"),
        " for either; ",
        Code("-word"),
        " to exclude stories mentioning it.",
    )
    return b.build()


@dataclass
class CommandContext:
    store: Store
    config: Callable[[], Config]
    platform: Platform = "cli"
    clock: Callable[[], float] = time.time
    # Why the bot could not post alerts to a channel (None = it can).
    channel_problem: Callable[[str], str | None] | None = None
    # Why alerts to a channel are held back right now (a destination marked
    # broken), shown by `feeds`; None when nothing is held.
    destination_problem: Callable[[str], str | None] | None = None


def _check_manager(ctx: CommandContext, user: str | None) -> Reply | None:
    if ctx.platform == "cli":
        return None  # whoever runs the shell command runs newshound
    managers = ctx.config().settings.managers
    if managers and user not in managers:
        return reply(
            "Sorry, only the people listed as managers in feeds.yaml can change the watch "
            "terms here. Ask one of them, or use ",
            Command("test"),
            " to try a query.",
            ok=False,
        )
    return None


def _parse(text: str) -> Query | Reply:
    try:
        return parse_query(text)
    except QueryError as exc:
        return reply(f"Can't use that query: {exc}.", ok=False)


def _preview(
    ctx: CommandContext, query: Query, channel: str, limit: int = PREVIEW_ITEMS
) -> list[tuple[str, float]]:
    """Recent stored stories the query matches, from the feeds it would watch:
    (title, published or first seen)."""
    matcher: Matcher[int] = Matcher([(0, query)])
    titles = {row.url: row.title for row in ctx.store.feeds.all() if row.title}
    scope = added_term_scope(ctx.config(), channel, titles)
    recent = ctx.store.stories.recent(RECENT_ITEMS_SCANNED)
    carriers = ctx.store.stories.feeds_carrying([s.id for s in recent]) if scope is not None else {}
    found: list[tuple[str, float]] = []
    for stored in recent:
        if scope is not None and not carriers.get(stored.id, set()) & scope:
            continue  # only in feeds this channel does not watch
        if matcher.match(stored.item):
            found.append((stored.item.title, stored.item.published or stored.first_seen_at))
            if len(found) >= limit:
                break
    return found


def _add_preview(b: ReplyBuilder, found: list[tuple[str, float]]) -> None:
    for title, when in found:
        b.bullet(Text(title), " (", Time(when), ")")


def _symbols_note(b: ReplyBuilder, text: str, parsed: Query) -> None:
    """A one-line note when the query holds symbols or emoji, which matching
    skips (only letters and digits count): `🚀 launch` matches "launch".
    Symbols that are part of a name (the + of C++) are not skipped."""
    kept = {ch for phrase in (*parsed.include, *parsed.exclude) for w in phrase.words for ch in w}
    symbols: list[str] = []
    for ch in text:
        if unicodedata.category(ch).startswith("S") and ch not in symbols and ch not in kept:
            symbols.append(ch)
    if symbols:
        shown = " ".join(symbols[:5]) + (" …" if len(symbols) > 5 else "")
        b.line(f"Note: symbols and emoji ({shown}) are ignored when matching.")


def _acronyms_note(b: ReplyBuilder, parsed: Query) -> None:
    """Which words the term takes as acronyms (SPEC §3: written in capitals)."""
    if parsed.acronyms:
        b.line(
            "Acronyms (matched only where a story writes them in capitals): ",
            ", ".join(parsed.acronyms),
            ". Write a word in lower case to match it in any case.",
        )


def watch_add(ctx: CommandContext, channel: str, text: str, user: str | None = None) -> Reply:
    refused = _check_manager(ctx, user)
    if refused:
        return refused
    parsed = _parse(text)
    if isinstance(parsed, Reply):
        return parsed
    existing = ctx.store.terms.find(channel, parsed.text)
    if existing is not None:
        where: list[Text | Command] = (
            [Text("feeds.yaml")]
            if existing.source == "config"
            else [Text("an earlier "), Command("add")]
        )
        return reply(
            "This channel already watches ", *starred(parsed.describe()), " (from ", *where, ")."
        )
    if ctx.channel_problem is not None:
        problem = ctx.channel_problem(channel)
        if problem:
            return reply(*with_code(problem), ok=False)
    source = ctx.platform
    by = user if ctx.platform != "cli" else None
    limit = MAX_TERMS_PER_CHANNEL
    if not ctx.store.terms.add(channel, parsed.text, source, by, ctx.clock(), limit=limit):
        if ctx.store.terms.find(channel, parsed.text) is not None:  # added meanwhile
            return reply("This channel already watches ", *starred(parsed.describe()), ".")
        return reply(
            f"This channel already has {MAX_TERMS_PER_CHANNEL} terms, the most it can have. "
            "Remove some with ",
            Command("remove"),
            " first.",
            ok=False,
        )
    b = ReplyBuilder().line("Now watching ", *starred(parsed.describe()), " in this channel.")
    _acronyms_note(b, parsed)
    _symbols_note(b, text, parsed)
    preview = _preview(ctx, parsed, channel)
    if preview:
        b.line("Recent stories it would have matched:")
        _add_preview(b, preview)
    else:
        b.line("No recent stored story matches it yet; new ones will be posted here.")
    return b.build()


def watch_remove(ctx: CommandContext, channel: str, text: str, user: str | None = None) -> Reply:
    refused = _check_manager(ctx, user)
    if refused:
        return refused
    if not text.strip():
        return reply(
            "Say which term to remove, e.g. ", Command("remove", "trade deal"), ".", ok=False
        )
    existing = ctx.store.terms.find(channel, text.strip())
    if existing is None:
        return reply(
            "This channel doesn't watch ",
            Code(text.strip()),
            ". ",
            Command("list"),
            " shows its terms.",
            ok=False,
        )
    if existing.source == "config":
        if ctx.platform == "cli":  # the shell's user runs newshound: say what to edit
            return reply(
                Code(existing.term),
                " comes from feeds.yaml: remove it from that watch's terms there "
                "(then `newshound check`, and SIGHUP or restart a running service).",
                ok=False,
            )
        return reply(
            Code(existing.term),
            " comes from feeds.yaml, so it can't be removed from "
            "here. Ask whoever runs newshound to remove it from the config file.",
            ok=False,
        )
    ctx.store.terms.remove(channel, existing.term)
    return reply("Stopped watching ", Code(existing.term), " in this channel.")


def watch_list(ctx: CommandContext, channel: str) -> Reply:
    rows = ctx.store.terms.all(channel)
    if not rows:
        return reply(
            "This channel watches no terms yet. Add one with ", Command("add", "QUERY"), "."
        )
    config_rows = [r for r in rows if r.source == "config"]
    added_rows = [r for r in rows if r.source != "config"]
    b = ReplyBuilder().line(f"Terms watched in {display_channel(channel)}:")
    if config_rows:
        b.line("From feeds.yaml:")
        for r in config_rows:
            b.bullet(r.term)
    if added_rows:
        b.line("Added in chat or from the command line:")
        for r in added_rows:
            who: Text | User = (
                User(r.source, r.added_by)
                if r.added_by and r.source in ("slack", "discord")
                else Text("the command line")
            )
            when = datetime.fromtimestamp(r.added_at, UTC).strftime("%Y-%m-%d")
            b.bullet(r.term, " (added by ", who, f", {when})")
    return b.build()


def watch_test(ctx: CommandContext, channel: str, text: str) -> Reply:
    parsed = _parse(text)
    if isinstance(parsed, Reply):
        return parsed
    preview = _preview(ctx, parsed, channel)
    b = ReplyBuilder().line(*starred(parsed.describe()), " (nothing was added)")
    _acronyms_note(b, parsed)
    _symbols_note(b, text, parsed)
    if preview:
        b.line("It matches these recent stories:")
        _add_preview(b, preview)
    else:
        b.line("It matches none of the recent stored stories.")
    return b.build()


def watch_feeds(ctx: CommandContext, channel: str | None = None) -> Reply:
    config = ctx.config()
    b = ReplyBuilder()
    if channel is not None and ctx.destination_problem is not None:
        problem = ctx.destination_problem(channel)
        if problem:
            b.line(Bold("Alerts for this channel are on hold: "), problem)
    if not config.feeds:
        return b.line("No feeds are configured yet.").build()
    rows = {row.url: row for row in ctx.store.feeds.all()}
    b.line("Feeds:")
    for feed in config.feeds:
        row = rows.get(feed.url)
        name = feed.name or (row.title if row and row.title else feed.url)
        b.bullet(name, ": ", feed_health(row))
    return b.build()


def feed_health(row: FeedRow | None) -> str:
    if row is None or row.last_polled_at is None:
        return "not polled yet"
    if row.gone:
        return "gone (HTTP 410), no longer polled"
    if row.consecutive_failures:
        state = "failing"
        if row.suspended_at:
            state = f"suspended since {format_time(row.suspended_at)}, retried daily"
        return (
            f"{state}: {row.last_error} ({row.consecutive_failures} failures in a row, "
            f"last ok {format_time(row.last_success_at) if row.last_success_at else 'never'})"
        )
    return f"ok (last checked {format_time(row.last_success_at)})"


def dispatch(ctx: CommandContext, channel: str, user: str | None, text: str) -> Reply:
    """`/watch SUBCOMMAND ARGS` -> the right function; unknown -> help."""
    # Any whitespace ends the subcommand: a tab, a newline or a no-break space
    # after `add` is what a pasted or mobile-typed command often has.
    parts = text.strip().split(None, 1)
    sub = parts[0].lower() if parts else ""
    rest = parts[1].strip() if len(parts) > 1 else ""
    return run_subcommand(ctx, channel, user, sub, rest)


def run_subcommand(
    ctx: CommandContext, channel: str, user: str | None, sub: str, rest: str
) -> Reply:
    """One subcommand with its argument text (Discord sends them apart)."""
    if sub == "add":
        return watch_add(ctx, channel, rest, user)
    if sub in ("remove", "rm", "delete"):
        return watch_remove(ctx, channel, rest, user)
    if sub in ("list", "ls"):
        return watch_list(ctx, channel)
    if sub == "test":
        return watch_test(ctx, channel, rest)
    if sub == "feeds":
        return watch_feeds(ctx, channel)
    if sub in ("", "help"):
        return help_reply()
    return ReplyBuilder().line("Unknown command ", Code(sub), ".").extend(help_reply()).build(False)
