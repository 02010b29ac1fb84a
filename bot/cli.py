"""The `newshound` command line (SPEC §1).

Exit codes: 0 ok; 1 `poll --once` found every due feed failing; 2 bad config
or bad input. Errors are one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bot import redact
from bot.channels import channel_kind, display_channel, validate_channel
from bot.commands import CommandContext, feed_health, run_subcommand
from bot.config import Config, ConfigError, config_warnings, load_config
from bot.deliver import Deliverer, DeliveryReport
from bot.fetch import Fetcher
from bot.messages import DIGEST, FOLLOWUP, NOTICE, format_time
from bot.models import Item
from bot.parsepool import ParsePool
from bot.poll import CycleReport, Poller
from bot.reply import render
from bot.store import (
    DEAD,
    PENDING,
    SCHEMA_VERSION,
    SENDING,
    FeedRow,
    OutboxRow,
    Store,
    is_postgres_url,
    redact_location,
)
from bot.story_identity import story_key
from bot.text import clean_text
from bot.wiring import (
    SinkRouter,
    config_stamp,
    fetch_policy,
    load_or_empty,
    mirror_config,
    register_channel_secrets,
    resolve_paths,
    sinks_for,
)
from bot.worker import worker_timeout

EXIT_OK = 0
EXIT_ALL_FEEDS_FAILED = 1  # `poll --once`: every due feed failed, so cron sees an outage
EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE, like `yes | head -1`


class UsageError(Exception):
    """Bad command-line input: message on stderr, exit 2."""


def port_number(text: str) -> int:
    """`--port`: a TCP port number (0 lets the system pick a free one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a whole number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: must be 0-65535")
    return port


def _version() -> str:
    import importlib.metadata  # only for --version: a noticeable import

    try:
        return importlib.metadata.version("newshound")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown"


class _VersionAction(argparse.Action):
    """argparse's "version" action, with the version looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"newshound {_version()} (database schema {SCHEMA_VERSION})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    # --config/--db may stand before or after the subcommand: the subparsers
    # repeat them with SUPPRESS defaults so they never overwrite a value
    # given before the subcommand name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="feeds.yaml path")
    common.add_argument("--db", default=argparse.SUPPRESS, help="SQLite database path")
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress"
    )

    parser = argparse.ArgumentParser(
        prog="newshound", description="News-watch bot: feeds in, one alert per story out."
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="show program's version number and exit",
    )
    parser.add_argument("--config", default=None, help="feeds.yaml path (env NEWSHOUND_CONFIG)")
    parser.add_argument("--db", default=None, help="SQLite database path (env NEWSHOUND_DB)")
    parser.add_argument("-v", "--verbose", action="store_true", default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sub.add_parser(
        "demo",
        parents=[common],
        help="run one cycle over bundled sample feeds (offline, in a fresh temporary "
        "database: --db and NEWSHOUND_DB are never used)",
        description="One full cycle over the bundled sample feeds, served from a loopback "
        "server, into the console. It always uses a fresh temporary database and its own "
        "config: --db, --config, NEWSHOUND_DB and NEWSHOUND_CONFIG are never used, so a "
        "real deployment's database is never touched.",
    )

    poll = sub.add_parser("poll", parents=[common], help="poll feeds and deliver alerts")
    poll.add_argument("--once", action="store_true", required=True, help="one cycle, then exit")
    poll.add_argument("--all", action="store_true", help="poll every feed, due or not")

    run = sub.add_parser("run", parents=[common], help="the long-running service")
    run.add_argument(
        "--port", type=port_number, default=3000, help="HTTP port, 0-65535 (default 3000)"
    )

    sub.add_parser("check", parents=[common], help="validate the config file")
    status = sub.add_parser("status", parents=[common], help="feed health and undelivered alerts")
    status.add_argument(
        "--story",
        default=None,
        metavar="ID_OR_URL",
        help="one story instead: its copies merged from other feeds (and why), its alerts "
        "and follow-ups",
    )
    retry = sub.add_parser(
        "retry",
        parents=[common],
        help="put dead messages (and paused destinations) back in the queue",
        description="Dead messages go back in the queue, due now, and a paused destination "
        "(a Slack token that was broken, a Discord webhook or channel that answered "
        "401/403/404) is tried again: run it after fixing the cause, "
        "e.g. inviting the bot or setting a new token. The running service (or the next "
        "poll) sends them.",
    )
    retry.add_argument(
        "-c", "--channel", default=None, help="only this channel (Slack channel ID or discord:…)"
    )

    watch = sub.add_parser(
        "watch",
        parents=[common],
        help="manage watch terms",
        description="The /watch commands from the shell. Every word after the action is "
        "part of the query, also words starting with '-' (exclusions such as -rumor or "
        "-v), except the options --channel/-c, --config and --db (and -h); after '--' "
        "every word is. A word holding spaces, such as -'some phrase', keeps them: "
        "it excludes the phrase. The query may also be one quoted argument.",
    )
    watch.add_argument("action", choices=WATCH_ACTIONS)
    watch.add_argument(
        "-c",
        "--channel",
        required=True,
        help="Slack channel ID, discord:<channel ID> or discord:<webhook URL>",
    )
    watch.add_argument(
        "query",
        nargs="*",
        default=[],
        help='the watch term (query language: words, OR, "phrase", -word)',
    )
    discord = sub.add_parser("discord", parents=[common], help="Discord application setup")
    discord_sub = discord.add_subparsers(dest="discord_command", metavar="ACTION", required=True)
    register = discord_sub.add_parser(
        "register",
        parents=[common],
        help="register the /watch command (needs DISCORD_BOT_TOKEN, DISCORD_APPLICATION_ID)",
    )
    register.add_argument(
        "--guild", metavar="ID", help="register in one server only (usable at once, for testing)"
    )
    return parser


WATCH_ACTIONS = ("add", "remove", "list", "test")
# Options that take a value: at the top level and in `watch` after its action.
_TOP_VALUE_OPTIONS = ("--config", "--db")
_WATCH_VALUE_OPTIONS = ("--channel", "-c", "--config", "--db")


def _takes_value(word: str, options: Sequence[str], *, prefixes: bool) -> bool:
    """`word` is one of `options` (or, with prefixes, an abbreviation of
    exactly one long one) written without `=VALUE`: the next word is its value."""
    if word in options:
        return True
    if not prefixes or not word.startswith("--") or "=" in word or len(word) < 3:
        return False
    return len([o for o in options if o.startswith(word)]) == 1


def _is_option(word: str, options: Sequence[str]) -> bool:
    name = word.split("=", 1)[0] if word.startswith("--") else word
    return name in options


def split_watch_query(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Take the query words of a `watch` command out of argv, before argparse
    sees them: argparse would read `-hype` as -h, `-v` as --verbose and
    `-vendor` as a bad option. Returns (argv for argparse, query words), the
    query None when the command is not `watch` (argv then unchanged)."""
    words = list(argv)
    i = 0
    while i < len(words) and words[i].startswith("-"):  # options before the command
        i += 2 if _takes_value(words[i], _TOP_VALUE_OPTIONS, prefixes=True) else 1
    if i >= len(words) or words[i] != "watch":
        return words, None
    kept = words[: i + 1]
    i += 1
    while i < len(words):  # options before the action stay with argparse
        word = words[i]
        if not word.startswith("-") or word == "-":
            break
        width = 2 if _takes_value(word, _WATCH_VALUE_OPTIONS, prefixes=True) else 1
        kept += words[i : i + width]
        i += width
    if i >= len(words) or words[i] not in WATCH_ACTIONS:
        return words, None  # argparse explains what is missing
    kept.append(words[i])
    query: list[str] = []
    i += 1
    while i < len(words):
        word = words[i]
        if word == "--":
            query += words[i + 1 :]
            break
        if _takes_value(word, _WATCH_VALUE_OPTIONS, prefixes=False):
            kept += words[i : i + 2]
            i += 2
            continue
        if _is_option(word, _WATCH_VALUE_OPTIONS) or word in ("-h", "--help"):
            kept.append(word)  # --channel=C, --db=PATH, help
        else:
            query.append(word)
        i += 1
    return kept, query


def join_query(words: Sequence[str]) -> str:
    """The query typed as shell words. One word is the whole query as typed
    (`'chips -vendor'`); among several, an exclusion holding spaces keeps them
    (`-'some phrase'` excludes the phrase, not just "some")."""
    if len(words) == 1:
        return words[0].strip()
    parts = []
    for word in words:
        body = word[1:].strip()
        if word.startswith("-") and len(body.split()) > 1 and '"' not in body:
            word = f'-"{body}"'
        parts.append(word)
    return " ".join(parts).strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words, query = split_watch_query(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(words)
    if query is not None:
        args.query = query
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact.install()  # also scrubs library logs (httpx prints request URLs)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader gone away shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # Output piped into `head` (or a pager that quit): stop quietly.
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except ConfigError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        return EXIT_BAD_INPUT
    except UsageError as exc:
        print(f"newshound: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, sqlite3.DatabaseError) and damaged_database(exc):
            # Damage past the first page: open_store saw a good header.
            db = resolve_paths(args.config, args.db).db
            print(f"newshound: cannot open database {db}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        # A bug should still end in one clear line; -v shows the traceback.
        logging.getLogger("bot").debug("unexpected error", exc_info=True)
        print(f"newshound: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if not args.verbose:
            print("newshound: run again with -v for details", file=sys.stderr)
        return 1


def silence_stdout() -> None:
    """Send the rest of stdout (and its unflushed buffer) to /dev/null, so
    Python's final flush at exit does not complain about the closed pipe."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: not a file
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


# -- commands ---------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    paths = resolve_paths(args.config, args.db)
    config = load_config(paths.config)
    for warning in config_warnings(config, os.environ):
        print(f"warning: {warning}", file=sys.stderr)
    terms = sum(len(w.terms) for w in config.watches)
    print(
        f"{paths.config}: ok - {len(config.feeds)} feeds, "
        f"{len(config.channels())} channels, {terms} terms"
    )
    return EXIT_OK


def damaged_database(exc: sqlite3.DatabaseError) -> bool:
    """The database file itself is unusable (damaged, or not a database at
    all): the user's problem to fix, not a bug of ours."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def open_store(path: str, *, check: bool = False) -> Store:
    """The database, or a UsageError saying why it cannot be used. check: also
    read the whole file for damage (the service does, once, before it starts)."""
    return _opened(path, create=True, check=check)


def _opened(path: str, *, create: bool, check: bool = False) -> Store:
    shown = redact_location(path)  # a PostgreSQL URL may hold a password
    try:
        store = Store(path, create=create)
    except Exception as exc:  # unreadable path, not a database, not ours, too new, locked, ...
        raise UsageError(f"cannot open database {shown}: {exc}") from None
    if check:
        try:
            damage = store.meta.damage()
        except sqlite3.DatabaseError as exc:
            damage = str(exc)
        if damage is not None:
            store.close()
            raise UsageError(f"cannot open database {shown}: damaged: {damage}")
    return store


def existing_store(path: str) -> Store:
    """`open_store` for read-only commands: they never create a database, so
    a mistyped --db or a run from the wrong folder is an error, not an empty
    new database that silently hides the real one."""
    if is_postgres_url(path):  # the server is asked: no file to look for
        return _opened(path, create=False)
    if not Path(path).exists():
        raise UsageError(_no_database(path))
    return open_store(path)


def _no_database(shown: str) -> str:
    return (
        f"no database at {shown} (check --db or NEWSHOUND_DB; "
        "`newshound poll --once` or `newshound run` creates it)"
    )


def run_poll_cycle(
    config: Config,
    store: Store,
    sinks: SinkRouter,
    *,
    all_feeds: bool,
    clock: Callable[[], float] = time.time,
    in_order: bool = False,
) -> tuple[CycleReport, DeliveryReport]:
    """clock: what the poller takes for now (the demo's is fixed); in_order:
    see Poller.run_cycle."""
    mirror_config(config, store, time.time())
    register_channel_secrets(config, store, os.environ)
    with (
        Fetcher(fetch_policy(config.settings)) as fetcher,
        ParsePool(timeout=config.settings.parse_timeout) as parse_pool,
    ):
        poller = Poller(config, store, fetcher, pool=parse_pool, clock=clock)
        report = poller.run_cycle(all_feeds=all_feeds, in_order=in_order)
    deliverer = Deliverer(store, sinks, send_interval=config.settings.send_interval)
    delivery = deliverer.deliver(retry_now=True)
    return report, delivery


def print_cycle(
    report: CycleReport, delivery: DeliveryReport, store: Store, *, timing: bool = True
) -> None:
    width = max([len(f.name) for f in report.feeds] + [4])
    if report.feeds:
        print(f"{'feed':<{width}}  {'status':<13} {'items':>5} {'new':>5} {'alerts':>6}")
    for f in report.feeds:
        if f.status == "error":
            print(f"{f.name:<{width}}  error: {f.error} [{f.error_kind}]")
        else:
            print(f"{f.name:<{width}}  {f.status:<13} {f.items:>5} {f.new_items:>5} {f.alerts:>6}")
    counts = store.outbox.counts()
    print(
        f"cycle: {len(report.feeds)} feeds polled ({report.failed} failed), {report.items} items, "
        f"{report.new_items} new, {report.alerts} alerts, {report.digests} digests, "
        f"{report.duplicates} duplicates suppressed"
        + (f" in {report.duration:.1f}s" if timing else "")
    )
    if report.merged:
        print(
            f"stories: {report.merged} near-duplicate copies merged into known stories "
            f"(`newshound status --story LINK` shows why), {report.followups} follow-ups"
        )
    if report.held_back:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(report.held_back.items()))
        print(f"matched but not alerted: {reasons}")
    print(
        f"delivery: {delivery.sent} sent, {counts.get(PENDING, 0) + counts.get(SENDING, 0)} "
        f"pending, {counts.get(DEAD, 0)} dead"
    )
    for error in delivery.errors:
        print(f"  delivery problem: {error}")


def nothing_polled(config: Config, store: Store) -> str:
    """Why a `poll --once` cycle polled no feed, and when one is due."""
    if not config.feeds:
        return f"no feeds are configured in {config.path}; nothing to poll"
    rows = store.feeds.all([f.url for f in config.feeds])
    upcoming = [row.next_check_at for row in rows if not row.gone]
    hint = "(use --all to poll every feed now)"
    if not upcoming:
        return f"no feed is due: every feed is gone (HTTP 410) {hint}"
    return f"no feed is due; next check at {format_time(min(upcoming))} {hint}"


def cmd_poll(args: argparse.Namespace) -> int:
    paths = resolve_paths(args.config, args.db)
    config = load_config(paths.config)
    with open_store(paths.db) as store:
        report, delivery = run_poll_cycle(config, store, sinks_for(store), all_feeds=args.all)
        if not report.feeds:
            print(nothing_polled(config, store))
        print_cycle(report, delivery, store)
    if report.feeds and report.failed == len(report.feeds):
        print(
            f"newshound: every due feed failed ({report.failed} of {report.failed})",
            file=sys.stderr,
        )
        return EXIT_ALL_FEEDS_FAILED
    return EXIT_OK


def trim_query(query: str) -> str:
    """A query without dangling `-` words at its end (`tariff -`, left over
    from a shell line): they exclude nothing."""
    words = query.split(" ")
    while words and words[-1].strip() in ("", "-"):
        words.pop()
    return " ".join(words).strip()


def cmd_watch(args: argparse.Namespace) -> int:
    problem = validate_channel(args.channel)
    if problem is not None:
        raise UsageError(f"invalid --channel: {problem}")
    paths = resolve_paths(args.config, args.db)
    config = load_or_empty(paths.config)
    if args.action == "list" and args.query:
        raise UsageError(
            f"watch list takes no query (got {' '.join(args.query)!r}); "
            "it lists every term of the --channel"
        )
    query = trim_query(join_query(args.query))
    # list and test only read: a missing database is a mistyped path, not a new one
    read_only = args.action in ("list", "test")
    with existing_store(paths.db) if read_only else open_store(paths.db) as store:
        mirror_config(config, store, time.time())
        ctx = CommandContext(store=store, config=lambda: config, platform="cli")
        reply = run_subcommand(ctx, args.channel, None, args.action, query)
    stream = sys.stdout if reply.ok else sys.stderr
    print(render(reply, "cli", channel=args.channel), file=stream)
    return EXIT_OK if reply.ok else EXIT_BAD_INPUT


STATUS_LIST_LIMIT = 20  # undelivered messages listed per state; the rest are counted


def next_check_text(row: FeedRow, now: float) -> str:
    if row.gone:
        return "not scheduled (gone)"
    if row.next_check_at <= now:
        return "due now"
    return format_time(row.next_check_at)


def message_label(message: OutboxRow) -> str:
    """What an undelivered message is: the alert's title, the digest's size or
    the notice's text (shortened to one line)."""
    payload = message.payload
    if message.kind == DIGEST:
        count = len(payload.get("items", []))
        return f"digest of {count} {'story' if count == 1 else 'stories'}"
    if message.kind == NOTICE:
        text = " ".join(str(payload.get("text", "")).split())
        return f"notice {_shorten(text, 80)!r}"
    if message.kind == FOLLOWUP:
        count = len(payload.get("new", []))
        sources = "source" if count == 1 else "sources"
        return f"follow-up to #{payload.get('parent')} ({count} {sources})"
    return repr(_shorten(" ".join(str(payload.get("title", "")).split()), 120))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def find_story_id(store: Store, wanted: str) -> int | None:
    """A story by its number (as `status --story` prints it) or by the link
    of any item merged into it (the original or a copy)."""
    wanted = wanted.strip()
    if wanted.isdigit():
        return int(wanted) if store.stories.existing([int(wanted)]) else None
    keys = [story_key(Item(title="", link=wanted)), "guid:" + wanted]
    return store.stories.find(keys)


def print_story(store: Store, item_id: int) -> None:
    stored = store.stories.get(item_id)
    assert stored is not None
    feeds = {row.id: row for row in store.feeds.all()}
    feed = feeds.get(stored.feed_id)
    print(f"Story #{item_id}: {clean_text(stored.item.title)}")
    print(f"  link: {clean_text(stored.item.link or '(no link)')}")
    where = feed.title or feed.url if feed is not None else "?"
    print(f"  first seen: {format_time(stored.first_seen_at)} in {clean_text(where)}")
    copies = store.stories.copies(item_id)
    print(f"  copies merged into it: {len(copies) or 'none'}")
    for copy in copies:
        print(f"    {clean_text(copy.source)} — {clean_text(copy.title)}")
        print(f"      {clean_text(copy.link or copy.item_key)}")
        print(
            f"      merged {format_time(copy.merged_at)} as a copy of {clean_text(copy.like_key)}, "
            f"score {copy.score:.2f}: {copy.reason}"
        )
    alerts = store.outbox.story_alerts(item_id)
    print(f"  alerts: {len(alerts) or 'none'}")
    for channel, message in alerts:
        kind = "in a digest" if message.kind == DIGEST else "alert"
        print(f"    {display_channel(channel)}: {kind} #{message.id}, {message.state}")
        lines = store.outbox.followup_lines(message.id)
        for line in lines:
            print(f"      also reported by {clean_text(line.source)} (follow-up #{line.outbox_id})")


LONGEST_TICK = 60.0  # NEWSHOUND_TICK is capped at a minute


def print_workers(store: Store, config: Config, now: float) -> None:
    """The `newshound run` workers alive on this database and the config
    version each runs (this feeds.yaml's is marked)."""
    # Workers beat every tick; the longest tick allowed gives the widest window.
    alive = store.meta.workers(seen_since=now - worker_timeout(LONGEST_TICK))
    if not alive:
        print("Workers: none running")
        return
    mine = config_stamp(config)[:12]
    versions = {w.config_stamp for w in alive}
    note = "" if len(versions) == 1 else " (different configs: give every worker the same one)"
    print(f"Workers ({len(alive)}){note}:")
    for worker in alive:
        same = " = this feeds.yaml" if worker.config_stamp == mine else ""
        print(
            f"  {worker.id}  config {worker.config_stamp}{same}; "
            f"up since {format_time(worker.started_at)}, seen {format_time(worker.seen_at)}"
        )


def cmd_status(args: argparse.Namespace) -> int:
    paths = resolve_paths(args.config, args.db)
    if args.story is not None:
        with existing_store(paths.db) as store:
            item_id = find_story_id(store, args.story)
            if item_id is None:
                raise UsageError(f"no story known by {args.story!r} (a story number or a link)")
            print_story(store, item_id)
        return EXIT_OK
    config = load_or_empty(paths.config)
    now = time.time()
    with existing_store(paths.db) as store:
        print(f"Database: {store.location} (schema {store.meta.schema_version()})")
        print_workers(store, config, now)
        store.feeds.sync([f.url for f in config.feeds])
        rows = {row.url: row for row in store.feeds.all()}
        print(f"Feeds ({len(config.feeds)}):")
        for feed in config.feeds:
            row = rows.get(feed.url)
            name = feed.name or (row.title if row and row.title else feed.url)
            print(f"  {name}  <{feed.url}>")
            if row is None:
                continue
            last_ok = format_time(row.last_success_at) if row.last_success_at else "never"
            last_error = (
                f"{row.last_error} [{row.last_error_kind}] at {format_time(row.last_error_at)}"
                if row.last_error and row.consecutive_failures
                else "none"
            )
            print(f"    health: {feed_health(row)}")
            print(
                f"    last success: {last_ok}; last error: {last_error}; "
                f"next check: {next_check_text(row, now)}"
            )
        counts = store.outbox.counts()
        undelivered = {
            "Pending": counts.get(PENDING, 0) + counts.get(SENDING, 0),
            "Dead": counts.get(DEAD, 0),
        }
        print(
            f"Alerts: {counts.get('sent', 0)} sent, {undelivered['Pending']} pending, "
            f"{undelivered['Dead']} dead"
        )
        for key, (reason, since) in sorted(store.gates.paused().items()):
            print(
                f"Paused: {key} since {format_time(since)}: {reason}. Messages wait; fix it, "
                "then run `newshound retry`."
            )
        for label, states in (("Pending", (PENDING, SENDING)), ("Dead", (DEAD,))):
            # Oldest first; a message being sent right now is still pending.
            messages = sorted(
                (
                    m
                    for state in states
                    for m in store.outbox.in_state(state, limit=STATUS_LIST_LIMIT)
                ),
                key=lambda m: m.id,
            )[:STATUS_LIST_LIMIT]
            if not messages:
                continue
            print(f"{label}:")
            for m in messages:
                state = " (sending now)" if m.state == SENDING else ""
                print(
                    f"  #{m.id} {display_channel(m.channel)} {message_label(m)}{state}: "
                    f"{m.last_error or 'not sent yet'} ({m.attempts} attempts)"
                )
            more = undelivered[label] - len(messages)
            if more > 0:
                print(f"  … and {more} more")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    if args.channel is not None:
        problem = validate_channel(args.channel)
        if problem is not None:
            raise UsageError(f"invalid --channel: {problem}")
    paths = resolve_paths(args.config, args.db)
    with existing_store(paths.db) as store:
        # A paused destination is a whole platform's (e.g. the Slack token):
        # retrying one of its channels tries the platform again.
        prefix = "" if args.channel is None else channel_kind(args.channel) + ":"
        resumed = sorted(key for key in store.gates.paused() if key.startswith(prefix))
        store.gates.resume(prefix)
        count = store.outbox.requeue(args.channel, time.time())
    where = "" if args.channel is None else f" for {display_channel(args.channel)}"
    print(f"{count} dead {'message' if count == 1 else 'messages'}{where} queued again.")
    for key in resumed:
        print(f"Delivery through {key} resumed.")
    return EXIT_OK


def cmd_discord(args: argparse.Namespace) -> int:
    from bot.discord_register import RegisterError, RegisterUsageError, register

    try:
        print(register(os.environ, args.guild))
    except RegisterUsageError as exc:
        raise UsageError(f"discord register: {exc}") from None
    except RegisterError as exc:
        print(f"newshound: discord register: {exc}", file=sys.stderr)
        return 1
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    # Never the real database: its pending alerts would be "delivered" here.
    return run_demo()


def cmd_run(args: argparse.Namespace) -> int:
    from bot.service import run_service

    paths = resolve_paths(args.config, args.db)
    # Refuse a database we cannot use (not ours, too new, damaged, not a
    # database) with the same one-line error as every other command, before
    # starting: once running, the service would only log each failed cycle.
    open_store(paths.db, check=True).close()
    return run_service(paths.config, paths.db, port=args.port)


COMMANDS = {
    "check": cmd_check,
    "poll": cmd_poll,
    "watch": cmd_watch,
    "status": cmd_status,
    "retry": cmd_retry,
    "demo": cmd_demo,
    "run": cmd_run,
    "discord": cmd_discord,
}
