"""bot/cli.py: the `watch`, `status` and `poll` commands through the real command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import holds_a_database, run_cli, run_subprocess, write_config
from feedgen import rss
from feedserver import FeedServer

from bot.messages import ALERT, DIGEST, NOTICE
from bot.store import FeedSuccess, Store

CHANNEL = "C0CLITEST01"
WEBHOOK = "discord:https://discord.com/api/webhooks/123456/s3cretT0ken"


@pytest.fixture
def common(db_url: str, tmp_path: Path) -> tuple[str, ...]:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    return ("--config", str(config), "--db", db_url)


# -- watch --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "why"),
    [
        ("bad chan", "not a Slack channel ID"),
        ("#news", "channel name"),
        ("discord:ftp://discord.com/api/webhooks/1/x", "https://"),
        ("discord:", "webhook URL"),
        ("discord:$1BAD", "environment variable"),
        ("https://discord.com/api/webhooks/1/x", "discord:<webhook URL>"),
    ],
)
@pytest.mark.parametrize("action", ["add", "remove", "list"])
def test_watch_refuses_an_invalid_channel(
    common: tuple[str, ...], channel: str, why: str, action: str
) -> None:
    query = [] if action == "list" else ["tariff"]
    result = run_cli(*common, "watch", action, "--channel", channel, *query)
    assert result.code == 2
    assert result.err.startswith("newshound: invalid --channel: ")
    assert why in result.err
    assert result.out == ""
    assert "s3cret" not in result.err
    # Refused before anything was stored: not even a database was made.
    assert not holds_a_database(common[-1])


def test_watch_error_shows_the_typed_channel_but_not_a_secret(common: tuple[str, ...]) -> None:
    typed = run_cli(*common, "watch", "add", "--channel", "bad chan", "tariff")
    assert typed.code == 2
    assert typed.err.startswith(
        "newshound: invalid --channel: 'bad chan' is not a Slack channel ID"
    )
    escaped = run_cli(*common, "watch", "list", "--channel", "evil\x1b[2J\nchan")
    assert escaped.code == 2
    assert "'evil\\x1b[2J\\nchan' is not a Slack channel ID" in escaped.err
    assert "\x1b" not in escaped.err and escaped.err.count("\n") == 1
    token = "xoxb-1234-5678-s3cretT0kenValue"
    pasted = run_cli(*common, "watch", "add", "--channel", token, "tariff")
    assert pasted.code == 2
    assert pasted.err.startswith('newshound: invalid --channel: "***" is not a Slack channel ID')
    assert "s3cret" not in pasted.err


def test_watch_accepts_slack_ids_and_discord_channels(common: tuple[str, ...]) -> None:
    for channel in (CHANNEL, "G0PRIVATE01", WEBHOOK, "discord:$TRADE_WEBHOOK"):
        result = run_cli(*common, "watch", "add", "--channel", channel, "tariff")
        assert result.code == 0, result.err


def test_watch_output_keeps_webhook_masks_and_asterisks_in_terms(common: tuple[str, ...]) -> None:
    added = run_cli(*common, "watch", "add", "--channel", WEBHOOK, "5*star", "rating")
    assert added.code == 0, added.err
    assert "Now watching phrase 5 star rating (also: 5 star ratings)" in added.out
    listed = run_cli(*common, "watch", "list", "--channel", WEBHOOK)
    assert "Terms watched in discord:…/123456/***:" in listed.out
    assert "• 5*star rating (added by the command line" in listed.out
    assert "s3cret" not in listed.out


def test_watch_replies_speak_cli_not_slack(common: tuple[str, ...]) -> None:
    missing = run_cli(*common, "watch", "remove", "--channel", CHANNEL, "tariff")
    assert missing.code == 2
    assert "/watch" not in missing.err
    assert f"`newshound watch list --channel {CHANNEL}` shows its terms" in missing.err
    empty = run_cli(*common, "watch", "list", "--channel", CHANNEL)
    assert f"newshound watch add --channel {CHANNEL} QUERY" in empty.out
    assert "/watch" not in empty.out and "*" not in empty.out


def test_watch_test_adds_nothing(common: tuple[str, ...]) -> None:
    assert run_cli(*common, "poll", "--once").code == 0  # creates the database
    tested = run_cli(*common, "watch", "test", "--channel", CHANNEL, "trade", "deal")
    assert tested.code == 0, tested.err
    assert tested.out.startswith("phrase trade deal (also: trade deals) (nothing was added)")
    assert "no terms yet" in run_cli(*common, "watch", "list", "--channel", CHANNEL).out
    bad = run_cli(*common, "watch", "test", "--channel", CHANNEL, "-rumor")
    assert bad.code == 2 and "Can't use that query" in bad.err


def test_watch_trims_a_dangling_dash(common: tuple[str, ...]) -> None:
    added = run_cli(*common, "watch", "add", "--channel", CHANNEL, "tariff", "-")
    assert added.code == 0, added.err
    listed = run_cli(*common, "watch", "list", "--channel", CHANNEL)
    assert "• tariff (added by the command line" in listed.out
    assert run_cli(*common, "watch", "remove", "--channel", CHANNEL, "tariff -").code == 0


# -- status -------------------------------------------------------------------


def status(common: tuple[str, ...]) -> str:
    result = run_cli(*common, "status")
    assert result.code == 0, result.err
    return result.out


def test_status_shows_a_never_polled_feed_as_due_now(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", ["http://127.0.0.1:9/feed.xml"], [])
    Store(db_url).close()
    out = status(("--config", str(config), "--db", db_url))
    assert "health: not polled yet" in out
    assert "next check: due now" in out
    assert "1970" not in out


def test_status_survives_a_next_check_beyond_the_calendar(db_url: str, tmp_path: Path) -> None:
    common = ("--config", str(tmp_path / "feeds.yaml"), "--db", db_url)
    write_config(tmp_path / "feeds.yaml", ["http://127.0.0.1:9/feed.xml"], [])
    Store(db_url).close()
    status(common)
    with Store(db_url) as store:
        (row,) = store.feeds.all()
        store.feeds.record_successes([FeedSuccess(row.id, 1.0, 1e300, None, None)])
    out = status(common)
    assert "next check: far in the future" in out and "last success: 1970-01-01 00:00" in out


def test_status_labels_undelivered_messages_by_kind(db_url: str, tmp_path: Path) -> None:
    common = ("--config", str(tmp_path / "feeds.yaml"), "--db", db_url)
    write_config(tmp_path / "feeds.yaml", [], [])
    with Store(db_url) as store:
        store.outbox.add(CHANNEL, ALERT, {"title": "Tariffs rise", "items": []}, 1.0)
        store.outbox.add(CHANNEL, DIGEST, {"items": [{"title": "a"}, {"title": "b"}]}, 2.0)
        store.outbox.add(CHANNEL, DIGEST, {"items": [{"title": "c"}]}, 2.0)
        notice = store.outbox.add(
            WEBHOOK, NOTICE, {"text": "Feed World is suspended:\nHTTP 500 (3 failures)"}, 3.0
        )
        store.outbox.claim(notice, owner="test", now=4.0, gate_keys=[], hold={})
        assert store.outbox.mark_dead(notice, "webhook_gone", 4.0, owner="test")
    out = status(common)
    assert "3 pending, 1 dead" in out
    assert f"#1 {CHANNEL} 'Tariffs rise': not sent yet" in out
    assert "#2 C0CLITEST01 digest of 2 stories: not sent yet" in out
    assert "#3 C0CLITEST01 digest of 1 story: not sent yet" in out
    assert (
        "#4 discord:…/123456/*** notice 'Feed World is suspended: HTTP 500 (3 failures)': "
        "webhook_gone" in out
    )
    assert "digest of 0" not in out and "s3cret" not in out


def test_status_lists_messages_being_sent_and_counts_the_rest(db_url: str, tmp_path: Path) -> None:
    common = ("--config", str(tmp_path / "feeds.yaml"), "--db", db_url)
    write_config(tmp_path / "feeds.yaml", [], [])
    with Store(db_url) as store:
        first = store.outbox.add(CHANNEL, ALERT, {"title": "Being sent"}, 1.0)
        claim = store.outbox.claim(first, owner="test", now=1.0, gate_keys=[], hold={})
        assert claim.row is not None and claim.row.state == "sending"
        for n in range(24):
            store.outbox.add(CHANNEL, ALERT, {"title": f"Waiting {n}"}, 2.0)
        for n in range(23):
            dead = store.outbox.add(CHANNEL, ALERT, {"title": f"Dead {n}"}, 3.0)
            # Straight to dead (a sender would have to claim each one first).
            store.db.execute(
                "UPDATE outbox SET state = 'dead', last_error = ? WHERE id = ?",
                ("channel_not_found", dead),
            )
    out = status(common)
    assert "25 pending, 23 dead" in out
    pending, dead = out.split("Pending:\n")[1].split("Dead:\n")
    assert pending.splitlines()[0].startswith("  #1 C0CLITEST01 'Being sent' (sending now): ")
    assert pending.count("\n  #") + 1 == 20  # the first line has no leading newline
    assert pending.rstrip().endswith("… and 5 more")
    assert dead.count("'Dead ") == 20
    assert dead.rstrip().endswith("… and 3 more")


def test_status_with_a_broken_config_exits_2_with_file_and_line(
    db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds:\n  - url: ftp://example.org/rss\n    colour: red\n", "utf-8")
    result = run_cli("--config", str(config), "--db", db_url, "status")
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert lines[0].startswith(f"{config}:2: ") and "http" in lines[0]
    assert lines[1].startswith(f"{config}:3: ") and "colour" in lines[1]


ABSURD_CONFIG = f"""\
settings:
  interval: 99999999999999999999d
  max_age: {"9" * 400}d
  retention: 1e400d
  fetch_timeout: 10d
  max_body_mb: 1e308
  failure_threshold: {"9" * 5000}
