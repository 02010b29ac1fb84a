"""When a feed is checked next: interval and publisher hints."""

from __future__ import annotations

import pytest

from bot.config import parse_config
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
