"""Watch terms: feeds.yaml's (mirrored, owned by the config) and those
added with `/watch` or the CLI. Keyed by `term_key` (the parsed query), so
"Trade Deal" and "trade  deal" are one term."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.models import TermRow
from bot.query import term_key
from bot.store.database import Database


class TermStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def sync_config(self, terms: Sequence[tuple[str, str]], now: float) -> None:
        """Mirror feeds.yaml: config-owned rows equal exactly the config's terms."""
        wanted = {(channel, term_key(term)): term for channel, term in terms}
        with self.db.transaction():
            existing = self.db.rows("SELECT channel, term_key FROM terms WHERE source = 'config'")
            for channel, key in existing:
                if (channel, key) not in wanted:
                    # Dropped from the config: a term someone had added before
                    # the config listed it goes back to them; the rest goes.
                    self.db.execute(
                        "UPDATE terms SET source = claimed_from, claimed_from = NULL "
                        "WHERE channel = ? AND term_key = ? AND source = 'config' "
                        "AND claimed_from IS NOT NULL",
                        (channel, key),
                    )
                    self.db.execute(
                        "DELETE FROM terms "
                        "WHERE channel = ? AND term_key = ? AND source = 'config'",
                        (channel, key),
                    )
            # A config term takes ownership of an identical term added from
            # Slack, remembering that it was theirs first.
            self.db.executemany(
                """INSERT INTO terms(channel, term, term_key, source, added_at)
                   VALUES (?, ?, ?, 'config', ?)
                   ON CONFLICT(channel, term_key) DO UPDATE SET
                     claimed_from = CASE WHEN terms.source = 'config'
                                         THEN terms.claimed_from ELSE terms.source END,
                     source = 'config', term = excluded.term""",
                [(channel, term, key, now) for (channel, key), term in wanted.items()],
            )

    def add(
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
        `limit` terms. The channel's terms are counted under a lock, so
        concurrent adds (any worker) cannot pass the limit."""
        with self.db.transaction():
            if limit is not None:
                # One row to lock per channel: adds to a channel queue here.
                self.db.execute(
                    "INSERT INTO term_limits(channel) VALUES (?) ON CONFLICT DO NOTHING", (channel,)
                )
                self.db.rows(
                    "SELECT channel FROM term_limits WHERE channel = ? FOR UPDATE", (channel,)
                )
                if self.count(channel) >= limit:
                    return False
            return (
                self.db.execute(
                    "INSERT INTO terms(channel, term, term_key, source, added_by, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (channel, term, term_key(term), source, added_by, now),
                )
                == 1
            )

    def find(self, channel: str, term: str) -> TermRow | None:
        rows = self.db.query(
            "SELECT * FROM terms WHERE channel = ? AND term_key = ?", (channel, term_key(term))
        )
        return _term_row(rows[0]) if rows else None

    def remove(self, channel: str, term: str) -> bool:
        return (
            self.db.execute(
                "DELETE FROM terms WHERE channel = ? AND term_key = ? AND source != 'config'",
                (channel, term_key(term)),
            )
            == 1
        )

    def all(self, channel: str | None = None) -> list[TermRow]:
        if channel is None:
            rows = self.db.query("SELECT * FROM terms ORDER BY channel, id")
        else:
            rows = self.db.query("SELECT * FROM terms WHERE channel = ? ORDER BY id", (channel,))
        return [_term_row(r) for r in rows]

    def count(self, channel: str) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM terms WHERE channel = ?", (channel,)))


def _term_row(r: dict[str, Any]) -> TermRow:
    return TermRow(
        channel=r["channel"],
        term=r["term"],
        source=r["source"],
        added_by=r["added_by"],
        added_at=r["added_at"],
    )
