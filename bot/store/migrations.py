"""Numbered schema migrations. Append only: never edit a migration that shipped.

`bot.store.schema` applies every migration whose number is above the
database's schema version, each in its own transaction. They are written in
SQLite's DDL; `bot.store.dialect` turns them into PostgreSQL's, so both
databases go through the same numbered steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.query import term_key
from bot.slack_text import unescape_command_text

if TYPE_CHECKING:
    from bot.store.database import Database

# A migration is SQL, or a function for data changes SQL cannot express
# (it runs inside the migration's transaction).
Migration = str | Callable[["Database"], None]


def repair_terms(db: Database) -> None:
    """Terms added from Slack before its `&amp;`, `&lt;`, `&gt;` were decoded
    get their characters back, every key is recomputed with `term_key` (the
    normalisation matching uses), and terms that now share a key in a channel
    are merged into one that keeps the earliest author and time. A term from
    feeds.yaml stays owned by the config, remembering who had it before."""
    rows = db.rows(
        "SELECT id, channel, term, source, added_by, added_at, claimed_from FROM terms "
        "ORDER BY added_at, id"
    )
    groups: dict[tuple[str, str], list[tuple[int, str, str, str | None, float, str | None]]] = {}
    for row_id, channel, term, source, added_by, added_at, claimed_from in rows:
        if source != "config":
            term = unescape_command_text(term)
        groups.setdefault((channel, term_key(term)), []).append(
            (row_id, term, source, added_by, added_at, claimed_from)
        )
    # Temporary keys first: a row's new key may be another row's old one.
    db.execute("UPDATE terms SET term_key = '#' || id")
    for (_channel, key), members in groups.items():
        earliest = members[0]
        keeper = next((m for m in members if m[2] == "config"), earliest)
        claimed_from = keeper[5]
        if keeper[2] == "config" and claimed_from is None:
            claimed_from = next((m[2] for m in members if m[2] != "config"), None)
        for other in members:
            if other is not keeper:
                db.execute("DELETE FROM terms WHERE id = ?", (other[0],))
        db.execute(
            "UPDATE terms SET term = ?, term_key = ?, added_by = ?, added_at = ?, "
            "claimed_from = ? WHERE id = ?",
            (keeper[1], key, earliest[3], earliest[4], claimed_from, keeper[0]),
        )


MIGRATIONS: list[tuple[int, Migration]] = [
    (
        1,
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            title TEXT,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            first_polled_at REAL,
            last_polled_at REAL,
            last_success_at REAL,
            last_error TEXT,
            last_error_kind TEXT,
            last_error_at REAL,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            next_check_at REAL NOT NULL DEFAULT 0,
            gone INTEGER NOT NULL DEFAULT 0,
            suspended_at REAL
        );

        -- One row per story, whichever feed carried it first.
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            story_key TEXT NOT NULL UNIQUE,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            guid TEXT,
            link TEXT,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            tags TEXT NOT NULL,
            author TEXT,
            published_at REAL,
            first_seen_at REAL NOT NULL,
            last_seen_at REAL NOT NULL
        );
        CREATE INDEX items_first_seen ON items(first_seen_at);

        -- Every identity a story has been seen under (canonical link, GUID,
        -- content hash): a story matching any of them is the same story.
        CREATE TABLE story_keys (
            key TEXT PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX story_keys_item ON story_keys(item_id);

        -- Messages to send, written before any send is attempted.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT,
            remote_id TEXT,
            created_at REAL NOT NULL,
            sent_at REAL
        );
        CREATE INDEX outbox_state ON outbox(state, channel, id);

        -- One alert per (channel, story): the dedup guarantee lives here.
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            item_id INTEGER NOT NULL REFERENCES items(id),
            terms TEXT NOT NULL,
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            created_at REAL NOT NULL,
            UNIQUE (channel, item_id)
        );
        CREATE INDEX alerts_outbox ON alerts(outbox_id);

        CREATE TABLE terms (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            term TEXT NOT NULL,
            term_key TEXT NOT NULL,
            source TEXT NOT NULL,
            added_by TEXT,
            added_at REAL NOT NULL,
            UNIQUE (channel, term_key)
        );

        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- Who holds a message in `sending` and since when: another sender
        -- leaves it alone while that owner lives, after a crash it is checked
        -- at the destination before it is sent again.
        ALTER TABLE outbox ADD COLUMN sending_at REAL;
        ALTER TABLE outbox ADD COLUMN sending_owner TEXT;
        -- Set when an attempt may have arrived although we never heard so
        -- (crash, timeout): the time of the first such attempt. The message
        -- is looked for at the destination from then on before it is resent.
        ALTER TABLE outbox ADD COLUMN verify_since REAL;

        -- Send gates shared by every process using this database: no call
        -- for `key` (a channel, an API method, a webhook) before `next_at`.
        CREATE TABLE send_gates (
            key TEXT PRIMARY KEY,
            next_at REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        3,
        """
        -- Pruning scans stories by when a feed last carried them.
        CREATE INDEX items_last_seen ON items(last_seen_at);
        """,
    ),
    (
        4,
        """
        -- Which feeds carry which stories. A story new to a feed is offered to
        -- the channels watching that feed even if another feed brought it
        -- first, and a story a feed still carries is never pruned, however
        -- long the feed answers 304.
        CREATE TABLE feed_items (
            feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            last_seen_at REAL NOT NULL,
            PRIMARY KEY (feed_id, item_id)
        ) WITHOUT ROWID;
        CREATE INDEX feed_items_item ON feed_items(item_id);
        INSERT OR IGNORE INTO feed_items(feed_id, item_id, last_seen_at)
            SELECT feed_id, id, last_seen_at FROM items;
        -- When the feed's content was last read (its items are the rows of
        -- feed_items seen then). NULL for feeds read before this migration,
        -- whose next read only records what they carry.
        ALTER TABLE feeds ADD COLUMN items_seen_at REAL;
        """,
    ),
    (
        5,
        """
        -- A term someone added with /watch that feeds.yaml then also lists is
        -- owned by the config meanwhile, and this remembers who had it before
        -- (their source), so it goes back to them when the config drops it.
        ALTER TABLE terms ADD COLUMN claimed_from TEXT;
        """,
    ),
    (
        6,
        """
        -- The feed's configured interval when its next check was set, so a
        -- shorter interval after a reload or restart takes effect at once
        -- instead of after the old, longer wait.
        ALTER TABLE feeds ADD COLUMN check_interval REAL;
        """,
    ),
    (
        7,
        """
        -- The publisher an aggregator's entry names (Google News' <source>):
        -- digests name it as single alerts do, instead of the aggregator.
        ALTER TABLE items ADD COLUMN source_name TEXT;
        """,
    ),
    (8, repair_terms),
    (
        9,
        """
        -- A destination that no message can reach until someone fixes it
        -- (a revoked or invalid Slack token): its messages stay pending and
        -- are not tried until `newshound retry` clears the row.
        CREATE TABLE paused_destinations (
            key TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            since REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        10,
        """
        -- Looking for an uncertain attempt in the destination's history is
        -- bounded and resumable: the window ends when the last uncertain
        -- attempt was recorded, the page cursor survives rate limits and
        -- restarts, and after a bounded number of tries the message is sent
        -- again (a possible duplicate) instead of holding its channel.
        ALTER TABLE outbox ADD COLUMN verify_until REAL;
        ALTER TABLE outbox ADD COLUMN verify_cursor TEXT;
        ALTER TABLE outbox ADD COLUMN verify_tries INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        11,
        """
        -- Near-duplicate signatures (bot/neardup.py, SignatureRow) of the
        -- items seen recently: the merge index is rebuilt from these after a
        -- restart. `item_key` is the item's own primary key, `item_id` the
        -- story it belongs to (a copy's row points at the story it merged into).
        CREATE TABLE signatures (
            id INTEGER PRIMARY KEY,
            item_key TEXT NOT NULL UNIQUE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            seen_at REAL NOT NULL,
            version INTEGER NOT NULL,
            title BLOB NOT NULL,
            lead BLOB NOT NULL,
            keys BLOB NOT NULL,
            initials BLOB NOT NULL,
            context BLOB NOT NULL
        );
        CREATE INDEX signatures_seen ON signatures(seen_at);
        CREATE INDEX signatures_item ON signatures(item_id);

        -- Copies merged into an earlier story, and why: the log says it once,
        -- `newshound status --story` shows it later.
        CREATE TABLE story_copies (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            item_key TEXT NOT NULL UNIQUE,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            source TEXT NOT NULL,
            title TEXT NOT NULL,
            link TEXT,
            like_key TEXT NOT NULL,
            score REAL NOT NULL,
            reason TEXT NOT NULL,
            merged_at REAL NOT NULL
        );
        CREATE INDEX story_copies_item ON story_copies(item_id);

        -- "Also reported by" lines, one per (channel, story, source): the
        -- follow-up message (outbox) that carries each.
        CREATE TABLE followup_lines (
            id INTEGER PRIMARY KEY,
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            parent_id INTEGER NOT NULL REFERENCES outbox(id),
            channel TEXT NOT NULL,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            title TEXT NOT NULL,
            link TEXT,
            UNIQUE (channel, item_id, source)
        );
        CREATE INDEX followup_lines_outbox ON followup_lines(outbox_id);
        """,
    ),
    (
        12,
        """
        -- Several workers on one database (PostgreSQL). A worker leases the
        -- feeds it is about to poll: the lease ends with the recorded outcome,
        -- or at `lease_until` if the worker died.
        ALTER TABLE feeds ADD COLUMN lease_owner TEXT;
        ALTER TABLE feeds ADD COLUMN lease_until REAL;

        -- A digest or follow-up a cycle is still adding to, under a key that
        -- is the same for every worker in that cycle (one per channel per
        -- cycle), cleared when the message is finished.
        ALTER TABLE outbox ADD COLUMN assembly_key TEXT;
        ALTER TABLE outbox ADD COLUMN cycle_key TEXT;
        CREATE UNIQUE INDEX outbox_assembly ON outbox(assembly_key);

        -- Single alerts each channel had in a cycle, counted across workers.
        CREATE TABLE channel_budgets (
            channel TEXT NOT NULL,
            cycle_key TEXT NOT NULL,
            singles INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            PRIMARY KEY (channel, cycle_key)
        ) WITHOUT ROWID;

        -- Workers alive on this database, and the config each one runs.
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            config_stamp TEXT NOT NULL,
            started_at REAL NOT NULL,
            seen_at REAL NOT NULL
        ) WITHOUT ROWID;

        -- Which workers are polling in which cycle: the last one out
        -- finishes the cycle's digests.
        CREATE TABLE cycle_workers (
            cycle_key TEXT NOT NULL,
            worker TEXT NOT NULL,
            active_until REAL NOT NULL,
            PRIMARY KEY (cycle_key, worker)
        ) WITHOUT ROWID;

        -- One row per channel that adds terms under a limit: the lock that
        -- keeps concurrent adds from passing it.
        CREATE TABLE term_limits (
            channel TEXT PRIMARY KEY
        ) WITHOUT ROWID;
        """,
    ),
]
