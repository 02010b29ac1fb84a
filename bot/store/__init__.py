"""Persistence: the only SQL in the repo lives in this package.

`Store(location)` opens SQLite (a file path, the embedded default) or
PostgreSQL (`postgresql://...`, for several workers), checks and migrates
its schema, and offers one narrow store per aggregate:

- `feeds`    feeds, their schedule and leases (bot.store.feeds)
- `stories`  stories, their keys, carriers, signatures, copies (bot.store.stories)
- `outbox`   messages, alerts, per-cycle budgets (bot.store.outbox)
- `gates`    send gates and paused destinations (bot.store.outbox)
- `terms`    watch terms (bot.store.terms)
- `meta`     facts, workers, cycles (bot.store.meta)

Callers get plain records (bot.records, bot.models), never rows: modules that
only decide (schedule, decide, watchlist, ...) import those, never the store.
Times are epoch seconds (float, UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.records import (
    ASSEMBLING,
    DEAD,
    PENDING,
    SENDING,
    SENT,
    Claim,
    FeedRow,
    FeedSuccess,
    FollowupLine,
    OutboxRow,
    StoredItem,
    StoryCopy,
)
from bot.store.database import (
    BackupFailed,
    Conflict,
    Database,
    DatabaseRefused,
    DatabaseUnavailable,
    connect,
    is_postgres_url,
    location_password,
    redact_location,
)
from bot.store.feeds import FeedStore
from bot.store.meta import MetaStore, WorkerRow
from bot.store.outbox import GateStore, OutboxStore
from bot.store.schema import SCHEMA_VERSION, backup_path, open_schema
from bot.store.stories import StoryStore
from bot.store.terms import TermStore

__all__ = [
    "ASSEMBLING",
    "DEAD",
    "PENDING",
    "SCHEMA_VERSION",
    "SENDING",
    "SENT",
    "BackupFailed",
    "Claim",
    "Conflict",
    "DatabaseRefused",
    "DatabaseUnavailable",
    "FeedRow",
    "FeedSuccess",
    "FollowupLine",
    "OutboxRow",
    "Store",
    "StoredItem",
    "StoryCopy",
    "WorkerRow",
    "backup_path",
    "is_postgres_url",
    "location_password",
    "redact_location",
]


class Store:
    """One database, shared safely by the threads of a process (and, through
    the database, by other processes and workers)."""

    def __init__(self, location: str | Path, *, create: bool = True) -> None:
        """create=False: refuse a database that holds no newshound schema yet
        (read-only commands never make one)."""
        self.db: Database = connect(str(location))
        try:
            if not create and self.db.schema_version() == 0:
                raise DatabaseRefused("no newshound database there yet")
            open_schema(self.db)
        except BaseException:
            self.db.close()
            raise
        self.location = self.db.location  # safe to show: no password
        self.feeds = FeedStore(self.db)
        self.stories = StoryStore(self.db)
        self.outbox = OutboxStore(self.db)
        self.gates = GateStore(self.db)
        self.terms = TermStore(self.db)
        self.meta = MetaStore(self.db)

    @property
    def postgres(self) -> bool:
        return self.db.dialect.postgres

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything the stores write inside commits together or not at all."""
        with self.db.transaction():
            yield

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
