"""bot/demo: `newshound demo` through the real command line.

The demo delivers into the console, so it must never work in a real
database: that would mark the deployment's pending alerts as sent (they would
never reach Slack or Discord) and print their channels, webhook tokens included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import run_cli, run_subprocess, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.store import Store

TOKEN = "SUPERSECRETtoken42"
# Nothing listens on port 9: the alert stays pending.
WEBHOOK = f"discord:http://127.0.0.1:9/api/webhooks/42/{TOKEN}"


def dump(db: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order."""
    with Store(db) as store:
        return {
            table: sorted(store.db.rows(f"SELECT * FROM {table}"), key=repr)
            for table in sorted(store.db.tables())
        }


@pytest.fixture
def real_db(db_url: str, tmp_path: Path, feed_server: FeedServer) -> str:
    """A deployment's database with one alert pending for a Discord webhook."""
    feed_server.set(
        "/world.xml",
        rss(
            [
                FeedEntry(
                    "Zanzibar lumber tariff review",
                    link="https://news.example/zanzibar-lumber",
                    published=datetime.now(UTC),
                )
            ],
            title="Global Desk",
        ),
    )
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/world.xml")],
        [{"channel": WEBHOOK, "terms": ["tariff"]}],
    )
    db = db_url
    polled = run_cli("--config", str(config), "--db", str(db), "poll", "--once")
    assert polled.code == 0, polled.err
    status = run_cli("--config", str(config), "--db", str(db), "status")
    assert "Alerts: 0 sent, 1 pending, 0 dead" in status.out
    return db


@pytest.mark.parametrize("how", ["--db before", "--db after", "NEWSHOUND_DB"])
def test_demo_never_touches_the_real_database(real_db: str, how: str) -> None:
    before = dump(real_db)
    if how == "--db before":
        result = run_subprocess("--db", str(real_db), "demo")
    elif how == "--db after":
        result = run_subprocess("demo", "--db", str(real_db))
    else:
        result = run_subprocess("demo", env={"NEWSHOUND_DB": str(real_db)})
    assert result.code == 0, result.err
    assert "in a fresh temporary database" in result.out
    assert "demo summary:" in result.out
    # The real pending alert is neither printed nor marked sent.
    assert "Zanzibar lumber" not in result.out
    assert TOKEN not in result.out + result.err
    assert "webhooks/42" not in result.out
    assert dump(real_db) == before


def test_demo_ignores_a_broken_database_path(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("junk\n")
    result = run_subprocess("demo", "--db", str(junk))
    assert result.code == 0, result.err
    assert "demo summary:" in result.out
    assert junk.read_text() == "junk\n"


def test_demo_help_says_it_uses_a_temporary_database() -> None:
    result = run_cli("demo", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert "fresh temporary database" in text
    assert "NEWSHOUND_DB" in text


# -- the same alerts every run, and what was filtered and why ------------------


def test_demo_prints_the_same_every_run() -> None:
    # The feeds are dated relative to a fixed moment the poller also takes
    # for now, and processed in config order (not as their fetches finish).
    first = run_subprocess("demo")
    second = run_subprocess("demo")
    assert first.code == 0 and second.code == 0, first.err + second.err
    assert first.out == second.out
    assert first.out.count("== alert -> ") == 5
    assert "127.0.0.1" not in first.out  # the server's port changes every run


def test_demo_summary_says_what_was_filtered_and_why() -> None:
    result = run_cli("demo")
    assert result.code == 0, result.err
    summary = result.out.strip().splitlines()[-1]
    assert summary.startswith("demo summary: 3 feeds, 12 items, 5 matches, ")
    assert summary.endswith(
        "3 items filtered: 1 excluded by -rumor, 1 older than max_age, 1 only a partial word match"
    )
    # The items behind those reasons never alerted; the duplicate alerted once.
    for title in ("merger rumor", "Dairy farmers", "Dealer networks"):
        assert title not in result.out
    assert result.out.count("US-India trade deal") + result.out.count("US and India") == 1


def test_demo_sample_feeds_read_like_news() -> None:
    from importlib import resources

    for name in ("world.xml", "markets.xml", "policy.json"):
        text = resources.files("bot.demo").joinpath(name).read_text(encoding="utf-8").lower()
        for wording in ("test", "demo", "should match", "must alert", "too old to alert"):
            assert wording not in text, (name, wording)