feeds:
  - url: http://127.0.0.1:9/feed.xml
    interval: 1000w
watches:
  - channel: C0CLITEST01
    terms: [tariff]
"""


@pytest.mark.parametrize("command", [["check"], ["poll", "--once", "--all"], ["status"]])
def test_absurd_numbers_are_config_errors_not_tracebacks(
    db_url: str, tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(ABSURD_CONFIG, "utf-8")
    db = db_url
    result = run_subprocess("--config", str(config), "--db", str(db), *command)
    assert result.code == 2, result.err
    assert result.out == ""
    assert result.err.splitlines() == [
        f"{config}:2: interval must be at most 7d (got 99999999999999999999d)",
        f'{config}:3: max_age: "{"9" * 37}..." is too long',
        f'{config}:4: retention: "1e400d" is not a valid duration; use a number with a unit, '
        "e.g. 30s, 5m, 2h, 1d or 1h30m",
        f"{config}:5: fetch_timeout must be at most 5m (got 10d)",
        f"{config}:6: max_body_mb must be at most 1024 (got 1e308)",
        f"{config}:7: failure_threshold must be at most 1000 (got {'9' * 37}...)",
        f"{config}:10: feed interval must be at most 7d (got 1000w)",
    ]


# -- poll ---------------------------------------------------------------------


def test_poll_once_says_when_no_feed_is_due(
    db_url: str, tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    feed_server.set("/feed.xml", rss([], title="Quiet"))
    config = write_config(
        tmp_path / "feeds.yaml", [feed_server.url("/feed.xml")], [], interval="1h"
    )
    common = ("--config", str(config), "--db", db_url)
    first = run_cli(*common, "poll", "--once")
    assert first.code == 0, first.err
    assert "no feed is due" not in first.out and "Quiet" in first.out

    again = run_cli(*common, "poll", "--once")
    assert again.code == 0, again.err
    lines = again.out.splitlines()
    assert re.fullmatch(
        r"no feed is due; next check at \d{4}-\d\d-\d\d \d\d:\d\d UTC "
        r"\(use --all to poll every feed now\)",
        lines[0],
    )
    assert not any(line.startswith("feed ") for line in lines)  # no empty table
    assert lines[1].startswith("cycle: 0 feeds polled")

    forced = run_cli(*common, "poll", "--once", "--all")
    assert "no feed is due" not in forced.out and "Quiet" in forced.out


def test_poll_once_keeps_working_for_a_feed_that_failed_very_often(
    db_url: str, tmp_path: Path
) -> None:
    # Over 1024 failures in a row (years of daily retries while suspended, or
    # a cron job running `poll --once --all` every minute) the backoff used to
    # overflow a float: every poll then ended in "internal error".
    config = write_config(
        tmp_path / "feeds.yaml",
        ["http://127.0.0.1:9/feed.xml"],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
    )
    common = ("--config", str(config), "--db", db_url)
    with Store(db_url) as store:
        store.feeds.sync(["http://127.0.0.1:9/feed.xml"])
        store.db.execute("UPDATE feeds SET consecutive_failures = 1024")
    result = run_cli(*common, "poll", "--once", "--all")
    assert result.code == 1, result.err  # its only feed failed
    assert "internal error" not in result.err
    assert "failed 1025 times in a row" in result.out
    status = run_cli(*common, "status")
    assert status.code == 0, status.err
    assert "1025 failures in a row" in status.out


def test_poll_once_without_feeds_says_so(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    result = run_cli("--config", str(config), "--db", db_url, "poll", "--once")
    assert result.code == 0, result.err
    assert result.out.startswith(f"no feeds are configured in {config}; nothing to poll\n")


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert result.out.strip().startswith("newshound ") and "unknown" not in result.out
