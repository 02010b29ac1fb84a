"""bot/cli.py: outcomes a script can rely on. `poll --once` exits 1 when every
due feed failed (so cron sees an outage), read-only commands never create a
database, and an upgrade backs the old database up before migrating it.
Real subprocesses, a real loopback feed server and real SQLite files."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli, run_subprocess, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.store import SCHEMA_VERSION
from bot.store.migrations import MIGRATIONS

CHANNEL = "C0CLITEST01"


def feeds(tmp_path: Path, *urls: str) -> Path:
    return write_config(
        tmp_path / "feeds.yaml", list(urls), [{"channel": CHANNEL, "terms": ["tariff"]}]
    )


def serve_ok(server: FeedServer, path: str = "/ok.xml") -> str:
    entry = FeedEntry("Lumber tariff review", link="https://news.example/lumber",
                      published=datetime.now(UTC))  # fmt: skip
    server.set(path, rss([entry], title="Trade Wire"))
    return server.url(path)


def serve_broken(server: FeedServer, path: str = "/broken.xml") -> str:
    server.set(path, b"upstream error", status=500, content_type="text/plain")
    return server.url(path)


# -- poll --once exit codes ----------------------------------------------------


def test_poll_once_exits_1_when_every_due_feed_failed(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    config = feeds(tmp_path, serve_broken(feed_server), serve_broken(feed_server, "/gone.xml"))
    db = db_url
    result = run_subprocess("--config", str(config), "--db", db, "poll", "--once")
    assert result.code == 1, result.out + result.err
    assert "2 feeds polled (2 failed)" in result.out
    assert "every due feed failed (2 of 2)" in result.err
    assert "Traceback" not in result.err


def test_poll_once_exits_0_when_one_feed_works(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    config = feeds(tmp_path, serve_broken(feed_server), serve_ok(feed_server))
    db = db_url
    result = run_subprocess("--config", str(config), "--db", db, "poll", "--once")
    assert result.code == 0, result.out + result.err
    assert "2 feeds polled (1 failed)" in result.out
    assert "every due feed failed" not in result.err


def test_poll_once_exits_0_when_no_feed_is_due(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    config = feeds(tmp_path, serve_broken(feed_server))
    db = db_url
    assert run_subprocess("--config", str(config), "--db", db, "poll", "--once").code == 1
    # The failed feed now waits for its backoff: nothing is due, nothing failed.
    again = run_subprocess("--config", str(config), "--db", db, "poll", "--once")
    assert again.code == 0, again.out + again.err
    assert again.out.startswith("no feed is due")


def test_poll_once_logs_a_failure_once_per_change(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    url = serve_broken(feed_server)
    config = feeds(tmp_path, url)
    common = ("--config", str(config), "--db", db_url)
    first = run_subprocess(*common, "poll", "--once", "--all")
    assert first.code == 1
    assert f"({url}) is failing: " in first.err and "HTTP 500" in first.err
    again = run_subprocess(*common, "poll", "--once", "--all")
    assert again.code == 1
    assert "failing" not in again.err  # the same failure again: the table says it
    assert "HTTP 500" in again.out


# -- read-only commands never create a database --------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["watch", "list", "--channel", CHANNEL],
        ["watch", "test", "--channel", CHANNEL, "lumber duties"],
        ["retry"],
    ],
    ids=["status", "watch list", "watch test", "retry"],
)
def test_read_only_commands_refuse_a_missing_database(tmp_path: Path, command: list[str]) -> None:
    config = feeds(tmp_path, "http://127.0.0.1:9/feed.xml")
    db = tmp_path / "data" / "newshound.db"
    result = run_subprocess("--config", str(config), "--db", str(db), *command)
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(f"newshound: no database at {db} ")
    assert "Traceback" not in result.err
    assert not db.exists() and not db.parent.exists()


def test_read_only_commands_refuse_a_missing_database_named_by_the_environment(
    tmp_path: Path,
) -> None:
    db = tmp_path / "typo.db"
    result = run_subprocess("status", env={"NEWSHOUND_DB": str(db)})
    assert result.code == 2
    assert f"no database at {db}" in result.err
    assert not db.exists()


# -- schema version and upgrades -----------------------------------------------


def test_version_names_the_database_schema() -> None:
    result = run_subprocess("--version")
    assert result.code == 0
    assert re.fullmatch(rf"newshound \S+ \(database schema {SCHEMA_VERSION}\)\n", result.out)


def test_status_names_the_database_and_its_schema(db_url: str, tmp_path: Path) -> None:
    config = feeds(tmp_path, "http://127.0.0.1:9/feed.xml")
    db = db_url
    assert run_cli("--config", str(config), "--db", str(db), "watch", "add",
                   "--channel", CHANNEL, "oil").code == 0  # fmt: skip
    result = run_subprocess("--config", str(config), "--db", str(db), "status")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"Database: {db} (schema {SCHEMA_VERSION})"


def readme_restore_command(schema: int, target: str) -> str:
    """The README's restore command without the sqlite3 tool, for this backup."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (command,) = [line for line in readme.splitlines() if line.startswith("python3 -c ")]
    command = command.replace("bak-schema5", f"bak-schema{schema}")
    return command.replace("python3 ", f"{sys.executable} ", 1).replace(
        "connect('newshound.db')", f"connect('{target}')"
    )


