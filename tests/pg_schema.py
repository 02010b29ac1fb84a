"""The PostgreSQL test server and fresh schemas on it, for every test that
needs one: the suite's `db_url` fixture (conftest.py) and the tests that are
about PostgreSQL only. An unreachable server skips those tests locally and
fails them under CI (which always starts one)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# The PostgreSQL server the suite runs against (loopback only; CI starts one).
POSTGRES_SERVER = os.environ.get(
    "NEWSHOUND_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def require_server() -> str:
    """The test server's URL, once it answered; else skip (or fail under CI)."""
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
def fresh_schema(prefix: str = "test") -> Iterator[str]:
    """A new, empty schema on the test server (its name), dropped afterwards."""
    import psycopg

    server = require_server()
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def postgres_schema(prefix: str = "test") -> Iterator[str]:
    """Yields a `postgresql://` location whose search_path is a fresh schema."""
    with fresh_schema(prefix) as name:
        yield schema_url(POSTGRES_SERVER, name)
