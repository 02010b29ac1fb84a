"""Connections to the two databases newshound runs on, behind one small
interface: statements with `?` placeholders, rows as dicts or tuples,
transactions that commit whole or not at all.

SQLite (the embedded default): one connection per `Database`, shared by
threads under a lock; `BEGIN IMMEDIATE` takes the write lock up front, so
concurrent writers (other threads, other processes) run one after another.

PostgreSQL (`postgresql://...`): a psycopg 3 connection pool; a transaction
holds one pooled connection for its thread, statements outside one run in
autocommit. Concurrent writers really do run at once there, so the stores
lock the rows they decide on (`FOR UPDATE`), and a transaction that lost a
race on a unique key raises `Conflict` for the caller to run again.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from bot.store.dialect import POSTGRES, SQLITE, Dialect

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

Params = Sequence[Any]


class DatabaseRefused(Exception):
    """A database newshound must not use: another program's, or made by a
    newer newshound. `str(error)` says why in a few words."""


class BackupFailed(Exception):
    """The copy taken before an upgrade could not be written: nothing was migrated."""


class DatabaseUnavailable(Exception):
    """The database server cannot be reached (or refused us): nothing was
    written; try again later. The message never holds a password."""


class Conflict(Exception):
    """A concurrent transaction won a race (a unique key, a deadlock): this
    one was rolled back whole and can simply be run again."""


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def redact_location(location: str) -> str:
    """A database location fit for logs and errors: any password masked."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", location))


def location_password(location: str) -> str | None:
    """The password inside a database URL, if any (for the log filter)."""
    found = _URL_PASSWORD.search(location)
    if found is None:
        return None
    password = found.group(0)[len(found.group(1)) : -1]
    return password or None


def connect(location: str, *, wait: float | None = None) -> Database:
    """wait (PostgreSQL): longest a statement waits for a pooled connection
    (default CONNECT_TIMEOUT); SQLite waits for its write lock as ever."""
    if is_postgres_url(location):
        return PostgresDatabase(location, wait=CONNECT_TIMEOUT if wait is None else wait)
    return SqliteDatabase(location)


