"""When a feed is checked next: interval, publisher hints, per-host limits."""

from __future__ import annotations

import threading
import time

import pytest

from bot.config import parse_config
from bot.hostlimit import HostLimiter
from bot.poll import cache_max_age, next_check_after_success

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


def test_host_limiter_caps_concurrency_per_host() -> None:
    limiter = HostLimiter(per_host=2)
    active: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}
    lock = threading.Lock()

    def fetch(host: str) -> None:
        with limiter.slot(f"https://{host}.example/feed"):
            with lock:
                active[host] += 1
                peak[host] = max(peak[host], active[host])
            time.sleep(0.05)
            with lock:
                active[host] -= 1

    threads = [threading.Thread(target=fetch, args=(h,)) for h in "ab" * 5]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == {"a": 2, "b": 2}
