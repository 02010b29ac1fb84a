"""Feeds and their schedule: one row per configured feed URL, what its last
poll said, when it is due, and which worker holds it right now (a lease).

A worker claims due feeds before fetching them and gives them back when it
records the outcome; a worker that dies keeps its lease only until
`lease_until`, then another takes the feed over. So each feed is fetched
by one worker per due time, however many share the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.records import FeedRow, FeedSuccess
from bot.store.database import Database


class FeedStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def sync(self, urls: Sequence[str]) -> None:
        """Make sure every configured feed has a row (new ones are due now)."""
        with self.db.transaction():
            self.db.executemany(
                "INSERT INTO feeds(url) VALUES (?) ON CONFLICT DO NOTHING", [(u,) for u in urls]
            )

    def get(self, url: str) -> FeedRow | None:
        rows = self.db.query("SELECT * FROM feeds WHERE url = ?", (url,))
        return _feed_row(rows[0]) if rows else None

    def all(self, urls: Sequence[str] | None = None) -> list[FeedRow]:
        found = [_feed_row(r) for r in self.db.query("SELECT * FROM feeds ORDER BY id")]
        if urls is None:
            return found
        wanted = set(urls)
        return [f for f in found if f.url in wanted]

    def by_ids(self, feed_ids: Sequence[int]) -> list[FeedRow]:
        rows = self.db.query(
            f"SELECT * FROM feeds WHERE {self.db.dialect.id_list('id')} ORDER BY id",
            (self.db.dialect.id_list_param(feed_ids),),
        )
        return [_feed_row(r) for r in rows]

    # -- leases ------------------------------------------------------------

    def claim(
        self,
        feed_ids: Sequence[int],
        *,
        owner: str,
        now: float,
        until: float,
        dead_owners: Sequence[str] = (),
    ) -> list[int]:
        """Take the lease of those of `feed_ids` no live worker holds (a
        lease of one of `dead_owners` counts as ended); the ids taken. Rows
        another worker is claiming this very moment are skipped, not waited for."""
        if not feed_ids:
            return []
        dead = "".join(" OR lease_owner = ?" for _ in dead_owners)
        rows = self.db.rows(
            "UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE id IN ("
            f"SELECT id FROM feeds WHERE {self.db.dialect.id_list('id')} "
            f"AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?{dead}) "
            "ORDER BY id FOR UPDATE SKIP LOCKED) RETURNING id",
            (owner, until, self.db.dialect.id_list_param(feed_ids), now, owner, *dead_owners),
        )
        return sorted(int(r[0]) for r in rows)

    def release(self, feed_ids: Sequence[int], *, owner: str) -> None:
        """Give back leases without a poll recorded (a cancelled cycle, a feed
        that turned out not to be due)."""
        if feed_ids:
            self.db.execute(
                "UPDATE feeds SET lease_owner = NULL, lease_until = NULL "
                f"WHERE {self.db.dialect.id_list('id')} AND lease_owner = ?",
                (self.db.dialect.id_list_param(feed_ids), owner),
            )

    # -- outcomes (each also ends the feed's lease) -------------------------

    def record_successes(self, successes: Sequence[FeedSuccess]) -> None:
        """Record successful polls (many at once: a warm cycle is mostly these)."""
        if not successes:
            return
        with self.db.transaction():
            self.db.executemany(
                """UPDATE feeds SET
                     title = COALESCE(?, title), etag = ?, last_modified = ?,
                     body_hash = COALESCE(?, body_hash),
                     first_polled_at = COALESCE(first_polled_at, ?),
                     last_polled_at = ?, last_success_at = ?,
                     consecutive_failures = 0, next_check_at = ?, suspended_at = NULL,
                     check_interval = COALESCE(?, check_interval),
                     lease_owner = NULL, lease_until = NULL
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

    def record_failure(
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
        rows = self.db.rows(
            """UPDATE feeds SET
                 last_polled_at = ?, last_error = ?, last_error_kind = ?,
                 last_error_at = ?, consecutive_failures = consecutive_failures + 1,
                 next_check_at = ?, gone = CASE WHEN ? THEN 1 ELSE gone END,
                 suspended_at = CASE WHEN ? THEN COALESCE(suspended_at, ?) ELSE suspended_at END,
                 lease_owner = NULL, lease_until = NULL
               WHERE id = ? RETURNING consecutive_failures""",
            (now, message, kind, now, next_check_at, gone, suspend, now, feed_id),
        )
        return int(rows[0][0]) if rows else 0


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
        items_seen_at=r["items_seen_at"],
        check_interval=r["check_interval"],
        lease_owner=r["lease_owner"],
    )
