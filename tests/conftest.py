from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fakeslack import FakeSlack
from feedserver import FeedServer

from bot.store import Store

# The PostgreSQL server the suite runs against (loopback only; CI starts one).
POSTGRES_SERVER = os.environ.get(
    "NEWSHOUND_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started loopback `FeedServer` (stopped after the test)."""
    with FeedServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test server's URL, once it answered. Unreachable: the PostgreSQL
    variants are skipped locally, but fail under CI (which always has one)."""
    import psycopg

    try:
        psycopg.connect(POSTGRES_SERVER, connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = f"PostgreSQL not reachable at {POSTGRES_SERVER}: {' '.join(str(exc).split())}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTGRES_SERVER


def schema_url(server: str, schema: str) -> str:
    """`server` with every connection's search_path set to `schema` (libpq's
    `options`, so `Store`, `--db` and NEWSHOUND_DB all take it as is)."""
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A new, empty database for the backend `request.param` names: a SQLite
    file in `folder`, or a fresh PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield str(folder / "newshound.db")
        return
    import psycopg

    server = request.getfixturevalue("postgres_server")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(server, schema)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a test's database lives, once per backend (ids `sqlite` and
    `postgres`). Usable as `Store(db_url)`, `--db db_url`, `NEWSHOUND_DB`."""
    with fresh_database(request, tmp_path) as location:
        yield location


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`db_url` shared by a module's tests (for a service started once per module)."""
    with fresh_database(request, tmp_path_factory.mktemp("db")) as location:
        yield location


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A fresh store on each backend (see `db_url`)."""
    with Store(db_url) as s:
        yield s


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A started fake Slack Web API on loopback (modules may override it)."""
    with FakeSlack() as fake:
        yield fake
