"""Discord webhooks on API v10, with a fake that answers like each version.

Discord's UI hands out unversioned webhook URLs (`/api/webhooks/ID/TOKEN`).
Unversioned requests get the old default version, whose 429 `retry_after`
is in milliseconds; from v8 on it is seconds
(https://discord.com/developers/docs/reference#api-versioning;
https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit:
"retry_after: float, the number of seconds to wait before submitting another
request"). Read as seconds, 1,500 ms would close a channel for 25 minutes.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cli_helpers import run_cli, write_config
from fakediscord import FakeDiscord, Fault
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.messages import ALERT
from bot.sinks.base import DeliveryError
from bot.sinks.discord import MAX_WAIT, DiscordSink

NOW = datetime.now(UTC)
PAYLOAD = {
    "title": "Tariff news",
    "link": "https://news.example/t",
    "source": "World",
    "published": None,
    "terms": ["tariff"],
    "snippet": [["tariff", True]],
}


def test_the_fake_answers_like_each_version() -> None:
    with FakeDiscord() as discord:
        url = discord.webhook()
        discord.fail_next(Fault(status=429, retry_after=1.5), Fault(status=429, retry_after=1.5))
        old = httpx.post(url + "?wait=true", json={"content": "x"})
        new = httpx.post(url.replace("/api/", "/api/v10/") + "?wait=true", json={"content": "x"})
        assert old.json()["retry_after"] == 1500
        assert new.json()["retry_after"] == 1.5


def test_unversioned_webhook_url_is_called_on_v10_and_its_wait_honoured(
    db_url: str, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`poll --once`: the webhook URL as copied from Discord (unversioned);
    every call goes to v10, a 1.5 s 429 is waited out and the alert arrives
    in the same run."""
    feed_server.set(
        "/world.xml",
        rss(
            [
                FeedEntry(
                    title="New tariff on steel",
                    link="https://news.example/1",
                    guid="urn:1",
                    summary="Tariffs.",
                    published=NOW - timedelta(minutes=5),
                )
            ]
        ),
    )
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    with FakeDiscord() as discord:
        url = discord.webhook()
        config = write_config(
            tmp_path / "feeds.yaml",
            [feed_server.url("/world.xml")],
            [{"channel": "discord:$HOOK", "terms": ["tariff"]}],
        )
        monkeypatch.setenv("HOOK", url)
        discord.fail_next(Fault(status=429, retry_after=1.5))
        started = time.monotonic()
        result = run_cli("--config", str(config), "--db", db_url, "poll", "--once")
        assert result.code == 0, result.err
        assert time.monotonic() - started < 30
        received = discord.received(url)
        assert [r.version for r in received] == [10, 10]
        assert received[1].at - received[0].at >= 1.5
        assert len(discord.posts(url)) == 1


def test_discord_com_webhooks_go_through_discord_api_url(
    db_url: str, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC §1: DISCORD_API_URL is "used for every Discord call incl.
    webhooks that point at discord.com": a webhook URL as Discord's UI
    copies it (https://discord.com/api/webhooks/ID/TOKEN) is posted to the
    fake under DISCORD_API_URL, on v10, and never to discord.com."""
    entry = FeedEntry(
        title="New tariff on steel",
        link="https://news.example/2",
        guid="urn:2",
        summary="Tariffs.",
        published=NOW - timedelta(minutes=5),
    )
    feed_server.set("/world.xml", rss([entry]))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    with FakeDiscord() as discord:
        fake_url = discord.webhook()
        path = httpx.URL(fake_url).path  # /api/webhooks/ID/TOKEN
        port = httpx.URL(fake_url).port
        monkeypatch.setenv("DISCORD_API_URL", f"http://127.0.0.1:{port}/api/v10")
        config = write_config(
            tmp_path / "feeds.yaml",
            [feed_server.url("/world.xml")],
            [{"channel": f"discord:https://discord.com{path}", "terms": ["tariff"]}],
        )
        result = run_cli("--config", str(config), "--db", db_url, "poll", "--once")
        assert result.code == 0, result.err
        assert [r.version for r in discord.received(fake_url)] == [10]
        assert len(discord.posts(fake_url)) == 1
        assert "delivery: 1 sent" in result.out


def test_an_absurd_wait_is_capped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with FakeDiscord() as discord:
        url = discord.webhook()
        discord.fail_next(Fault(status=429, retry_after=86_400.0))
        sink = DiscordSink({})
        with (
            caplog.at_level(logging.WARNING, logger="bot.sinks.discord"),
            pytest.raises(DeliveryError) as raised,
        ):
            sink.send(f"discord:{url}", ALERT, PAYLOAD, 1)
        assert raised.value.retry_after == MAX_WAIT
        assert "looks wrong" in caplog.text
