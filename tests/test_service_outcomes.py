"""`newshound run` tells the truth about outages: a failing feed is logged
once when it starts failing (not at every retry) and once when it works
again, and `/healthz` says "degraded" (still 200) with the counts that cause
it while feeds fail or messages are dead. A real subprocess over real HTTP,
fake Slack and a loopback feed server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import write_config
from fakeslack import FakeSlack, Fault
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from service_helpers import Service, sql, wait_for

from bot.store import SCHEMA_VERSION

pytestmark = pytest.mark.slow

CHANNEL = "C0WATCH0001"


def make_due(db: str) -> None:
    """Time passes: the failing feed's backoff is over at the next tick."""
    sql(db, "UPDATE feeds SET next_check_at = 0")


def failures(db: str) -> int:
    """The feed's failed checks in a row, as recorded (so the cycle is done with it)."""
    return int(sql(db, "SELECT consecutive_failures FROM feeds")[0][0])


def test_a_failing_feed_is_logged_once_and_its_recovery_once(
    db_url: str, tmp_path: Path, feed_server: FeedServer, slack: FakeSlack
) -> None:
    feed_server.set("/wire.xml", b"upstream error", status=500, content_type="text/plain")
    url = feed_server.url("/wire.xml")
    config = write_config(tmp_path / "feeds.yaml", [url], [{"channel": CHANNEL, "terms": ["oil"]}])
    db = db_url
    service = Service(config, db, slack).start()
    try:
        health = wait_for(lambda: _health_if(service, lambda h: h["feeds_failing"] == 1))
        assert health["status"] == "degraded"
        assert health["degraded_by"] == ["feeds_failing"]
        wait_for(lambda: failures(db) == 1)
        for attempt in range(2, 5):  # three more failed checks, the same way
            make_due(db)
            wait_for(lambda n=attempt: failures(db) == n)
        feed_server.set("/wire.xml", rss([], title="Oil Wire"))
        make_due(db)
        wait_for(lambda: _health_if(service, lambda h: h["feeds_failing"] == 0))
        wait_for(lambda: "works again" in service.log())
        make_due(db)  # and one more good check: nothing more to say
        wait_for(lambda: feed_server.hits("/wire.xml") >= 6)
        health = wait_for(lambda: _health_if(service, lambda h: h["last_cycle_at"]))
    finally:
        code, _elapsed = service.stop()
    log = service.log()
    assert code == 0, log
    assert health["status"] == "ok" and health["degraded_by"] == []
    assert log.count(f"({url}) is failing: ") == 1, log
    assert log.count("works again after 4 failed checks") == 1, log
    assert log.count("HTTP 500") == 1, log


def test_healthz_is_degraded_while_messages_are_dead(
    db_url: str, tmp_path: Path, feed_server: FeedServer, slack: FakeSlack
) -> None:
    entry = FeedEntry("Oil prices slip", link="https://news.example/oil",
                      published=datetime.now(UTC))  # fmt: skip
    feed_server.set("/wire.xml", rss([entry], title="Oil Wire"))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/wire.xml")],
        [{"channel": CHANNEL, "terms": ["oil"]}],
    )
    slack.fail_next("chat.postMessage", Fault(error="channel_not_found"))
    service = Service(config, db_url, slack).start()
    try:
        health = wait_for(lambda: _health_if(service, lambda h: h["alerts_dead"] == 1))
        result = service.get("/healthz")
    finally:
        code, _elapsed = service.stop()
    assert code == 0, service.log()
    assert result.status == 200  # degraded is not down: a restart would not fix it
    assert health["status"] == "degraded"
    assert health["degraded_by"] == ["alerts_dead"]
    assert health["feeds_failing"] == 0
    assert health["schema"] == SCHEMA_VERSION


def _health_if(service: Service, condition: Any) -> dict[str, Any] | None:
    result = service.get("/healthz")
    assert result.status == 200, result.body
    data: dict[str, Any] = result.json()
    return data if condition(data) else None
