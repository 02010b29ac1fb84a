from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fakeslack import FakeSlack
from feedserver import FeedServer
from pg_schema import postgres_schema

from bot.store import Store

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started loopback `FeedServer` (stopped after the test)."""
    with FeedServer() as server:
        yield server


@contextmanager
def fresh_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A new, empty database for the backend `request.param` names: a SQLite
    file in `folder`, or a fresh PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield str(folder / "newshound.db")
        return
    yield from postgres_schema()


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
