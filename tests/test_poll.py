"""bot/poll.py: how a cycle names feeds in digests, and how many feeds it has in flight."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.config import parse_config
from bot.fetch import Fetcher, FetchPolicy
from bot.poll import Poller
from bot.store import Store

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


def test_a_cycle_keeps_at_most_workers_feeds_in_flight(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    for i in range(8):
        feed_server.set(f"/slow{i}.xml", rss(tariff_stories(f"s{i}", 1)), delay=0.2)
    config = parse_config(
        "settings: {allow_networks: [127.0.0.0/8]}\nfeeds:\n"
        + "".join(f"  - url: {feed_server.url(f'/slow{i}.xml')}\n" for i in range(8)),
        "feeds.yaml",
    )
    policy = FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))
    with Store(tmp_path / "db") as store, Fetcher(policy, per_host=8) as fetcher:
        report = Poller(config, store, fetcher, workers=3).run_cycle(all_feeds=True)
    assert [f.status for f in report.feeds] == ["ok"] * 8
    assert feed_server.peak_active == 3
