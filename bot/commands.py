"""The `/watch` commands as plain functions, shared by Slack and the CLI.

Each returns a `Reply`; the caller decides how to show it (ephemeral Slack
message or terminal). Feed-derived text in replies goes through `escape`,
which the Slack caller sets to its mrkdwn escaper.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.channels import display_channel
from bot.config import Config
from bot.match import Matcher
from bot.messages import format_time
from bot.query import Query, QueryError, parse_query
from bot.store import FeedRow, Store
from bot.watchlist import added_term_scope

MAX_TERMS_PER_CHANNEL = 500
RECENT_ITEMS_SCANNED = 500
PREVIEW_ITEMS = 5

HELP = """\
*newshound* watches news feeds and posts one alert per matching story here.
• `/watch add QUERY` - watch a term in this channel, e.g. `/watch add trade deal`
• `/watch remove QUERY` - stop watching a term
• `/watch list` - terms this channel watches
• `/watch test QUERY` - show recent stories a query would match (adds nothing)
• `/watch feeds` - the feeds and their health
• `/watch help` - this text
Query language: words side by side form a phrase (`trade deal` also matches "Trade-Deal"); \
the last word also matches plurals (`tariff` → tariffs); `"quotes"` for the exact form; \
`a OR b` for either; `-word` to exclude stories mentioning it."""


@dataclass
class Reply:
    text: str
    ok: bool = True


@dataclass
class CommandContext:
    store: Store
    config: Callable[[], Config]
    clock: Callable[[], float] = time.time
    escape: Callable[[str], str] = lambda s: s
    managers_override: tuple[str, ...] | None = None
    # Slack: why the bot could not post alerts to a channel (None = it can).
    channel_problem: Callable[[str], str | None] | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _check_manager(ctx: CommandContext, user: str | None) -> Reply | None:
    managers = ctx.config().settings.managers
    if managers and user not in managers:
        return Reply(
            "Sorry, only the people listed as managers in feeds.yaml can change the watch "
            "terms here. Ask one of them, or use `/watch test` to try a query.",
            ok=False,
        )
    return None


def _parse(text: str) -> Query | Reply:
    try:
        return parse_query(text)
    except QueryError as exc:
        return Reply(f"Can't use that query: {exc}.", ok=False)


def _preview(
    ctx: CommandContext, query: Query, channel: str, limit: int = PREVIEW_ITEMS
) -> list[str]:
    """Recent stored stories the query matches, from the feeds it would watch."""
    matcher: Matcher[int] = Matcher([(0, query)])
    titles = {row.url: row.title for row in ctx.store.feeds() if row.title}
    scope = added_term_scope(ctx.config(), channel, titles)
    recent = ctx.store.recent_items(RECENT_ITEMS_SCANNED)
    carriers = ctx.store.feeds_carrying([s.id for s in recent]) if scope is not None else {}
    lines = []
    for stored in recent:
        if scope is not None and not carriers.get(stored.id, set()) & scope:
            continue  # only in feeds this channel does not watch
        if matcher.match(stored.item):
            when = format_time(stored.item.published or stored.first_seen_at)
            lines.append(f"• {ctx.escape(stored.item.title)} ({when})")
            if len(lines) >= limit:
                break
    return lines


def _symbols_note(ctx: CommandContext, text: str, parsed: Query) -> list[str]:
    """A one-line note when the query holds symbols or emoji, which matching
    skips (only letters and digits count): `🚀 launch` matches "launch".
    Symbols that are part of a name (the + of C++) are not skipped."""
    kept = {ch for phrase in (*parsed.include, *parsed.exclude) for w in phrase.words for ch in w}
    symbols: list[str] = []
    for ch in text:
        if unicodedata.category(ch).startswith("S") and ch not in symbols and ch not in kept:
            symbols.append(ch)
    if not symbols:
        return []
    shown = " ".join(ctx.escape(ch) for ch in symbols[:5]) + (" …" if len(symbols) > 5 else "")
    return [f"Note: symbols and emoji ({shown}) are ignored when matching."]


def _acronyms_note(ctx: CommandContext, parsed: Query) -> list[str]:
    """Which words the term takes as acronyms (SPEC §3: written in capitals)."""
    if not parsed.acronyms:
        return []
    shown = ", ".join(ctx.escape(word) for word in parsed.acronyms)
    return [
        f"Acronyms (matched only where a story writes them in capitals): {shown}. "
        "Write a word in lower case to match it in any case."
    ]


def watch_add(ctx: CommandContext, channel: str, text: str, user: str | None = None) -> Reply:
    refused = _check_manager(ctx, user)
    if refused:
        return refused
    parsed = _parse(text)
    if isinstance(parsed, Reply):
        return parsed
    existing = ctx.store.find_term(channel, parsed.text)
    if existing is not None:
        where = "feeds.yaml" if existing.source == "config" else "an earlier /watch add"
        return Reply(f"This channel already watches {parsed.describe()} (from {where}).")
    if ctx.channel_problem is not None:
        problem = ctx.channel_problem(channel)
        if problem:
            return Reply(problem, ok=False)
    source = "slack" if user else "cli"
    limit = MAX_TERMS_PER_CHANNEL
    if not ctx.store.add_term(channel, parsed.text, source, user, ctx.clock(), limit=limit):
        if ctx.store.find_term(channel, parsed.text) is not None:  # added meanwhile
            return Reply(f"This channel already watches {parsed.describe()}.")
        return Reply(
            f"This channel already has {MAX_TERMS_PER_CHANNEL} terms, the most it can have. "
            "Remove some with `/watch remove` first.",
            ok=False,
        )
    lines = [
        f"Now watching {parsed.describe()} in this channel.",
        *_acronyms_note(ctx, parsed),
        *_symbols_note(ctx, text, parsed),
    ]
    preview = _preview(ctx, parsed, channel)
    if preview:
        lines.append("Recent stories it would have matched:")
        lines.extend(preview)
    else:
        lines.append("No recent stored story matches it yet; new ones will be posted here.")
    return Reply("\n".join(lines))


def watch_remove(ctx: CommandContext, channel: str, text: str, user: str | None = None) -> Reply:
    refused = _check_manager(ctx, user)
    if refused:
        return refused
    if not text.strip():
        return Reply("Say which term to remove, e.g. `/watch remove trade deal`.", ok=False)
    existing = ctx.store.find_term(channel, text.strip())
    if existing is None:
        return Reply(
            f"This channel doesn't watch `{ctx.escape(text.strip())}`. "
            "`/watch list` shows its terms.",
            ok=False,
        )
    if existing.source == "config":
        return Reply(
            f"`{ctx.escape(existing.term)}` comes from feeds.yaml, so it can't be removed from "
            "here. Ask whoever runs newshound to remove it from the config file.",
            ok=False,
        )
    ctx.store.remove_term(channel, existing.term)
    return Reply(f"Stopped watching `{ctx.escape(existing.term)}` in this channel.")


def watch_list(ctx: CommandContext, channel: str) -> Reply:
    rows = ctx.store.terms(channel)
    if not rows:
        return Reply("This channel watches no terms yet. Add one with `/watch add QUERY`.")
    config_rows = [r for r in rows if r.source == "config"]
    added_rows = [r for r in rows if r.source != "config"]
    lines = [f"Terms watched in {display_channel(channel)}:"]
    if config_rows:
        lines.append("From feeds.yaml:")
        lines.extend(f"• {ctx.escape(r.term)}" for r in config_rows)
    if added_rows:
        lines.append("Added with /watch:")
        for r in added_rows:
            who = f"<@{r.added_by}>" if r.added_by and r.source == "slack" else "the command line"
            when = datetime.fromtimestamp(r.added_at, UTC).strftime("%Y-%m-%d")
            lines.append(f"• {ctx.escape(r.term)} (added by {who}, {when})")
    return Reply("\n".join(lines))


def watch_test(ctx: CommandContext, channel: str, text: str) -> Reply:
    parsed = _parse(text)
    if isinstance(parsed, Reply):
        return parsed
    preview = _preview(ctx, parsed, channel)
    lines = [
        f"{parsed.describe()} (nothing was added)",
        *_acronyms_note(ctx, parsed),
        *_symbols_note(ctx, text, parsed),
    ]
    if preview:
        lines.append("It matches these recent stories:")
        lines.extend(preview)
    else:
        lines.append("It matches none of the recent stored stories.")
    return Reply("\n".join(lines))


def watch_feeds(ctx: CommandContext) -> Reply:
    config = ctx.config()
    if not config.feeds:
        return Reply("No feeds are configured yet.")
    rows = {row.url: row for row in ctx.store.feeds()}
    lines = ["Feeds:"]
    for feed in config.feeds:
        row = rows.get(feed.url)
        name = ctx.escape(feed.name or (row.title if row and row.title else feed.url))
        lines.append(f"• {name}: {ctx.escape(feed_health(row))}")
    return Reply("\n".join(lines))


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
    if sub == "add":
        return watch_add(ctx, channel, rest, user)
    if sub in ("remove", "rm", "delete"):
        return watch_remove(ctx, channel, rest, user)
    if sub in ("list", "ls"):
        return watch_list(ctx, channel)
    if sub == "test":
        return watch_test(ctx, channel, rest)
    if sub == "feeds":
        return watch_feeds(ctx)
    if sub in ("", "help"):
        return Reply(HELP)
    return Reply(f"Unknown command `{ctx.escape(sub)}`.\n{HELP}", ok=False)
