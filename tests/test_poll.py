"""bot/poll.py: how a cycle names feeds in digests, and how many feeds it has in flight."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.config import Config, parse_config
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
    db_url: str, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
    result = run_cli("--config", str(config), "--db", db_url, "poll", "--once")
    assert result.code == 0, result.err

    single = re.findall(r"^  source:  (.*)$", result.out, re.MULTILINE)
    digest = dict(re.findall(r"^  - (\w+) tariff story \d \((.*)\)  https", result.out, re.M))
    assert len(single) == 1 and single[0] in ("Configured Name", "Own Title B", "127.0.0.1")
    assert "8 more matching stories" in result.out
    assert digest == {"named": "Configured Name", "titled": "Own Title B", "bare": "127.0.0.1"}
    assert "Own Title A" not in result.out


def test_a_cycle_keeps_at_most_workers_feeds_in_flight(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    for i in range(8):
        feed_server.set(f"/slow{i}.xml", rss(tariff_stories(f"s{i}", 1)), delay=0.2)
    config = parse_config(
        "settings: {allow_networks: [127.0.0.0/8]}\nfeeds:\n"
        + "".join(f"  - url: {feed_server.url(f'/slow{i}.xml')}\n" for i in range(8)),
        "feeds.yaml",
    )
    policy = FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))
    with Store(db_url) as store, Fetcher(policy, per_host=8) as fetcher:
        report = Poller(config, store, fetcher, workers=3).run_cycle(all_feeds=True)
    assert [f.status for f in report.feeds] == ["ok"] * 8
    assert feed_server.peak_active == 3


def slow_feeds_config(urls: list[str]) -> Config:
    return parse_config(
        "settings: {allow_networks: [127.0.0.0/8], fetch_timeout: 2s}\nfeeds:\n"
        + "".join(f"  - url: {url}\n" for url in urls),
        "feeds.yaml",
    )


def test_a_stuck_host_does_not_hold_up_feeds_on_other_hosts(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    stuck = [feed_server.url(f"/stuck{i}.xml") for i in range(8)]
    for i in range(8):
        feed_server.set(f"/stuck{i}.xml", rss([]), delay=3.0)
    feed_server.set("/fine.xml", rss(tariff_stories("fine", 1)))
    fine = feed_server.url("/fine.xml").replace("127.0.0.1", "localhost")  # another host
    config = slow_feeds_config([*stuck, fine])
    policy = FetchPolicy(timeout=1.0, allow_networks=(ip_network("127.0.0.0/8"),))
    with Store(db_url) as store, Fetcher(policy, per_host=2) as fetcher:
        started = time.monotonic()
        report = Poller(config, store, fetcher, workers=4).run_cycle(all_feeds=True)
    # 6 feeds wait for the stuck host's 2 slots, but hold no cycle slot while
    # they wait: the feed on the healthy host is fetched at once, not after
    # rounds of timeouts.
    fine_at = next(r.at for r in feed_server.requests if r.path == "/fine.xml")
    assert fine_at - started < 0.8
    assert {f.url: f.status for f in report.feeds}[fine] == "ok"


def test_stopping_a_cycle_early_logs_no_errors(
    db_url: str, feed_server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    urls = [feed_server.url(f"/f{i}.xml") for i in range(60)]
    for i in range(60):
        feed_server.set(f"/f{i}.xml", rss(tariff_stories(f"f{i}", 2)))
    config = slow_feeds_config(urls)
    policy = FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))
    with Store(db_url) as store, Fetcher(policy) as fetcher:
        poller = Poller(config, store, fetcher)
        for _ in range(5):
            results = iter(range(3))
            report = poller.run_cycle(
                all_feeds=True, should_stop=lambda results=results: next(results, None) is None
            )
            assert len(report.feeds) == 3
        time.sleep(0.3)  # fetches abandoned by the last stop have finished by now
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
