"""SQLite persistence through sqlite-utils. The only SQL in the repo lives here.

Deduplication is enforced by unique keys (`story_keys.key`,
`alerts(channel, item_id)`), never by in-memory sets, so it survives restarts
and concurrent writers. Times are epoch seconds (float, UTC).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.migrations import MIGRATIONS
from bot.models import Item
from bot.neardup import SignatureRow
from bot.query import term_key

log = logging.getLogger(__name__)

# The schema this newshound creates and migrates to (`PRAGMA user_version`).
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Outbox states. An alert is `pending` from the moment it is stored; a sender
# marks it `sending` just before the call, then `sent` or `dead`. A digest is
# `assembling` while its cycle is still adding items to it.
ASSEMBLING = "assembling"
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
DEAD = "dead"


@dataclass(frozen=True)
class FeedRow:
    id: int
    url: str
    title: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    first_polled_at: float | None
    last_polled_at: float | None
    last_success_at: float | None
    last_error: str | None
    last_error_kind: str | None
    last_error_at: float | None
    consecutive_failures: int
    next_check_at: float
    gone: bool
    suspended_at: float | None
    items_seen_at: float | None = None  # when the feed's content was last read
    check_interval: float | None = None  # the configured interval behind next_check_at


@dataclass(frozen=True)
class FeedSuccess:
    """A successful poll. title/body_hash are None when nothing was parsed
    (304 or an unchanged body): the stored ones are kept."""

    feed_id: int
    now: float
    next_check_at: float
    etag: str | None
    last_modified: str | None
    title: str | None = None
    body_hash: str | None = None
    check_interval: float | None = None  # the configured interval behind next_check_at


@dataclass(frozen=True)
class OutboxRow:
    id: int
    channel: str
    kind: str
    state: str
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: float
    last_error: str | None
    remote_id: str | None
    created_at: float
    sending_at: float | None = None
    sending_owner: str | None = None
    verify_since: float | None = None
    verify_until: float | None = None
    verify_cursor: str | None = None
    verify_tries: int = 0


@dataclass(frozen=True)
class Claim:
    """The outcome of `Store.claim_message`: the fresh row when this sender
    now holds it, else the earliest time a gate allows another try (0.0 when
    the message is no longer claimable at all)."""

    row: OutboxRow | None
    not_before: float = 0.0


@dataclass(frozen=True)
class TermRow:
    channel: str
    term: str
    source: str
    added_by: str | None
    added_at: float


@dataclass(frozen=True)
class StoredItem:
    id: int
    feed_id: int
    item: Item
    first_seen_at: float


@dataclass(frozen=True)
class StoryCopy:
    """A near-duplicate copy merged into an earlier story (`story_copies`)."""

    item_id: int  # the story it merged into
    item_key: str  # the copy's own primary key (its canonical link, ...)
    feed_id: int
    source: str
    title: str
    link: str | None
    like_key: str  # the earlier item it was found to copy
    score: float
    reason: str
    merged_at: float


@dataclass(frozen=True)
class FollowupLine:
    """One "Also reported by" line for (channel, story), carried by a
    follow-up message (`outbox_id`) that answers the alert `parent_id`."""

    outbox_id: int
    parent_id: int
    channel: str
    item_id: int
    source: str
    title: str
    link: str | None


class DatabaseRefused(Exception):
    """A database newshound must not use: another program's, or made by a
    newer newshound. `str(error)` says why in a few words."""


# Tables every newshound database has (migration 1).
CORE_TABLES = frozenset({"feeds", "items", "story_keys", "outbox", "alerts", "terms"})


def check_schema(conn: sqlite3.Connection) -> None:
    """Refuse a database we cannot safely migrate, before changing anything
    (not even the journal mode). An empty file or a new database is fine.
    Raises DatabaseRefused, or sqlite3.DatabaseError for a file that is not
    a database at all."""
    version = schema_of(conn)
    tables = {
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\'"
        )
    }
    latest = SCHEMA_VERSION
    if version > latest:
        raise DatabaseRefused(
            f"made by a newer newshound (schema {version}; this newshound knows "
            f"schemas up to {latest}); upgrade newshound to use it"
        )
    if (version == 0 and tables) or (version > 0 and not CORE_TABLES.issubset(tables)):
        raise DatabaseRefused("not a newshound database (it holds other data); left untouched")


def schema_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def backup_path(db_path: str, schema: int) -> str:
    """Where the copy taken before upgrading from `schema` goes: next to the database."""
    return f"{db_path}.bak-schema{schema}"


def back_up(conn: sqlite3.Connection, target: str) -> None:
    """Copy the database with SQLite's online backup API: consistent even in
    WAL mode and while other processes write (a plain file copy of a live WAL
    database can miss committed pages or catch half a checkpoint). Written
    under a temporary name of this process first, so `target` is only ever a
    whole copy, also when two processes upgrade at once."""
    partial = f"{target}.{os.getpid()}.partial"
    Path(partial).unlink(missing_ok=True)  # left by a crashed earlier attempt
    try:
        dest = sqlite3.connect(partial)
        try:
            conn.backup(dest)
        finally:
            dest.close()
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


class BackupFailed(Exception):
    """The copy taken before an upgrade could not be written: nothing was migrated."""


class Store:
    """One SQLite database. Safe to share between threads (one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE)
        # so a write never starts implicitly and never commits half a cycle.
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            check_schema(conn)
            self._back_up_before_upgrade(conn)
        except BaseException:
            conn.close()
            raise
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._depth = 0
        if self.path != ":memory:":
            self.db.enable_wal()
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def _back_up_before_upgrade(self, conn: sqlite3.Connection) -> None:
        """An existing database about to be migrated is copied first, so an
        upgrade can be undone by restoring the copy (with the old newshound)."""
        schema = schema_of(conn)
        if self.path == ":memory:" or schema == 0 or schema >= SCHEMA_VERSION:
            return  # new, or already current: nothing to lose
        target = backup_path(self.path, schema)
        try:
            back_up(conn, target)
        except (OSError, sqlite3.Error) as exc:
            raise BackupFailed(
                f"not upgraded from schema {schema}: could not back it up to {target}: {exc}"
            ) from None
        log.warning(
            "upgrading database %s from schema %d to %d; the old database is backed up at %s",
            self.path,
            schema,
            SCHEMA_VERSION,
            target,
        )

    # -- plumbing --------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all. Re-entrant."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.db.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.db.conn.execute("ROLLBACK")
                raise
            else:
                self.db.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self.db.conn.execute(sql, params)

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    def schema_version(self) -> int:
        with self._lock:
            return schema_of(self.db.conn)

    def _migrate(self) -> None:
        with self._lock:
            current = schema_of(self.db.conn)
            for number, script in MIGRATIONS:
                if number <= current:
                    continue
                with self.transaction():
                    if callable(script):
                        script(self.db.conn)
                    else:
                        for statement in _split_sql(script):
                            self.db.conn.execute(statement)
                    self.db.conn.execute(f"PRAGMA user_version = {int(number)}")

    def damage(self) -> str | None:
        """SQLite's quick integrity check: None when it passes, else its first
        complaint. Reads the whole file (a fraction of a second per 100 MB)."""
        result = str(self._execute("PRAGMA quick_check(1)").fetchone()[0])
        if result == "ok":
            return None
        # e.g. "*** in database main ***\nPage 2: btreeInitPage() returns error code 11"
        lines = [line.strip() for line in result.splitlines() if not line.startswith("***")]
        return "; ".join(line for line in lines if line) or "integrity check failed"

    def integrity_ok(self) -> bool:
        return self._execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # -- meta ------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        self._execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def get_meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def instance_tag(self) -> str:
        """A short random tag made once per database: tells this deployment's
        outbox ids apart from another's (e.g. staging) that posts with the
        same Discord bot."""
        self._execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('instance_tag', ?)",
            (secrets.token_hex(3),),
        )
        return self.get_meta("instance_tag") or ""

    # -- feeds -----------------------------------------------------------

    def sync_feeds(self, urls: Sequence[str]) -> None:
        """Make sure every configured feed has a row (new ones are due now)."""
        with self.transaction():
            for url in urls:
                self._execute("INSERT OR IGNORE INTO feeds(url) VALUES (?)", (url,))

    def feed(self, url: str) -> FeedRow | None:
        rows = self._rows("SELECT * FROM feeds WHERE url = ?", (url,))
        return _feed_row(rows[0]) if rows else None

    def feeds(self, urls: Sequence[str] | None = None) -> list[FeedRow]:
        rows = self._rows("SELECT * FROM feeds ORDER BY id")
        found = [_feed_row(r) for r in rows]
        if urls is None:
            return found
        wanted = set(urls)
        return [f for f in found if f.url in wanted]

    def record_feed_successes(self, successes: Sequence[FeedSuccess]) -> None:
        """Record successful polls (many at once: a warm cycle is mostly these)."""
        if not successes:
            return
        with self.transaction():
            self.db.conn.executemany(
                """UPDATE feeds SET
                     title = COALESCE(?, title), etag = ?, last_modified = ?,
                     body_hash = COALESCE(?, body_hash),
                     first_polled_at = COALESCE(first_polled_at, ?),
                     last_polled_at = ?, last_success_at = ?,
                     consecutive_failures = 0, next_check_at = ?, suspended_at = NULL,
                     check_interval = COALESCE(?, check_interval)
                   WHERE id = ?""",
                [
                    (
                        s.title,
                        s.etag,
                        s.last_modified,
                        s.body_hash,
                        s.now,
                        s.now,
                        s.now,
                        s.next_check_at,
                        s.check_interval,
                        s.feed_id,
                    )
                    for s in successes
                ],
            )

    def record_feed_failure(
        self,
        feed_id: int,
        *,
        now: float,
        kind: str,
        message: str,
        next_check_at: float,
        gone: bool = False,
        suspend: bool = False,
    ) -> int:
        """Returns the new count of consecutive failures."""
        with self.transaction():
            self._execute(
                """UPDATE feeds SET
                     last_polled_at = ?, last_error = ?, last_error_kind = ?,
                     last_error_at = ?, consecutive_failures = consecutive_failures + 1,
                     next_check_at = ?, gone = MAX(gone, ?),
                     suspended_at = CASE WHEN ? THEN COALESCE(suspended_at, ?) ELSE suspended_at END
                   WHERE id = ?""",
                (now, message, kind, now, next_check_at, int(gone), int(suspend), now, feed_id),
            )
            row = self._execute(
                "SELECT consecutive_failures FROM feeds WHERE id = ?", (feed_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    # -- items and story identity ---------------------------------------

    def find_story(self, keys: Sequence[str]) -> int | None:
        """The item id of a story already seen under any of these keys."""
        found = self.find_stories(keys)
        return next((found[key] for key in keys if key in found), None)

    def _select_in(
        self, sql: str, values: Sequence[Any], before: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Rows of `sql`, whose `{marks}` is an IN list of `values` (500 per query:
        SQLite limits the number of parameters); `before` fills the ones ahead."""
        rows: list[tuple[Any, ...]] = []
        unique = list(dict.fromkeys(values))
        for offset in range(0, len(unique), 500):
            chunk = unique[offset : offset + 500]
            marks = ",".join("?" * len(chunk))
            rows += self._execute(sql.format(marks=marks), [*before, *chunk]).fetchall()
        return rows

    def find_stories(self, keys: Sequence[str]) -> dict[str, int]:
        """key -> item id for every one of `keys` already known."""
        rows = self._select_in("SELECT key, item_id FROM story_keys WHERE key IN ({marks})", keys)
        return {str(key): int(item_id) for key, item_id in rows}

    def touch_stories(self, seen: Sequence[tuple[int, Sequence[str]]], now: float) -> None:
        """Known stories seen again: remember new aliases, keep them from pruning."""
        with self._lock:
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO story_keys(key, item_id) VALUES (?, ?)",
                [(key, item_id) for item_id, keys in seen for key in keys],
            )
            self.db.conn.executemany(
                "UPDATE items SET last_seen_at = ? WHERE id = ?",
                [(now, item_id) for item_id in dict.fromkeys(i for i, _ in seen)],
            )

    def carried_by(self, feed_id: int, item_ids: Sequence[int]) -> set[int]:
        """Which of `item_ids` the feed has carried before."""
        rows = self._select_in(
            "SELECT item_id FROM feed_items WHERE feed_id = ? AND item_id IN ({marks})",
            item_ids,
            before=[feed_id],
        )
        return {int(r[0]) for r in rows}

    def feeds_carrying(self, item_ids: Sequence[int]) -> dict[int, set[str]]:
        """item id -> URLs of the feeds that have carried it."""
        rows = self._select_in(
            "SELECT fi.item_id, f.url FROM feed_items fi JOIN feeds f ON f.id = fi.feed_id "
            "WHERE fi.item_id IN ({marks})",
            item_ids,
        )
        found: dict[int, set[str]] = {}
        for item_id, url in rows:
            found.setdefault(int(item_id), set()).add(str(url))
        return found

    def alerted(self, item_ids: Sequence[int]) -> set[tuple[str, int]]:
        """(channel, item id) pairs among `item_ids` that already have their alert."""
        rows = self._select_in(
            "SELECT channel, item_id FROM alerts WHERE item_id IN ({marks})", item_ids
        )
        return {(str(channel), int(item_id)) for channel, item_id in rows}

    def record_carried(self, feed_id: int, item_ids: Sequence[int], now: float) -> None:
        """The feed's content was read at `now` and carries exactly `item_ids`."""
        with self._lock:
            self.db.conn.executemany(
                "INSERT INTO feed_items(feed_id, item_id, last_seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT(feed_id, item_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                [(feed_id, item_id, now) for item_id in dict.fromkeys(item_ids)],
            )
            self._execute("UPDATE feeds SET items_seen_at = ? WHERE id = ?", (now, feed_id))

    def _next_ids(self, table: str, count: int) -> list[int]:
        """The next `count` ids of `table`, assigned here so one executemany can
        write them: safe inside a transaction, which holds SQLite's write lock."""
        first = int(self._execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0])
        return list(range(first, first + count))

    def insert_items(
        self, feed_id: int, entries: Sequence[tuple[Item, Sequence[str]]], now: float
    ) -> list[int]:
        """Insert new stories in a few statements; returns their ids in order."""
        if not entries:
            return []
        with self.transaction():
            ids = self._next_ids("items", len(entries))
            self.db.conn.executemany(
                """INSERT INTO items(id, story_key, feed_id, guid, link, title, summary, tags,
                                     author, published_at, first_seen_at, last_seen_at,
                                     source_name)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    (
                        item_id,
                        keys[0],
                        feed_id,
                        item.guid,
                        item.link,
                        item.title,
                        item.summary,
                        json.dumps(list(item.tags)),
                        item.author,
                        item.published,
                        now,
                        now,
                        item.source_name,
                    )
                    for item_id, (item, keys) in zip(ids, entries, strict=True)
                ],
            )
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO story_keys(key, item_id) VALUES (?, ?)",
                [
                    (key, item_id)
                    for item_id, (_item, keys) in zip(ids, entries, strict=True)
                    for key in keys
                ],
            )
        return ids

    def add_outbox_many(
        self, messages: Sequence[tuple[str, str, dict[str, Any]]], now: float
    ) -> list[int]:
        """Pending (channel, kind, payload) messages in one statement; their ids."""
        if not messages:
            return []
        with self.transaction():
            ids = self._next_ids("outbox", len(messages))
            self.db.conn.executemany(
                "INSERT INTO outbox(id, channel, kind, state, payload, created_at, "
                "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (outbox_id, channel, kind, PENDING, json.dumps(payload), now, now)
                    for outbox_id, (channel, kind, payload) in zip(ids, messages, strict=True)
                ],
            )
        return ids

    def add_alerts(self, alerts: Sequence[tuple[str, int, Sequence[str], int]], now: float) -> None:
        """(channel, item id, terms, outbox id) rows; existing pairs are kept."""
        with self._lock:
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO alerts(channel, item_id, terms, outbox_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (channel, item_id, json.dumps(list(terms)), outbox_id, now)
                    for channel, item_id, terms, outbox_id in alerts
                ],
            )

    def recent_items(self, limit: int = 200) -> list[StoredItem]:
        rows = self._rows(
            "SELECT * FROM items ORDER BY COALESCE(published_at, first_seen_at) DESC, id DESC "
            "LIMIT ?",
            (limit,),
        )
        return [_stored_item(r) for r in rows]

    def prune_items(self, older_than: float, live_feeds: Sequence[int] = ()) -> int:
        """Forget stories not seen in any feed since `older_than` (and their
        alerts), unless one of `live_feeds` still carries them: a feed that
        answers 304 for months still has its stories, and forgetting them
        would make them new (and alert) when the feed next changes."""
        with self.transaction():
            ids = [
                r[0]
                for r in self._execute(
                    "SELECT id FROM items WHERE last_seen_at < ? AND id NOT IN "
                    "(SELECT a.item_id FROM alerts a JOIN outbox o ON o.id = a.outbox_id "
                    " WHERE o.state IN (?, ?, ?)) AND NOT EXISTS "
                    "(SELECT 1 FROM feed_items fi JOIN feeds f ON f.id = fi.feed_id "
                    " WHERE fi.item_id = items.id AND fi.last_seen_at >= f.items_seen_at "
                    " AND f.id IN (SELECT value FROM json_each(?)))",
                    (older_than, ASSEMBLING, PENDING, SENDING, json.dumps(list(live_feeds))),
                ).fetchall()
            ]
            for item_id in ids:
                self._execute("DELETE FROM alerts WHERE item_id = ?", (item_id,))
                self._execute("DELETE FROM story_keys WHERE item_id = ?", (item_id,))
                self._execute("DELETE FROM feed_items WHERE item_id = ?", (item_id,))
                self._execute("DELETE FROM items WHERE id = ?", (item_id,))
        return len(ids)

    # -- near-duplicate stories ------------------------------------------

    def add_signatures(self, rows: Sequence[tuple[int, SignatureRow]]) -> None:
        """(story item id, signature row) pairs; an item signed before is kept."""
        with self._lock:
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO signatures(item_key, item_id, seen_at, version, title, "
                "lead, keys, initials, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.item, item_id, r.seen, r.version, r.title, r.lead, r.keys, r.initials,
                     r.context)
                    for item_id, r in rows
                ],
            )  # fmt: skip

    def signatures_after(self, last_id: int, seen_since: float) -> tuple[list[SignatureRow], int]:
        """Rows stored after row `last_id` (by any process) and seen since
        `seen_since`, oldest first, and the last row id read."""
        rows = self._execute(
            "SELECT id, item_id, item_key, seen_at, version, title, lead, keys, initials, "
            "context FROM signatures WHERE id > ? AND seen_at >= ? ORDER BY seen_at, id",
            (last_id, seen_since),
        ).fetchall()
        top = self._execute("SELECT COALESCE(MAX(id), 0) FROM signatures").fetchone()[0]
        return [
            SignatureRow(
                str(r[1]), str(r[2]), float(r[3]), bytes(r[5]), bytes(r[6]), bytes(r[7]),
                bytes(r[8]), bytes(r[9]), int(r[4]),
            )
            for r in rows
        ], max(int(top), last_id)  # fmt: skip

    def add_story_copies(self, copies: Sequence[StoryCopy]) -> None:
        with self._lock:
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO story_copies(item_id, item_key, feed_id, source, title, "
                "link, like_key, score, reason, merged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (c.item_id, c.item_key, c.feed_id, c.source, c.title, c.link, c.like_key,
                     c.score, c.reason, c.merged_at)
                    for c in copies
                ],
            )  # fmt: skip

    def story_copies(self, item_id: int) -> list[StoryCopy]:
        rows = self._rows(
            "SELECT * FROM story_copies WHERE item_id = ? ORDER BY merged_at, id", (item_id,)
        )
        return [
            StoryCopy(
                r["item_id"], r["item_key"], r["feed_id"], r["source"], r["title"], r["link"],
                r["like_key"], r["score"], r["reason"], r["merged_at"],
            )
            for r in rows
        ]  # fmt: skip

    def existing_items(self, item_ids: Sequence[int]) -> set[int]:
        rows = self._select_in("SELECT id FROM items WHERE id IN ({marks})", item_ids)
        return {int(r[0]) for r in rows}

    def story_item(self, item_id: int) -> StoredItem | None:
        rows = self._rows("SELECT * FROM items WHERE id = ?", (item_id,))
        return _stored_item(rows[0]) if rows else None

    def story_alerts(self, item_id: int) -> list[tuple[str, OutboxRow]]:
        """(channel, the alert's message) for every channel alerted for a story."""
        rows = self._rows(
            "SELECT a.channel AS alert_channel, o.* FROM alerts a "
            "JOIN outbox o ON o.id = a.outbox_id WHERE a.item_id = ? ORDER BY a.id",
            (item_id,),
        )
        return [(str(r.pop("alert_channel")), _outbox_row(r)) for r in rows]

    def single_alerts(self, item_ids: Sequence[int]) -> dict[tuple[str, int], int]:
        """(channel, item id) -> outbox id of the single alert (not a digest)
        a channel got for each of these stories: what a follow-up answers
        (an alert that died has nothing to answer)."""
        rows = self._select_in(
            "SELECT a.channel, a.item_id, a.outbox_id FROM alerts a JOIN outbox o "
            "ON o.id = a.outbox_id WHERE o.kind = 'alert' AND o.state != 'dead' "
            "AND a.item_id IN ({marks})",
            item_ids,
        )
        return {(str(c), int(i)): int(o) for c, i, o in rows}

    def add_followup_lines(self, lines: Sequence[FollowupLine]) -> int:
        """New "Also reported by" lines; a source already reported for the
        same channel and story is left out. Returns how many were added."""
        with self._lock:
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO followup_lines(outbox_id, parent_id, channel, item_id, "
                "source, title, link) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (f.outbox_id, f.parent_id, f.channel, f.item_id, f.source, f.title, f.link)
                    for f in lines
                ],
            )
            return int(self.db.conn.total_changes - before)

    def followup_lines(self, parent_id: int, up_to_outbox: int | None = None) -> list[FollowupLine]:
        """Lines answering alert `parent_id`, in order (those of follow-ups up
        to `up_to_outbox` only, when given)."""
        rows = self._rows(
            "SELECT outbox_id, parent_id, channel, item_id, source, title, link "
            "FROM followup_lines WHERE parent_id = ? AND outbox_id <= ? ORDER BY id",
            (parent_id, up_to_outbox if up_to_outbox is not None else 2**62),
        )
        return [FollowupLine(**r) for r in rows]

    def followup_outbox_lines(self, outbox_id: int) -> list[FollowupLine]:
        rows = self._rows(
            "SELECT outbox_id, parent_id, channel, item_id, source, title, link "
            "FROM followup_lines WHERE outbox_id = ? ORDER BY id",
            (outbox_id,),
        )
        return [FollowupLine(**r) for r in rows]

    def discard_outbox(self, outbox_id: int) -> None:
        """An assembling message that ended up with nothing to say."""
        self._execute("DELETE FROM outbox WHERE id = ? AND state = ?", (outbox_id, ASSEMBLING))

    # -- alerts and outbox ----------------------------------------------

    def add_outbox(
        self, channel: str, kind: str, payload: dict[str, Any], now: float, state: str = PENDING
    ) -> int:
        cursor = self._execute(
            "INSERT INTO outbox(channel, kind, state, payload, created_at, next_attempt_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (channel, kind, state, json.dumps(payload), now, now),
        )
        return int(cursor.lastrowid or 0)

    def digest_entries(self, outbox_id: int) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT i.title, i.link, i.published_at, i.source_name, f.title AS feed_title,
                      f.url AS feed_url, a.terms
               FROM alerts a JOIN items i ON i.id = a.item_id JOIN feeds f ON f.id = i.feed_id
               WHERE a.outbox_id = ? ORDER BY a.id""",
            (outbox_id,),
        )

    def assembling_digests(self) -> list[OutboxRow]:
        return self.assembling("digest")

    def assembling(self, kind: str) -> list[OutboxRow]:
        """Messages of `kind` a cycle is still adding to."""
        return self._outbox_where("state = ? AND kind = ?", (ASSEMBLING, kind))

    def finish_digest(self, outbox_id: int, payload: dict[str, Any]) -> None:
        self._execute(
            "UPDATE outbox SET state = ?, payload = ? WHERE id = ? AND state = ?",
            (PENDING, json.dumps(payload), outbox_id, ASSEMBLING),
        )

    def _outbox_where(self, where: str, params: Sequence[Any], limit: int = -1) -> list[OutboxRow]:
        rows = self._rows(
            f"SELECT * FROM outbox WHERE {where} ORDER BY id LIMIT {int(limit)}", params
        )
        return [_outbox_row(r) for r in rows]

    def outbox_message(self, outbox_id: int) -> OutboxRow | None:
        found = self._outbox_where("id = ?", (outbox_id,))
        return found[0] if found else None

    def due_messages(self, now: float) -> list[OutboxRow]:
        """The oldest sendable message of every channel whose retry time has come."""
        rows = self._rows(
            """SELECT o.* FROM outbox o
               JOIN (SELECT channel, MIN(id) AS id FROM outbox
                     WHERE state IN (?, ?) GROUP BY channel) head ON head.id = o.id
               WHERE o.next_attempt_at <= ? ORDER BY o.id""",
            (PENDING, SENDING, now),
        )
        return [_outbox_row(r) for r in rows]

    def mark_sending(self, outbox_id: int, now: float) -> None:
        self._execute(
            "UPDATE outbox SET state = ?, attempts = attempts + 1 WHERE id = ?",
            (SENDING, outbox_id),
        )

    # The outcome of an attempt is recorded only by the sender that holds the
    # message (`owner`, from `claim_message`): if its lease ran out and another
    # sender took the message over, a late result must not overwrite the new
    # owner's state. Each returns False when the update was refused.

    def mark_sent(self, outbox_id: int, remote_id: str | None, now: float, *, owner: str) -> bool:
        """Delivered. Also accepted after the message was released as an
        orphan but before anyone else claimed it (it did arrive)."""
        cursor = self._execute(
            "UPDATE outbox SET state = ?, remote_id = ?, sent_at = ?, last_error = NULL "
            "WHERE id = ? AND state IN (?, ?) AND sending_owner = ?",
            (SENT, remote_id, now, outbox_id, SENDING, PENDING, owner),
        )
        return cursor.rowcount == 1

    def mark_retry(self, outbox_id: int, error: str, next_attempt_at: float, *, owner: str) -> bool:
        cursor = self._execute(
            "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = ? "
            "WHERE id = ? AND state = ? AND sending_owner = ?",
            (PENDING, error, next_attempt_at, outbox_id, SENDING, owner),
        )
        return cursor.rowcount == 1

    def mark_dead(self, outbox_id: int, error: str, now: float, *, owner: str) -> bool:
        cursor = self._execute(
            "UPDATE outbox SET state = ?, last_error = ?, sent_at = NULL "
            "WHERE id = ? AND state = ? AND sending_owner = ?",
            (DEAD, error, outbox_id, SENDING, owner),
        )
        return cursor.rowcount == 1

    def requeue(self, channel: str | None, now: float) -> int:
        """Dead messages (of one channel, or all) back to pending, due now
        and with a fresh attempt count, e.g. after the bot was invited or a
        token fixed. They keep their place (id order) in their channel.
        Returns how many."""
        cursor = self._execute(
            "UPDATE outbox SET state = ?, attempts = 0, next_attempt_at = ?, "
            "last_error = 'queued again by newshound retry (was: ' || COALESCE(last_error, '') "
            "|| ')' WHERE state = ? AND (? IS NULL OR channel = ?)",
            (PENDING, now, DEAD, channel, channel),
        )
        return cursor.rowcount

    # -- paused destinations ---------------------------------------------

    def pause_destination(self, key: str, reason: str, now: float) -> bool:
        """Pause every message behind `key`; False if it already was paused."""
        cursor = self._execute(
            "INSERT OR IGNORE INTO paused_destinations(key, reason, since) VALUES (?, ?, ?)",
            (key, reason, now),
        )
        return cursor.rowcount == 1

    def paused_destinations(self) -> dict[str, tuple[str, float]]:
        """key -> (reason, since)."""
        rows = self._execute("SELECT key, reason, since FROM paused_destinations").fetchall()
        return {str(key): (str(reason), float(since)) for key, reason, since in rows}

    def resume_destinations(self, prefix: str = "") -> int:
        """Clear the pauses whose key starts with `prefix` (all by default)."""
        cursor = self._execute(
            "DELETE FROM paused_destinations WHERE substr(key, 1, length(?)) = ?", (prefix, prefix)
        )
        return cursor.rowcount

    def outbox_counts(self) -> dict[str, int]:
        rows = self._execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}

    def messages(self, state: str, limit: int = 50) -> list[OutboxRow]:
        return self._outbox_where("state = ?", (state,), limit)

    def alert_count(self, channel: str | None = None) -> int:
        if channel is None:
            return int(self._execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
        return int(
            self._execute("SELECT COUNT(*) FROM alerts WHERE channel = ?", (channel,)).fetchone()[0]
        )

    # -- delivery: heads, claims, gates ---------------------------------

    def channel_heads(self) -> list[OutboxRow]:
        """The oldest open (pending or sending) message of every channel,
        whatever its retry time: nothing behind it may go first."""
        rows = self._rows(
            """SELECT o.* FROM outbox o
               JOIN (SELECT channel, MIN(id) AS id FROM outbox
                     WHERE state IN (?, ?) GROUP BY channel) head ON head.id = o.id
               ORDER BY o.id""",
            (PENDING, SENDING),
        )
        return [_outbox_row(r) for r in rows]

    def gates(self) -> dict[str, float]:
        """Every send gate: key -> time before which no call may be made."""
        rows = self._execute("SELECT key, next_at FROM send_gates").fetchall()
        return {str(key): float(at) for key, at in rows}

    def push_gate(self, key: str, not_before: float) -> None:
        """Close gate `key` until `not_before` (never reopens it earlier)."""
        self._execute(
            "INSERT INTO send_gates(key, next_at) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET next_at = MAX(next_at, excluded.next_at)",
            (key, not_before),
        )

    def claim_message(
        self,
        outbox_id: int,
        *,
        owner: str,
        now: float,
        gate_keys: Sequence[str],
        hold: dict[str, float],
    ) -> Claim:
        """Atomically (across processes) take a message for sending.

        Succeeds only when it is still pending, still the oldest open message
        of its channel and no gate in `gate_keys` is closed at `now`; then it
        becomes `sending` (held by `owner`) and the gates in `hold` close
        until the given times, in the same transaction.
        """
        with self.transaction():
            row = self.outbox_message(outbox_id)
            if row is None or row.state != PENDING:
                return Claim(None)
            head = self._execute(
                "SELECT MIN(id) FROM outbox WHERE channel = ? AND state IN (?, ?)",
                (row.channel, PENDING, SENDING),
            ).fetchone()[0]
            if head != outbox_id:
                return Claim(None)
            marks = ",".join("?" for _ in gate_keys) or "NULL"
            closed = self._execute(
                f"SELECT MAX(next_at) FROM send_gates WHERE key IN ({marks})", tuple(gate_keys)
            ).fetchone()[0]
            if closed is not None and closed > now:
                return Claim(None, float(closed))
            self._execute(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, sending_at = ?, "
                "sending_owner = ? WHERE id = ?",
                (SENDING, now, owner, outbox_id),
            )
            for key, until in hold.items():
                self.push_gate(key, until)
            claimed = self.outbox_message(outbox_id)
        return Claim(claimed)

    def mark_uncertain(
        self,
        outbox_id: int,
        error: str,
        next_attempt_at: float,
        *,
        owner: str,
        now: float | None = None,
    ) -> bool:
        """Back to pending after an attempt that may have arrived: remember
        the window to look for it in at the destination before resending
        (from the first such attempt until `now`); a new window starts a
        new lookup."""
        cursor = self._execute(
            "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = ?, "
            "verify_since = COALESCE(verify_since, sending_at, created_at), "
            "verify_until = ?, verify_cursor = NULL, verify_tries = 0 "
            "WHERE id = ? AND state = ? AND sending_owner = ?",
            (PENDING, error, next_attempt_at, now, outbox_id, SENDING, owner),
        )
        return cursor.rowcount == 1

    def save_lookup(self, outbox_id: int, cursor: str | None, tries: int, *, owner: str) -> bool:
        """Where a history lookup for a message we hold left off."""
        updated = self._execute(
            "UPDATE outbox SET verify_cursor = ?, verify_tries = ? "
            "WHERE id = ? AND state = ? AND sending_owner = ?",
            (cursor, tries, outbox_id, SENDING, owner),
        )
        return updated.rowcount == 1

    def alert_message_id(self, channel: str, item_id: int) -> str | None:
        """The destination's id of the alert a channel got for a story
        (Slack `ts`, Discord message id): what a threaded follow-up or an
        edit refers to, without reading the channel's history."""
        row = self._execute(
            "SELECT o.remote_id FROM alerts a JOIN outbox o ON o.id = a.outbox_id "
            "WHERE a.channel = ? AND a.item_id = ? AND o.state = ?",
            (channel, item_id, SENT),
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def release_orphan(self, outbox_id: int, owner: str | None, now: float) -> bool:
        """A `sending` message whose sender died: pending again, to be looked
        for at the destination before it is resent. False if its owner moved on."""
        cursor = self._execute(
            "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = ?, "
            "verify_since = COALESCE(verify_since, sending_at, created_at), "
            "verify_until = ?, verify_cursor = NULL, verify_tries = 0 "
            "WHERE id = ? AND state = ? AND sending_owner IS ?",
            (
                PENDING,
                "interrupted; checking before resending",
                now,
                now,
                outbox_id,
                SENDING,
                owner,
            ),
        )
        return cursor.rowcount == 1

    # -- watch terms -----------------------------------------------------

    def sync_config_terms(self, terms: Sequence[tuple[str, str]], now: float) -> None:
        """Mirror feeds.yaml: config-owned rows equal exactly the config's terms."""
        wanted = {(channel, term_key(term)): term for channel, term in terms}
        with self.transaction():
            existing = self._rows("SELECT channel, term_key FROM terms WHERE source = 'config'")
            for row in existing:
                if (row["channel"], row["term_key"]) not in wanted:
                    # Dropped from the config: a term someone had added before
                    # the config listed it goes back to them; the rest goes.
                    self._execute(
                        "UPDATE terms SET source = claimed_from, claimed_from = NULL "
                        "WHERE channel = ? AND term_key = ? AND source = 'config' "
                        "AND claimed_from IS NOT NULL",
                        (row["channel"], row["term_key"]),
                    )
                    self._execute(
                        "DELETE FROM terms "
                        "WHERE channel = ? AND term_key = ? AND source = 'config'",
                        (row["channel"], row["term_key"]),
                    )
            for (channel, key), term in wanted.items():
                # A config term takes ownership of an identical term added from
                # Slack, remembering that it was theirs first.
                self._execute(
                    """INSERT INTO terms(channel, term, term_key, source, added_at)
                       VALUES (?, ?, ?, 'config', ?)
                       ON CONFLICT(channel, term_key) DO UPDATE SET
                         claimed_from = CASE WHEN terms.source = 'config'
                                             THEN terms.claimed_from ELSE terms.source END,
                         source = 'config', term = excluded.term""",
                    (channel, term, key, now),
                )

    def add_term(
        self,
        channel: str,
        term: str,
        source: str,
        added_by: str | None,
        now: float,
        *,
        limit: int | None = None,
    ) -> bool:
        """False when the channel already watches this term, or already has
        `limit` terms: one statement, so concurrent adds cannot pass the limit."""
        cursor = self._execute(
            "INSERT OR IGNORE INTO terms(channel, term, term_key, source, added_by, added_at) "
            "SELECT ?, ?, ?, ?, ?, ? "
            "WHERE ? IS NULL OR (SELECT COUNT(*) FROM terms WHERE channel = ?) < ?",
            (channel, term, term_key(term), source, added_by, now, limit, channel, limit),
        )
        return cursor.rowcount == 1

    def find_term(self, channel: str, term: str) -> TermRow | None:
        rows = self._rows(
            "SELECT * FROM terms WHERE channel = ? AND term_key = ?", (channel, term_key(term))
        )
        return _term_row(rows[0]) if rows else None

    def remove_term(self, channel: str, term: str) -> bool:
        cursor = self._execute(
            "DELETE FROM terms WHERE channel = ? AND term_key = ? AND source != 'config'",
            (channel, term_key(term)),
        )
        return cursor.rowcount == 1

    def terms(self, channel: str | None = None) -> list[TermRow]:
        if channel is None:
            rows = self._rows("SELECT * FROM terms ORDER BY channel, id")
        else:
            rows = self._rows("SELECT * FROM terms WHERE channel = ? ORDER BY id", (channel,))
        return [_term_row(r) for r in rows]

    def count_terms(self, channel: str) -> int:
        return int(
            self._execute("SELECT COUNT(*) FROM terms WHERE channel = ?", (channel,)).fetchone()[0]
        )


def _split_sql(script: str) -> list[str]:
    # Migrations hold no semicolons inside strings, so a plain split is exact.
    statements = []
    for chunk in script.split(";"):
        lines = [ln for ln in chunk.splitlines() if not ln.strip().startswith("--")]
        text = "\n".join(lines).strip()
        if text:
            statements.append(text)
    return statements


def _feed_row(r: dict[str, Any]) -> FeedRow:
    return FeedRow(
        id=r["id"],
        url=r["url"],
        title=r["title"],
        etag=r["etag"],
        last_modified=r["last_modified"],
        body_hash=r["body_hash"],
        first_polled_at=r["first_polled_at"],
        last_polled_at=r["last_polled_at"],
        last_success_at=r["last_success_at"],
        last_error=r["last_error"],
        last_error_kind=r["last_error_kind"],
        last_error_at=r["last_error_at"],
        consecutive_failures=r["consecutive_failures"],
        next_check_at=r["next_check_at"],
        gone=bool(r["gone"]),
        suspended_at=r["suspended_at"],
        items_seen_at=r.get("items_seen_at"),
        check_interval=r.get("check_interval"),
    )


def _outbox_row(r: dict[str, Any]) -> OutboxRow:
    return OutboxRow(
        id=r["id"],
        channel=r["channel"],
        kind=r["kind"],
        state=r["state"],
        payload=json.loads(r["payload"]),
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
        remote_id=r["remote_id"],
        created_at=r["created_at"],
        sending_at=r.get("sending_at"),
        sending_owner=r.get("sending_owner"),
        verify_since=r.get("verify_since"),
        verify_until=r.get("verify_until"),
        verify_cursor=r.get("verify_cursor"),
        verify_tries=r.get("verify_tries") or 0,
    )


def _term_row(r: dict[str, Any]) -> TermRow:
    return TermRow(
        channel=r["channel"],
        term=r["term"],
        source=r["source"],
        added_by=r["added_by"],
        added_at=r["added_at"],
    )


def _stored_item(r: dict[str, Any]) -> StoredItem:
    return StoredItem(
        id=r["id"],
        feed_id=r["feed_id"],
        first_seen_at=r["first_seen_at"],
        item=Item(
            title=r["title"],
            link=r["link"],
            guid=r["guid"],
            summary=r["summary"],
            tags=tuple(json.loads(r["tags"])),
            published=r["published_at"],
            author=r["author"],
            source_name=r["source_name"],
        ),
    )
