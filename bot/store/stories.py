"""Stories and items: one row per story, every key it has been seen under,
which feeds carry it, its near-duplicate signatures and the copies merged
into it.

Deduplication is enforced by unique keys (`story_keys.key`,
`items.story_key`), never by in-memory sets, so it survives restarts and
concurrent workers: a worker that loses the race for a key gets `Conflict`
and runs its feed again, finding the story known.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.models import Item
from bot.neardup import SignatureRow
from bot.records import ASSEMBLING, PENDING, SENDING, StoredItem, StoryCopy
from bot.store.database import Database

# SQLite allows 32,766 parameters per statement; a few hundred keep each cheap.
_CHUNK = 500

_ITEM_COLUMNS = (
    "story_key",
    "feed_id",
    "guid",
    "link",
    "title",
    "summary",
    "tags",
    "author",
    "published_at",
    "first_seen_at",
    "last_seen_at",
    "source_name",
)


class StoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _select_in(
        self, sql: str, values: Sequence[Any], before: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Rows of `sql`, whose `{marks}` is an IN list of `values` (in
        chunks); `before` fills the placeholders ahead of it."""
        rows: list[tuple[Any, ...]] = []
        unique = list(dict.fromkeys(values))
        for offset in range(0, len(unique), _CHUNK):
            chunk = unique[offset : offset + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self.db.rows(sql.format(marks=marks), [*before, *chunk])
        return rows

    def find(self, keys: Sequence[str]) -> int | None:
        """The item id of a story already seen under any of these keys."""
        found = self.find_many(keys)
        return next((found[key] for key in keys if key in found), None)

    def find_many(self, keys: Sequence[str]) -> dict[str, int]:
        """key -> item id for every one of `keys` already known."""
        rows = self._select_in("SELECT key, item_id FROM story_keys WHERE key IN ({marks})", keys)
        return {str(key): int(item_id) for key, item_id in rows}

    def insert(
        self, feed_id: int, entries: Sequence[tuple[Item, Sequence[str]]], now: float
    ) -> list[int]:
        """Insert new stories; returns their ids in order (from the database)."""
        if not entries:
            return []
        with self.db.transaction():
            ids = self.db.insert_rows(
                "items",
                _ITEM_COLUMNS,
                [
                    (
                        keys[0],
                        feed_id,
                        item.guid,
                        item.link,
                        item.title,
                        item.summary,
                        json.dumps(list(item.tags)) if item.tags else "[]",
                        item.author,
                        item.published,
                        now,
                        now,
                        item.source_name,
                    )
                    for item, keys in entries
                ],
            )
            self.db.executemany(
                "INSERT INTO story_keys(key, item_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [
                    (key, item_id)
                    for item_id, (_item, keys) in zip(ids, entries, strict=True)
                    for key in keys
                ],
            )
        return ids

    def touch(self, seen: Sequence[tuple[int, Sequence[str]]], now: float) -> None:
        """Known stories seen again: remember new aliases, keep them from pruning."""
        with self.db.transaction():
            self.db.executemany(
                "INSERT INTO story_keys(key, item_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(key, item_id) for item_id, keys in seen for key in keys],
            )
            self.db.executemany(
                "UPDATE items SET last_seen_at = ? WHERE id = ?",
                [(now, item_id) for item_id in sorted(dict.fromkeys(i for i, _ in seen))],
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

    def record_carried(self, feed_id: int, item_ids: Sequence[int], now: float) -> None:
        """The feed's content was read at `now` and carries exactly `item_ids`."""
        with self.db.transaction():
            self.db.executemany(
                "INSERT INTO feed_items(feed_id, item_id, last_seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT(feed_id, item_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                [(feed_id, item_id, now) for item_id in sorted(dict.fromkeys(item_ids))],
            )
            self.db.execute("UPDATE feeds SET items_seen_at = ? WHERE id = ?", (now, feed_id))

    def recent(self, limit: int = 200) -> list[StoredItem]:
        rows = self.db.query(
            "SELECT * FROM items ORDER BY COALESCE(published_at, first_seen_at) DESC, id DESC "
            "LIMIT ?",
            (limit,),
        )
        return [_stored_item(r) for r in rows]

    def existing(self, item_ids: Sequence[int]) -> set[int]:
        rows = self._select_in("SELECT id FROM items WHERE id IN ({marks})", item_ids)
        return {int(r[0]) for r in rows}

    def get(self, item_id: int) -> StoredItem | None:
        rows = self.db.query("SELECT * FROM items WHERE id = ?", (item_id,))
        return _stored_item(rows[0]) if rows else None

    def prune(self, older_than: float, live_feeds: Sequence[int] = ()) -> int:
        """Forget stories not seen in any feed since `older_than` (and their
        alerts), unless one of `live_feeds` still carries them: a feed that
        answers 304 for months still has its stories, and forgetting them
        would make them new (and alert) when the feed next changes."""
        dialect = self.db.dialect
        with self.db.transaction():
            ids = [
                int(r[0])
                for r in self.db.rows(
                    "SELECT id FROM items WHERE last_seen_at < ? AND id NOT IN "
                    "(SELECT a.item_id FROM alerts a JOIN outbox o ON o.id = a.outbox_id "
                    " WHERE o.state IN (?, ?, ?)) AND NOT EXISTS "
                    "(SELECT 1 FROM feed_items fi JOIN feeds f ON f.id = fi.feed_id "
                    " WHERE fi.item_id = items.id AND fi.last_seen_at >= f.items_seen_at "
                    f" AND {dialect.id_list('f.id')})",
                    (older_than, ASSEMBLING, PENDING, SENDING, dialect.id_list_param(live_feeds)),
                )
            ]
            for table, column in (
                ("alerts", "item_id"),
                ("followup_lines", "item_id"),
                ("story_copies", "item_id"),
                ("signatures", "item_id"),
                ("story_keys", "item_id"),
                ("feed_items", "item_id"),
                ("items", "id"),
            ):
                self.db.executemany(
                    f"DELETE FROM {table} WHERE {column} = ?", [(item_id,) for item_id in ids]
                )
        return len(ids)

    # -- near-duplicates ----------------------------------------------------

    def add_signatures(self, rows: Sequence[tuple[int, SignatureRow]]) -> None:
        """(story item id, signature row) pairs; an item signed before is kept."""
        self.db.executemany(
            "INSERT INTO signatures(item_key, item_id, seen_at, version, title, lead, keys, "
            "initials, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                (r.item, item_id, r.seen, r.version, r.title, r.lead, r.keys, r.initials,
                 r.context)
                for item_id, r in rows
            ],
        )  # fmt: skip

    def signatures_after(self, last_id: int, seen_since: float) -> tuple[list[SignatureRow], int]:
        """Rows stored after row `last_id` (by any process) and seen since
        `seen_since`, oldest first, and the last row id read."""
        rows = self.db.rows(
            "SELECT id, item_id, item_key, seen_at, version, title, lead, keys, initials, "
            "context FROM signatures WHERE id > ? AND seen_at >= ? ORDER BY seen_at, id",
            (last_id, seen_since),
        )
        top = self.db.scalar("SELECT COALESCE(MAX(id), 0) FROM signatures")
        return [
            SignatureRow(
                str(r[1]), str(r[2]), float(r[3]), bytes(r[5]), bytes(r[6]), bytes(r[7]),
                bytes(r[8]), bytes(r[9]), int(r[4]),
            )
            for r in rows
        ], max(int(top), last_id)  # fmt: skip

    def add_copies(self, copies: Sequence[StoryCopy]) -> None:
        self.db.executemany(
            "INSERT INTO story_copies(item_id, item_key, feed_id, source, title, link, "
            "like_key, score, reason, merged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                (c.item_id, c.item_key, c.feed_id, c.source, c.title, c.link, c.like_key,
                 c.score, c.reason, c.merged_at)
                for c in copies
            ],
        )  # fmt: skip

    def copies(self, item_id: int) -> list[StoryCopy]:
        rows = self.db.query(
            "SELECT * FROM story_copies WHERE item_id = ? ORDER BY merged_at, id", (item_id,)
        )
        return [
            StoryCopy(
                r["item_id"], r["item_key"], r["feed_id"], r["source"], r["title"], r["link"],
                r["like_key"], r["score"], r["reason"], r["merged_at"],
            )
            for r in rows
        ]  # fmt: skip


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
