"""bot/cli.py: output piped into a reader that stops early (`| head -1`)
ends the command quietly, and no alert is lost to the closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.cli import EXIT_BROKEN_PIPE
from bot.store import Store

CHANNEL = "C0CLITEST01"


def run_into_closed_pipe(*args: str) -> tuple[int, str]:
    """Run `python -m bot ARGS` with stdout a pipe nobody reads any more
    (its reader already exited, as `head -1` does): (exit code, stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NEWSHOUND_"))}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bot", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env=env,
            cwd=str(REPO),
        )
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr


def assert_quiet(code: int, err: str) -> None:
    assert code == EXIT_BROKEN_PIPE, err
    assert err == ""  # no traceback, no "internal error", no "Exception ignored"


def test_demo_into_a_closed_pipe_is_quiet() -> None:
    assert_quiet(*run_into_closed_pipe("demo"))


def test_watch_list_into_a_closed_pipe_is_quiet(db_url: str, tmp_path: Path) -> None:
    db = db_url
    for term in ("oil", "steel", "chips"):
        assert run_cli("--db", db, "watch", "add", "--channel", CHANNEL, term).code == 0
    assert_quiet(*run_into_closed_pipe("--db", db, "watch", "list", "--channel", CHANNEL))


@pytest.mark.parametrize("command", [["check"], ["status"]])
def test_other_commands_into_a_closed_pipe_are_quiet(
    db_url: str, tmp_path: Path, command: list[str]
) -> None:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    common = ("--config", str(config), "--db", db_url)
    Store(db_url).close()
    assert_quiet(*run_into_closed_pipe(*common, *command))


def test_poll_into_a_closed_pipe_keeps_the_alert_pending(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.set(
        "/feed.xml",
        rss(
            [
                FeedEntry(
                    "New tariff on steel", link="https://n.example/1", published=datetime.now(UTC)
                )
            ]
        ),
    )
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/feed.xml")],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
    )
    common = ("--config", str(config), "--db", db_url)
    assert_quiet(*run_into_closed_pipe(*common, "poll", "--once"))

    status = run_cli(*common, "status")
    assert status.code == 0, status.err
    assert "Alerts: 0 sent, 1 pending, 0 dead" in status.out
    assert "console output closed (broken pipe)" in status.out
    # The next run with a reader delivers it.
    again = run_cli(*common, "poll", "--once", "--all")
    assert again.code == 0, again.err
    assert "New tariff on steel" in again.out
    assert "delivery: 1 sent, 0 pending, 0 dead" in again.out
