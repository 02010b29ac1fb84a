"""bot/poll.py: how a cycle names feeds in the digests it finishes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer

CHANNEL = "C0DIGEST001"
NOW = datetime.now(UTC)


def tariff_stories(prefix: str, count: int) -> list[FeedEntry]:
    return [
        FeedEntry(
            title=f"{prefix} tariff story {n}",
            link=f"https://news.example/{prefix}/{n}",
            guid=f"urn:{prefix}:{n}",
            summary="Tariff news.",
            published=NOW - timedelta(minutes=n),
        )
        for n in range(count)
    ]


def test_digest_items_name_their_feed_like_single_alerts(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)  # console sink
    feed_server.set("/named.xml", rss(tariff_stories("named", 3), title="Own Title A"))
    feed_server.set("/titled.xml", rss(tariff_stories("titled", 3), title="Own Title B"))
    feed_server.set("/bare.xml", rss(tariff_stories("bare", 3), title=""))
    config = write_config(
        tmp_path / "feeds.yaml",
        [
            {"url": feed_server.url("/named.xml"), "name": "Configured Name"},
            feed_server.url("/titled.xml"),
            feed_server.url("/bare.xml"),
        ],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
        max_alerts_per_poll=1,
    )
    result = run_cli("--config", str(config), "--db", str(tmp_path / "db"), "poll", "--once")
    assert result.code == 0, result.err

    single = re.findall(r"^  source:  (.*)$", result.out, re.MULTILINE)
    digest = dict(re.findall(r"^  - (\w+) tariff story \d \((.*)\)  https", result.out, re.M))
    assert len(single) == 1 and single[0] in ("Configured Name", "Own Title B", "127.0.0.1")
    assert "8 more matching stories" in result.out
    assert digest == {"named": "Configured Name", "titled": "Own Title B", "bare": "127.0.0.1"}
    assert "Own Title A" not in result.out
