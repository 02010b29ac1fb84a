"""When a feed is checked next: interval and publisher hints."""

from __future__ import annotations

import random
from ipaddress import ip_network
from pathlib import Path

import pytest
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.config import parse_config
from bot.fetch import Fetcher, FetchPolicy
from bot.poll import Poller
from bot.schedule import cache_max_age, next_check_after_success
from bot.store import Store

CONFIG = parse_config(
    "settings: {interval: 10m}\nfeeds:\n  - url: https://n.example/rss\n", "feeds.yaml"
)
FEED = CONFIG.feeds[0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"cache-control": "public, max-age=3600"}, 3600.0),
        ({"cache-control": "no-cache"}, None),
        ({"cache-control": "MAX-AGE = 60"}, 60.0),
    ],
)
def test_cache_max_age(headers: dict[str, str], expected: float | None) -> None:
    assert cache_max_age(headers) == expected


@pytest.mark.parametrize(
    ("ttl", "headers", "delay"),
    [
        (None, {}, 600.0),  # the configured interval
        (5, {}, 600.0),  # a <ttl> shorter than the interval changes nothing
        (60, {}, 3600.0),  # <ttl> is minutes: a lower bound on the next check
        (None, {"cache-control": "max-age=7200"}, 7200.0),
        (None, {"cache-control": "max-age=999999"}, 86400.0),  # never beyond a day
    ],
)
def test_next_check_honours_publisher_hints(
    ttl: int | None, headers: dict[str, str], delay: float
) -> None:
    ttl_seconds = ttl * 60 if ttl else None
    assert next_check_after_success(FEED, CONFIG, ttl_seconds, 1000.0, 0.0, headers) == 1000 + delay


def run_at(
    config_text: str, store: Store, fetcher: Fetcher, at: float, *, all_feeds: bool = False
) -> list[str]:
    config = parse_config(config_text, "feeds.yaml")
    poller = Poller(config, store, fetcher, clock=lambda: at)
    return [f.status for f in poller.run_cycle(all_feeds=all_feeds).feeds]


def schedule(url: str, interval: str) -> str:
    settings = f"settings: {{interval: {interval}, allow_networks: [127.0.0.0/8]}}\n"
    return settings + f"feeds:\n  - url: {url}\n"


def test_a_shorter_interval_after_a_reload_takes_effect_at_once(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.set("/daily.xml", rss([FeedEntry(title="x", link="https://n.example/1")]))
    url = feed_server.url("/daily.xml")
    policy = FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))
    t0 = 1_900_000_000.0
    with Store(db_url) as store, Fetcher(policy) as fetcher:
        assert run_at(schedule(url, "1d"), store, fetcher, t0) == ["ok"]
        assert run_at(schedule(url, "1d"), store, fetcher, t0 + 120) == []  # not due
        # feeds.yaml now says 1m: due a minute after the last poll, not a day.
        assert run_at(schedule(url, "1m"), store, fetcher, t0 + 120) != []
        # A longer interval never makes a feed due early.
        assert run_at(schedule(url, "1d"), store, fetcher, t0 + 150) == []


def test_a_wait_the_publisher_asked_for_is_kept(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    entry = FeedEntry(title="x", link="https://n.example/1")
    feed_server.set("/ttl.xml", rss([entry], ttl=120))  # "check me every 2 hours"
    url = feed_server.url("/ttl.xml")
    policy = FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))
    t0 = 1_900_000_000.0
    with Store(db_url) as store, Fetcher(policy) as fetcher:
        assert run_at(schedule(url, "10m"), store, fetcher, t0) == ["ok"]
        assert run_at(schedule(url, "5m"), store, fetcher, t0 + 3600) == []
        assert run_at(schedule(url, "5m"), store, fetcher, t0 + 7201) != []


class _FixedRandom(random.Random):
    """A random source that always draws `value` (the poller's jitter)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_jitter_polls_early_never_late(
    db_url: str, draw: float, feed_server: FeedServer, tmp_path: Path
) -> None:
    """Polls are spread by checking up to 10 % of the interval EARLY: whatever
    the random draw, the feed is due again no later than one interval after
    its last poll (so a new item waits at most the interval plus the tick),
    and never before 90 % of it. The clock is injected: no waiting."""
    feed_server.set("/j.xml", rss([FeedEntry(title="x", link="https://n.example/1")]))
    url = feed_server.url("/j.xml")
    config = parse_config(schedule(url, "60s"), "feeds.yaml")
    policy = FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))
    t0 = 1_900_000_000.0
    now = [t0]
    with Store(db_url) as store, Fetcher(policy) as fetcher:
        poller = Poller(
            config, store, fetcher, clock=lambda: now[0], rng=_FixedRandom(draw), jitter=0.1
        )
        assert [f.status for f in poller.run_cycle().feeds] == ["ok"]
        now[0] = t0 + 60 * 0.9 - 0.01
        assert poller.run_cycle().feeds == []  # not yet: at most 10 % early
        expected_due = t0 + 60 * (1 - 0.1 * draw)
        now[0] = expected_due - 0.01
        assert poller.run_cycle().feeds == []
        now[0] = expected_due
        assert poller.run_cycle().feeds != []  # due at the interval or earlier
        assert expected_due <= t0 + 60
