"""bot/cli.py on PostgreSQL (NEWSHOUND_DB=postgresql://...): the read-only
commands find a database on the server, not a file, and no output ever shows
the password in the URL (README "Several workers on PostgreSQL").

Needs the PostgreSQL server on 127.0.0.1:5432 (user postgres, database
`test`); each test gets a schema of its own, dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from pg_schema import POSTGRES_SERVER, fresh_schema, schema_url

psycopg = pytest.importorskip("psycopg")

SERVER = POSTGRES_SERVER
PASSWORD = "hunter2-not-for-logs"  # trust auth on the test server ignores it
CHANNEL = "C0PGTEST01"


@pytest.fixture
def db_url() -> Iterator[str]:
    """A fresh schema's URL with a password in it (trust auth ignores it)."""
    with fresh_schema("cli_pg") as schema:
        yield schema_url(f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test", schema)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    # Nothing listens on port 9; `poll --once` finds no feed due before it is synced.
    return write_config(
        tmp_path / "feeds.yaml",
        ["http://127.0.0.1:9/feed.xml"],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
    )


def tables_in(url: str) -> int:
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(SERVER) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_status_before_any_run_says_no_database_and_creates_none(db_url: str, config: Path) -> None:
    result = run_cli("--config", str(config), "--db", db_url, "status")
    assert result.code == 2
    assert "cannot open database postgresql://postgres:***@127.0.0.1:5432/test" in result.err
    assert "no newshound database there yet" in result.err
    assert PASSWORD not in result.out + result.err
    assert tables_in(db_url) == 0


def test_status_reads_the_server_database_and_masks_the_password(db_url: str, config: Path) -> None:
    added = run_cli(
        "--config", str(config), "--db", db_url, "watch", "add", "--channel", CHANNEL, "oil"
    )
    assert added.code == 0, added.err
    result = run_cli("--config", str(config), "--db", db_url, "status")
    assert result.code == 0, result.err
    assert "Database: postgresql://postgres:***@127.0.0.1:5432/test" in result.out
    assert "Feeds (1):" in result.out
    assert PASSWORD not in result.out + result.err


def test_an_unreachable_server_is_one_line_without_the_password(config: Path) -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:9/test"
    for command in (("status",), ("poll", "--once")):
        result = run_cli("--config", str(config), "--db", url, *command)
        assert result.code == 2, command
        assert "cannot open database postgresql://postgres:***@127.0.0.1:9/test" in result.err
        assert PASSWORD not in result.out + result.err
