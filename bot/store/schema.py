"""The database's schema: refuse what is not ours or too new, back up before
an upgrade (SQLite), apply the numbered migrations (both databases)."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from bot.store.database import BackupFailed, Database, DatabaseRefused, SqliteDatabase
from bot.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

# The schema this newshound creates and migrates to.
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Tables every newshound database has (migration 1).
CORE_TABLES = frozenset({"feeds", "items", "story_keys", "outbox", "alerts", "terms"})


def check_schema(db: Database) -> None:
    """Refuse a database we cannot safely migrate, before changing anything.
    An empty database is fine. Raises DatabaseRefused (or, for a SQLite file
    that is not a database at all, sqlite3.DatabaseError)."""
    version = db.schema_version()
    tables = db.tables()
    if version > SCHEMA_VERSION:
        raise DatabaseRefused(
            f"made by a newer newshound (schema {version}; this newshound knows "
            f"schemas up to {SCHEMA_VERSION}); upgrade newshound to use it"
        )
    if (version == 0 and tables) or (version > 0 and not CORE_TABLES.issubset(tables)):
        raise DatabaseRefused("not a newshound database (it holds other data); left untouched")


def open_schema(db: Database) -> None:
    """Check, back up if an upgrade is due, migrate. Two processes starting
    at once migrate once (the second waits, then finds nothing to do)."""
    if db.schema_version() == SCHEMA_VERSION:  # the usual case: nothing to wait for
        check_schema(db)
        if isinstance(db, SqliteDatabase):
            db.tune()
        return
    with db.migration_lock():
        check_schema(db)
        if isinstance(db, SqliteDatabase):
            _back_up_before_upgrade(db)
            db.tune()
        migrate(db)


def migrate(db: Database) -> None:
    current = db.schema_version()
    for number, script in MIGRATIONS:
        if number <= current:
            continue
        with db.transaction():
            if callable(script):
                script(db)
            else:
                for statement in split_sql(script):
                    db.execute(db.dialect.ddl(statement))
            db.set_schema_version(number)


def split_sql(script: str) -> list[str]:
    # Migrations hold no semicolons inside strings, so a plain split is exact.
    statements = []
    for chunk in script.split(";"):
        lines = [ln for ln in chunk.splitlines() if not ln.strip().startswith("--")]
        text = "\n".join(lines).strip()
        if text:
            statements.append(text)
    return statements


# -- SQLite backups -----------------------------------------------------------


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


def _back_up_before_upgrade(db: SqliteDatabase) -> None:
    """An existing database about to be migrated is copied first, so an
    upgrade can be undone by restoring the copy (with the old newshound).
    (PostgreSQL: the operator's own backups, e.g. pg_dump, cover this.)"""
    schema = db.schema_version()
    if db.path == ":memory:" or schema == 0 or schema >= SCHEMA_VERSION:
        return  # new, or already current: nothing to lose
    target = backup_path(db.path, schema)
    try:
        back_up(db.conn, target)
    except (OSError, sqlite3.Error) as exc:
        raise BackupFailed(
            f"not upgraded from schema {schema}: could not back it up to {target}: {exc}"
        ) from None
    log.warning(
        "upgrading database %s from schema %d to %d; the old database is backed up at %s",
        db.path,
        schema,
        SCHEMA_VERSION,
        target,
    )
