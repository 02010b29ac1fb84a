"""bot/cli.py + bot/store.py: databases newshound must not use are refused
with one clear line and exit 2 in every command, and are left untouched."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from cli_helpers import Result, run_cli, run_subprocess, write_config

from bot.store import Store
from bot.store.migrations import MIGRATIONS

CHANNEL = "C0CLITEST01"
LATEST = MIGRATIONS[-1][0]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    # Nothing listens on port 9; no command here gets as far as fetching.
    return write_config(
        tmp_path / "feeds.yaml",
        ["http://127.0.0.1:9/feed.xml"],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
    )


def commands(config: Path, db: str | Path) -> dict[str, Callable[[], Result]]:
    common = ("--config", str(config), "--db", str(db))
    return {
        "status": lambda: run_cli(*common, "status"),
        "poll": lambda: run_cli(*common, "poll", "--once", "--all"),
        "watch list": lambda: run_cli(*common, "watch", "list", "--channel", CHANNEL),
        "watch add": lambda: run_cli(*common, "watch", "add", "--channel", CHANNEL, "oil"),
        # A real process: should the check ever fail, the service starts and
        # the timeout ends the test instead of hanging the test run.
        "run": lambda: run_subprocess(*common, "run", "--port", "0", timeout=30),
    }


COMMANDS = ["status", "poll", "watch list", "watch add", "run"]


def snapshot(db: Path) -> tuple[list[str], str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump()), str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def make_db(path: Path, *statements: str) -> Path:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    return path


def assert_refused(result: Result, db: str | Path, why: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert lines == [f"newshound: cannot open database {db}: {why}"], result.err
    assert "internal error" not in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "foreign",
    [
        ["CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"],
        # A table that happens to share a name with one of ours.
        ["CREATE TABLE feeds (id INTEGER PRIMARY KEY, name TEXT)"],
        # Another program that versions its schema too.
        ["CREATE TABLE notes (body TEXT)", "PRAGMA user_version = 2"],
    ],
    ids=["customers", "feeds", "versioned"],
)
def test_a_foreign_database_is_refused_and_left_untouched(
    tmp_path: Path, config: Path, command: str, foreign: list[str]
) -> None:
    db = make_db(tmp_path / "foreign.db", *foreign)
    before = snapshot(db)
    assert before[1] == "delete"
    result = commands(config, db)[command]()
    assert_refused(result, db, "not a newshound database (it holds other data); left untouched")
    assert snapshot(db) == before  # no tables added, not switched to WAL


def postgres_tables(db: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(db) as conn:
        names = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        ).fetchall()
        return {n: conn.execute(f"SELECT * FROM {n} ORDER BY 1").fetchall() for (n,) in names}


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "foreign",
    [
        ["CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT)"],
        [
            "CREATE TABLE feeds (id BIGINT PRIMARY KEY, name TEXT)",
            "INSERT INTO feeds VALUES (1, 'x')",
        ],
    ],
    ids=["customers", "feeds"],
)
def test_a_foreign_postgres_schema_is_refused_and_left_untouched(
    db_url: str, config: Path, command: str, foreign: list[str]
) -> None:
    """Read-only commands too: a schema holding another program's tables is
    not "no database yet" but someone else's."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for statement in foreign:
            conn.execute(statement)
    before = postgres_tables(db_url)
    result = commands(config, db_url)[command]()
    assert_refused(result, db_url, "not a newshound database (it holds other data); left untouched")
    assert postgres_tables(db_url) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_from_a_newer_newshound_is_refused(
    tmp_path: Path, config: Path, command: str
) -> None:
    db = tmp_path / "future.db"
    with Store(db) as store:  # a real newshound database ...
        assert store.meta.damage() is None
    make_db(db, f"PRAGMA user_version = {LATEST + 95}")  # ... from a newer release
    before = snapshot(db)
    result = commands(config, db)[command]()
    assert_refused(
        result,
        db,
        f"made by a newer newshound (schema {LATEST + 95}; this newshound knows schemas "
        f"up to {LATEST}); upgrade newshound to use it",
    )
    assert snapshot(db) == before


def test_an_unknown_schema_version_without_our_tables_is_refused(
    tmp_path: Path, config: Path
) -> None:
    db = make_db(tmp_path / "future.db", "PRAGMA user_version = 99", "CREATE TABLE foo (x)")
    result = run_cli("--config", str(config), "--db", str(db), "status")
    assert_refused(
        result,
        db,
        f"made by a newer newshound (schema 99; this newshound knows schemas up to {LATEST}); "
        "upgrade newshound to use it",
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_that_is_not_a_database_is_refused(
    tmp_path: Path, config: Path, command: str
) -> None:
    db = tmp_path / "junk.db"
    db.write_text("junk\n" * 200)
    result = commands(config, db)[command]()
    assert_refused(result, db, "file is not a database")
    assert db.read_text() == "junk\n" * 200


def damage(db: Path) -> None:
    """Keep the header page, overwrite every other page with garbage."""
    conn = sqlite3.connect(db)
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.close()
    size = db.stat().st_size
    assert size > page_size
    with db.open("r+b") as f:
        f.seek(page_size)
        f.write(b"\xff" * (size - page_size))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_database_is_refused(tmp_path: Path, config: Path, command: str) -> None:
    db = tmp_path / "corrupt.db"
    common = ("--config", str(config), "--db", str(db))
    assert run_cli(*common, "watch", "add", "--channel", CHANNEL, "steel").code == 0
    damage(db)
    result = commands(config, db)[command]()
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"newshound: cannot open database {db}: ")
    assert "internal error" not in result.err and "Traceback" not in result.err


def test_run_refuses_damage_that_other_commands_never_read(tmp_path: Path) -> None:
    # Only the terms table is damaged: an empty config never reads it, but the
    # service checks the whole file once before it starts.
    db = tmp_path / "corrupt.db"
    empty = write_config(tmp_path / "empty.yaml", [], [])
    common = ("--config", str(empty), "--db", str(db))
    assert run_cli(*common, "watch", "add", "--channel", CHANNEL, "steel").code == 0
    conn = sqlite3.connect(db)
    root = int(
        conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'terms'").fetchone()[0]
    )
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)
    assert run_cli(*common, "status").code == 0
    result = run_subprocess(*common, "run", "--port", "0", timeout=30)
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"newshound: cannot open database {db}: damaged: "
    ), result.err


def test_an_empty_file_and_an_older_newshound_database_are_used(
    tmp_path: Path, config: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()  # e.g. created by `touch` or a deploy script
    result = run_cli("--config", str(config), "--db", str(empty), "status")
    assert result.code == 0, result.err
    older = tmp_path / "older.db"
    conn = sqlite3.connect(older)
    conn.isolation_level = None
    for number, script in MIGRATIONS[:1]:
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.close()
    result = run_cli("--config", str(config), "--db", str(older), "status")
    assert result.code == 0, result.err
    with Store(older) as store:
        assert store.meta.schema_version() == LATEST
