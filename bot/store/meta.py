"""Facts about the deployment rather than the news: small key/value facts
(`meta`), the workers sharing the database and the config each runs, and
which workers are inside which poll cycle right now."""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass

from bot.store.database import Database, SqliteDatabase


@dataclass(frozen=True)
class WorkerRow:
    id: str
    host: str
    pid: int
    config_stamp: str
    started_at: float
    seen_at: float


class MetaStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def set(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def get(self, key: str) -> str | None:
        found = self.db.scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return None if found is None else str(found)

    def instance_tag(self) -> str:
        """A short random tag made once per database: tells this deployment's
        outbox ids apart from another's (e.g. staging) that posts with the
        same Discord bot."""
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES ('instance_tag', ?) ON CONFLICT DO NOTHING",
            (secrets.token_hex(3),),
        )
        return self.get("instance_tag") or ""

    def schema_version(self) -> int:
        return self.db.schema_version()

    def damage(self) -> str | None:
        """SQLite's quick integrity check: None when it passes, else its first
        complaint. Reads the whole file (a fraction of a second per 100 MB).
        A PostgreSQL server checks its own pages: always None there."""
        if not isinstance(self.db, SqliteDatabase):
            return None
        try:
            result = str(self.db.scalar("PRAGMA quick_check(1)"))
        except sqlite3.DatabaseError as exc:
            return str(exc)
        if result == "ok":
            return None
        # e.g. "*** in database main ***\nPage 2: btreeInitPage() returns error code 11"
        lines = [line.strip() for line in result.splitlines() if not line.startswith("***")]
        return "; ".join(line for line in lines if line) or "integrity check failed"

    # -- workers ----------------------------------------------------------------

    def heartbeat(self, worker: str, *, host: str, pid: int, config_stamp: str, now: float) -> None:
        """This worker is alive and runs the config `config_stamp`."""
        self.db.execute(
            "INSERT INTO workers(id, host, pid, config_stamp, started_at, seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "config_stamp = excluded.config_stamp, seen_at = excluded.seen_at",
            (worker, host, pid, config_stamp, now, now),
        )

    def workers(self, seen_since: float) -> list[WorkerRow]:
        rows = self.db.rows(
            "SELECT id, host, pid, config_stamp, started_at, seen_at FROM workers "
            "WHERE seen_at >= ? ORDER BY started_at, id",
            (seen_since,),
        )
        return [
            WorkerRow(str(a), str(b), int(c), str(d), float(e), float(f))
            for a, b, c, d, e, f in rows
        ]

    def leave(self, worker: str) -> None:
        """A worker that stops cleanly: it is no longer expected anywhere."""
        with self.db.transaction():
            self.db.execute("DELETE FROM cycle_workers WHERE worker = ?", (worker,))
            self.db.execute("DELETE FROM workers WHERE id = ?", (worker,))

    def forget_workers(self, seen_before: float) -> None:
        self.db.execute("DELETE FROM workers WHERE seen_at < ?", (seen_before,))

    # -- cycles -------------------------------------------------------------------

    def join_cycle(self, cycle: str, worker: str, until: float) -> None:
        """`worker` polls in `cycle` until `until` at the latest (if it dies,
        the others stop waiting for it then)."""
        self.db.execute(
            "INSERT INTO cycle_workers(cycle_key, worker, active_until) VALUES (?, ?, ?) "
            "ON CONFLICT(cycle_key, worker) DO UPDATE SET active_until = excluded.active_until",
            (cycle, worker, until),
        )

    def leave_cycle(self, cycle: str, worker: str) -> None:
        self.db.execute(
            "DELETE FROM cycle_workers WHERE cycle_key = ? AND worker = ?", (cycle, worker)
        )

    def cycle_workers(self, now: float) -> list[tuple[str, str]]:
        """(cycle, worker) for every worker still polling in a cycle (as far
        as its lease says)."""
        rows = self.db.rows(
            "SELECT cycle_key, worker FROM cycle_workers WHERE active_until > ?", (now,)
        )
        return [(str(cycle), str(worker)) for cycle, worker in rows]

    def forget_cycles(self, now: float) -> None:
        self.db.execute("DELETE FROM cycle_workers WHERE active_until <= ?", (now,))
