"""A message that cannot be built is dead with the reason, never "maybe
delivered"; dates outside what a datetime holds are left out of messages.

A feed date of `9999-12-31T23:59:59-05:00` is year 10000 in UTC: Discord's
embed `timestamp` is an ISO 8601 string
(https://discord.com/developers/docs/resources/message#embed-object:
"timestamp: ISO8601 timestamp"), which no year past 9999 can be written as.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from fakediscord import FakeDiscord
from fakeslack import FakeSlack
from feedserver import FeedServer

from bot.messages import ALERT, format_time
from bot.sinks.discord import format_message as discord_message
from bot.store import DEAD, SENT, Store

FAR = "9999-12-31T23:59:59-05:00"


def json_feed_with_date(date: str) -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Far Future",
            "items": [
                {
                    "id": "urn:far",
                    "url": "https://news.example/far",
                    "title": "Tariff talks resume",
                    "content_text": "New tariff talks.",
                    "date_published": date,
                }
            ],
        }
    ).encode()


def test_a_far_future_date_is_left_out_and_both_sinks_deliver(
    db_url: str, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_server.set("/far.json", json_feed_with_date(FAR), content_type="application/feed+json")
    with FakeSlack() as slack, FakeDiscord() as discord:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        hook = discord.webhook()
        config = write_config(
            tmp_path / "feeds.yaml",
            [feed_server.url("/far.json")],
            [
                {"channel": "C0FAR000001", "terms": ["tariff"]},
                {"channel": f"discord:{hook}", "terms": ["tariff"]},
            ],
        )
        db = db_url
        result = run_cli("--config", str(config), "--db", str(db), "poll", "--once")
        assert result.code == 0, result.err
        (embed,) = discord.posts(hook)[0]["embeds"]
        assert "timestamp" not in embed
        assert len(slack.posts("C0FAR000001")) == 1
        with Store(db) as store:
            assert store.outbox.counts() == {SENT: 2}


def test_a_payload_that_cannot_be_built_is_dead_and_the_channel_flows(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old outbox row whose payload breaks the formatter (here: no title)
    dies with the reason; the next message of that channel is delivered."""
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    with FakeDiscord() as discord:
        hook = discord.webhook()
        channel = f"discord:{hook}"
        db = db_url
        good = {
            "title": "Fine",
            "link": None,
            "source": "S",
            "published": 253402318799.0,  # an old row stored before dates were dropped
            "terms": ["x"],
            "snippet": [],
        }
        with Store(db) as store:
            broken = store.outbox.add(channel, ALERT, {"snippet": []}, time.time())
            fine = store.outbox.add(channel, ALERT, good, time.time())
        config = write_config(
            tmp_path / "feeds.yaml", [], [{"channel": channel, "terms": ["tariff"]}]
        )
        result = run_cli("--config", str(config), "--db", str(db), "poll", "--once")
        assert result.code == 0, result.err
        with Store(db) as store:
            dead = store.outbox.get(broken)
            assert dead is not None and dead.state == DEAD
            assert dead.last_error is not None
            assert dead.last_error.startswith("message could not be built (KeyError")
            delivered = store.outbox.get(fine)
            assert delivered is not None and delivered.state == SENT
        assert [p["embeds"][0]["title"] for p in discord.posts(hook)] == ["Fine"]


def test_dates_outside_datetime_never_break_formatting() -> None:
    for epoch in (253402318799.0, -1e18, float("inf"), float("nan")):
        message = discord_message(ALERT, {
            "title": "t", "link": None, "source": "s", "published": epoch,
            "terms": [], "snippet": [],
        })  # fmt: skip
        assert "timestamp" not in message["embeds"][0]
        assert format_time(epoch)