class Database:
    """What the stores use; see the module docstring."""

    dialect: Dialect
    location: str  # redacted: safe to show

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def insert_ids(self, sql: str, rows: Sequence[Params]) -> list[int]:
        """Run an `INSERT ... RETURNING id` once per row; the ids, in order."""
        raise NotImplementedError

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> list[int]:
        """Insert `rows` (values for `columns`) into `table`, whose key is an
        `id INTEGER PRIMARY KEY`; their ids, in order. Call it inside a
        transaction; a duplicate unique key raises (`Conflict` there)."""
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks}) RETURNING id"
        return self.insert_ids(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def close(self) -> None:
        raise NotImplementedError

    # -- schema bookkeeping (used by bot.store.schema) --------------------

    def schema_version(self) -> int:
        raise NotImplementedError

    def set_schema_version(self, version: int) -> None:
        raise NotImplementedError

    def tables(self) -> set[str]:
        raise NotImplementedError

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Held while migrating: two processes starting at once migrate once."""
        yield

    def scalar(self, sql: str, params: Params = ()) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None


# WAL pages between automatic checkpoints (~64 MB at 4 KiB pages), and what
# the WAL file is truncated to after one.
WAL_CHECKPOINT_PAGES = 16_000
WAL_SIZE_LIMIT = 64 * 1024 * 1024


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, path: str) -> None:
        self.path = path
        self.location = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE)
        # so a write never starts implicitly and never commits half a cycle.
        self.conn = sqlite3.connect(
            path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.RLock()
        self._depth = 0

    def tune(self) -> None:
        """WAL and friends: only once the file is known to be ours."""
        with self._lock:
            if self.path != ":memory:":
                self.conn.execute("PRAGMA journal_mode=WAL")
                # A cold cycle commits once per feed: checkpointing every
                # 1,000 pages (the default) copied the hot index pages into the
                # file over and over; a larger WAL copies each once per
                # checkpoint. The file is cut back afterwards.
                self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
                self.conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=30000")

    @contextmanager
    def _unique_as_conflict(self) -> Iterator[None]:
        """A unique key taken inside a transaction is a lost race: `Conflict`."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) and self._depth:
                raise Conflict(str(exc)) from exc
            raise

    def _run(self, sql: str, params: Params) -> sqlite3.Cursor:
        with self._unique_as_conflict():
            return self.conn.execute(self.dialect.statement(sql), params)

    def execute(self, sql: str, params: Params = ()) -> int:
        with self._lock:
            return self._run(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with self._lock:
            self.conn.executemany(self.dialect.statement(sql), rows)

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._run(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._run(sql, params).fetchall()

    def insert_ids(self, sql: str, rows: Sequence[Params]) -> list[int]:
        # One statement per row: SQLite does not promise RETURNING's order
        # for a multi-row insert, and inside a transaction each is cheap.
        with self._lock:
            return [int(self._run(sql, row).fetchone()[0]) for row in rows]

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> list[int]:
        # One executemany with the ids given: RETURNING would need a statement
        # per row (SQLite does not promise its order for several). The write
        # lock is held (BEGIN IMMEDIATE), so nobody else takes these ids.
        if not rows:
            return []
        with self.transaction():
            first = int(
                self.conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0]
            )
            marks = ", ".join("?" * (len(columns) + 1))
            sql = f"INSERT INTO {table}(id, {', '.join(columns)}) VALUES ({marks})"
            ids = list(range(first, first + len(rows)))
            with self._unique_as_conflict():
                self.conn.executemany(sql, [(i, *row) for i, row in zip(ids, rows, strict=True)])
            return ids

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
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def schema_version(self) -> int:
        with self._lock:
            return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        with self._lock:
            self.conn.execute(f"PRAGMA user_version = {int(version)}")

    def tables(self) -> set[str]:
        rows = self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\'"
        )
        return {str(row[0]) for row in rows}


# Connections per process and pool; the service uses three stores (poll,
# delivery, web), so a worker holds at most 3 x this many.
POOL_SIZE = 4
CONNECT_TIMEOUT = 10.0  # seconds to reach the server before giving up
IDLE_CHECK = 2.0  # seconds in the pool after which a connection is tested before use


class _IdleCheck:
    """The pool's `check`: a connection that sat unused for a while is tested
    (an empty query) before it is handed out, so one cut by a server restart
    or an outage is replaced instead of failing the next statement - after an
    outage every pooled connection would otherwise fail once, each a new
    "database unreachable". Busy connections skip the round trip. See
    https://www.psycopg.org/psycopg3/docs/advanced/pool.html#connection-quality"""

    def __init__(self) -> None:
        self._returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def returned(self, conn: Any) -> None:
        self._returned[conn] = time.monotonic()

    def __call__(self, conn: Any) -> None:
        from psycopg_pool import ConnectionPool

        since = self._returned.get(conn)
        if since is None or time.monotonic() - since > IDLE_CHECK:
            ConnectionPool.check_connection(conn)


class PostgresDatabase(Database):
    dialect = POSTGRES

    def __init__(self, url: str, *, wait: float = CONNECT_TIMEOUT) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.location = redact_location(url)
        self._local = threading.local()
        self._errors = psycopg.errors
        try:
            # Check the server answers before the pool starts retrying in the
            # background: a wrong URL is an error at start, not a hang.
            psycopg.connect(url, connect_timeout=int(CONNECT_TIMEOUT)).close()
        except psycopg.Error as exc:
            raise DatabaseUnavailable(_without_secrets(str(exc), url)) from None
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            # connect_timeout: a reconnection attempt to a server that does
            # not answer at all gives up too, instead of hanging.
            kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT)},
            timeout=wait,
            check=(idle_check := _IdleCheck()),
            reset=idle_check.returned,
            open=True,
            name="newshound",
        )
        self._url = url

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        import psycopg_pool

        try:
            with self.pool.connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise DatabaseUnavailable(_without_secrets(str(exc), self._url)) from None

    @contextmanager
    def _errors_mapped(self) -> Iterator[None]:
        errors = self._errors
        try:
            yield
        except (
            errors.UniqueViolation,
            errors.DeadlockDetected,
            errors.SerializationFailure,
        ) as exc:
            raise Conflict(str(exc).splitlines()[0]) from exc
        except errors.OperationalError as exc:
            raise DatabaseUnavailable(_without_secrets(str(exc), self._url)) from exc

    def execute(self, sql: str, params: Params = ()) -> int:
        with self._errors_mapped(), self._connection() as conn:
            return conn.execute(self.dialect.statement(sql), params).rowcount

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if not rows:
            return
        with self._errors_mapped(), self._connection() as conn:
            conn.cursor().executemany(self.dialect.statement(sql), rows)

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        with self._errors_mapped(), self._connection() as conn:
            cursor = conn.execute(self.dialect.statement(sql), params)
            if cursor.description is None:
                return []
            names = [d.name for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._errors_mapped(), self._connection() as conn:
            cursor = conn.execute(self.dialect.statement(sql), params)
            return cursor.fetchall() if cursor.description is not None else []

    def insert_ids(self, sql: str, rows: Sequence[Params]) -> list[int]:
        if not rows:
            return []
        with self._errors_mapped(), self._connection() as conn:
            cursor = conn.cursor()
            cursor.executemany(self.dialect.statement(sql), rows, returning=True)
            ids = []
            while True:
                ids.append(int(cursor.fetchone()[0]))  # type: ignore[index]
                if not cursor.nextset():
                    break
            return ids

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all. Re-entrant."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._errors_mapped(), self._connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._local.conn = None

    def close(self) -> None:
        self.pool.close()

    def schema_version(self) -> int:
        if "meta" not in self.tables():
            return 0
        value = self.scalar("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(value) if value is not None else 0

    def set_schema_version(self, version: int) -> None:
        self.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(int(version)),),
        )

    def tables(self) -> set[str]:
        rows = self.rows("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {str(row[0]) for row in rows}

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        # A session-level advisory lock on one pooled connection, held while
        # this process migrates: a second worker waits, then finds it done.
        # Keyed by schema, so deployments in other schemas never wait on it.
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_lock(7020411, hashtext(current_schema()))")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(7020411, hashtext(current_schema()))")


def _without_secrets(message: str, url: str) -> str:
    """A driver's error message with the URL's password (if any) masked."""
    password = location_password(url)
    if password:
        for form in (password, unquote(password)):
            message = message.replace(form, "***")
    return " ".join(message.split()) or "cannot connect"