def old_database(path: Path, schema: int) -> Path:
    """A database as an older newshound left it: migrations up to `schema`,
    in WAL mode like every newshound database, with a term and a feed in it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for number, script in MIGRATIONS[:schema]:
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO terms(channel, term, term_key, source, added_at) "
        "VALUES (?, 'lumber duties', 'lumber duties', 'slack', 1.0)",
        (CHANNEL,),
    )
    conn.execute("INSERT INTO feeds(url) VALUES ('https://news.example/old.xml')")
    conn.close()
    return path


def test_an_upgrade_backs_the_old_database_up_first(tmp_path: Path) -> None:
    old_schema = 3
    assert old_schema < SCHEMA_VERSION
    config = feeds(tmp_path, "http://127.0.0.1:9/feed.xml")
    db = old_database(tmp_path / "newshound.db", old_schema)
    result = run_subprocess("--config", str(config), "--db", str(db), "status")
    assert result.code == 0, result.err
    backup = tmp_path / f"newshound.db.bak-schema{old_schema}"
    # The migration is logged, naming both schemas and where the copy is.
    assert (
        f"upgrading database {db} from schema {old_schema} to {SCHEMA_VERSION}; "
        f"the old database is backed up at {backup}"
    ) in result.err
    assert f"(schema {SCHEMA_VERSION})" in result.out

    copy = sqlite3.connect(backup)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA user_version").fetchone()[0] == old_schema
        assert copy.execute("SELECT term FROM terms").fetchall() == [("lumber duties",)]
        feed_columns = {row[1] for row in copy.execute("PRAGMA table_info(feeds)")}
        assert "check_interval" not in feed_columns  # added by migration 6: the old shape
    finally:
        copy.close()
    assert list(tmp_path.glob("*.partial")) == []

    # Restored with the README's command, the copy is a working database again.
    restored = tmp_path / "restored.db"
    restore = readme_restore_command(old_schema, restored.name)
    subprocess.run(restore, shell=True, cwd=tmp_path, check=True, timeout=30)
    listed = run_subprocess("--config", str(config), "--db", str(restored), "watch", "list",
                            "--channel", CHANNEL)  # fmt: skip
    assert listed.code == 0, listed.err
    assert "lumber duties" in listed.out

    # Already current: no second backup, no upgrade logged.
    again = run_subprocess("--config", str(config), "--db", str(db), "status")
    assert again.code == 0 and "upgrading" not in again.err
    assert sorted(p.name for p in tmp_path.glob("newshound.db.bak-*")) == [backup.name]


def test_a_new_database_is_not_backed_up(tmp_path: Path) -> None:
    config = feeds(tmp_path, "http://127.0.0.1:9/feed.xml")
    db = tmp_path / "newshound.db"
    result = run_subprocess("--config", str(config), "--db", str(db), "watch", "add",
                            "--channel", CHANNEL, "oil")  # fmt: skip
    assert result.code == 0, result.err
    assert "upgrading" not in result.err
    assert list(tmp_path.glob("*.bak-*")) == []


def test_an_upgrade_that_cannot_be_backed_up_changes_nothing(tmp_path: Path) -> None:
    config = feeds(tmp_path, "http://127.0.0.1:9/feed.xml")
    db = old_database(tmp_path / "newshound.db", 2)
    (tmp_path / "newshound.db.bak-schema2").mkdir()  # the backup's place is taken
    result = run_subprocess("--config", str(config), "--db", str(db), "status")
    assert result.code == 2
    assert result.err.startswith(
        f"newshound: cannot open database {db}: not upgraded from schema 2"
    )
    assert list(tmp_path.glob("*.partial")) == []  # no half copy left behind
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        conn.close()
