"""Scheduling policy (pure): when a feed is due again.

After a success the feed's interval (shortened a little at random, so polls
spread without any new item waiting longer than the interval), raised to
what the publisher asks for (RSS <ttl>, Cache-Control max-age; at most a
day). After a failure an exponential backoff from 5 minutes up to a day (a
410 waits a month); a suspended feed is tried daily. A configured interval
that became shorter since the next check was set brings it forward.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.config import Config, FeedConfig
from bot.models import FeedError
from bot.records import FeedRow

BACKOFF_START = 300.0  # first retry of a failing feed: 5 minutes, doubling
BACKOFF_CAP = 86400.0  # never wait more than a day
GONE_RECHECK = 30 * 86400.0  # a 410 feed is not polled again for a month
MAX_PUBLISHER_INTERVAL = 86400.0  # <ttl>/max-age never push a check beyond a day
INTERVAL_WITH_JITTER = 1.25  # a wait set by the interval is at most this much of it
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)", re.IGNORECASE)


def cache_max_age(headers: Mapping[str, str]) -> float | None:
    """`Cache-Control: max-age=N` in seconds, if the server sent one."""
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    return float(match.group(1)) if match else None


def feed_interval(feed: FeedConfig, config: Config) -> float:
    """How often the feed is checked: its own `interval`, else the default."""
    return feed.interval or config.settings.interval


def next_check_after_success(
    feed: FeedConfig,
    config: Config,
    ttl_seconds: int | None,
    now: float,
    jitter: float,
    headers: Mapping[str, str] | None = None,
) -> float:
    """The feed's interval shortened by `jitter` (a fraction: polls are spread
    by checking a little EARLY, so a new item never waits longer than the
    interval), raised (never above a day) to what the publisher asked for with
    RSS <ttl> or Cache-Control max-age; a publisher's wait is kept exactly."""
    interval = feed_interval(feed, config) * (1.0 - min(max(jitter, 0.0), 1.0))
    asked = [float(ttl_seconds)] if ttl_seconds else []
    max_age = cache_max_age(headers or {})
    if max_age:
        asked.append(max_age)
    if asked:
        interval = max(interval, min(max(asked), MAX_PUBLISHER_INTERVAL))
    return now + interval


def next_check_after_failure(
    feed: FeedConfig, config: Config, failures: int, error: FeedError, now: float
) -> float:
    if error.gone:
        return now + GONE_RECHECK
    interval = feed_interval(feed, config)
    # The exponent is capped: 2 ** 1024 no longer fits in a float, and a feed
    # that has been down for years (or polled by cron every minute) gets there.
    doublings = min(max(0, failures - 1), 30)
    delay = min(BACKOFF_CAP, max(interval, BACKOFF_START * 2**doublings))
    if error.retry_after:
        delay = max(delay, min(BACKOFF_CAP, error.retry_after))
    return now + delay


def failure_change(row: FeedRow, error: FeedError) -> str | None:
    """How this failure changes the feed's state, in words for the log, or
    None when it fails the same way as last time (just another retry)."""
    if not row.consecutive_failures:
        return "is failing"
    if row.last_error_kind != error.kind:
        return f"now fails differently (was: {row.last_error_kind})"
    return None


def suspended_next_check(now: float) -> float:
    """A suspended feed is still tried, at the capped backoff rate (daily)."""
    return now + BACKOFF_CAP


def effective_next_check(feed: FeedConfig, row: FeedRow, config: Config) -> float:
    """The stored next check, brought forward when the configured interval
    has become shorter since it was set (SIGHUP or restart with a new
    feeds.yaml): the wait shrinks in proportion. A wait that a publisher
    asked for (<ttl>, max-age) or a failure backoff stays as it is."""
    interval = feed_interval(feed, config)
    before, last = row.check_interval, row.last_success_at
    if not before or interval >= before or last is None or row.consecutive_failures:
        return row.next_check_at
    wait = row.next_check_at - last
    if wait > before * INTERVAL_WITH_JITTER + 1.0:
        return row.next_check_at  # longer than the interval: the publisher's wish
    return min(row.next_check_at, last + wait * interval / before)
