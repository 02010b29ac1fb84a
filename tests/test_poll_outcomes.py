"""bot/poll.py: what a cycle reports beyond its alerts. Matching items held
back (too old, undated on a first poll) are counted, feeds can be processed
in config order for a reproducible cycle, and a failure is news for the log
only when the feed's state changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.config import parse_config
from bot.decide import UNDATED_ON_FIRST_POLL
from bot.fetch import Fetcher, FetchPolicy
from bot.models import FeedError
from bot.poll import Poller
from bot.schedule import failure_change
from bot.service import degraded_by
from bot.store import FeedRow, Store

CHANNEL = "C0OUTCOME01"
NOW = datetime.now(UTC)
POLICY = FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))


def test_matching_items_that_may_not_alert_are_counted_by_reason(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.set(
        "/wire.xml",
        rss(
            [
                FeedEntry(
                    "Lumber tariff talks resume",
                    link="https://news.example/1",
                    published=NOW - timedelta(hours=1),
                ),
                FeedEntry(
                    "Tariff history: the 1930 act",
                    link="https://news.example/2",
                    published=NOW - timedelta(days=30),
                ),
                FeedEntry("Tariff glossary", link="https://news.example/3"),  # undated
                FeedEntry(
                    "Oil slips", link="https://news.example/4", published=NOW - timedelta(days=30)
                ),  # too old, but no match
            ]
        ),
    )
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/wire.xml")],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
        max_age="2d",
    )
    result = run_cli("--config", str(config), "--db", db_url, "poll", "--once")
    assert result.code == 0, result.err
    assert result.out.count("== alert -> ") == 1
    assert (
        f"matched but not alerted: 1 older than max_age, 1 {UNDATED_ON_FIRST_POLL}\n" in result.out
    )


def test_a_cycle_in_order_processes_feeds_in_config_order(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    # The first feed answers last: as-they-finish order differs from config order.
    feed_server.set("/slow.xml", rss([], title="Slow"), delay=0.4)
    for name in ("a", "b", "c"):
        feed_server.set(f"/{name}.xml", rss([], title=name.upper()))
    paths = ["/slow.xml", "/a.xml", "/b.xml", "/c.xml"]
    config = parse_config(
        "settings: {allow_networks: [127.0.0.0/8]}\nfeeds:\n"
        + "".join(f"  - url: {feed_server.url(p)}\n" for p in paths),
        "feeds.yaml",
    )
    urls = [feed_server.url(p) for p in paths]
    with Store(db_url) as store, Fetcher(POLICY) as fetcher:
        finished = Poller(config, store, fetcher).run_cycle(all_feeds=True)
        ordered = Poller(config, store, fetcher).run_cycle(all_feeds=True, in_order=True)
    assert [f.url for f in finished.feeds][-1] == urls[0]
    assert [f.url for f in ordered.feeds] == urls


def feed_row(failures: int, kind: str | None) -> FeedRow:
    return FeedRow(
        id=1, url="https://feeds.example/wire.xml", title=None, etag=None, last_modified=None,
        body_hash=None, first_polled_at=None, last_polled_at=None, last_success_at=None,
        last_error=None if kind is None else "an error", last_error_kind=kind,
        last_error_at=None, consecutive_failures=failures, next_check_at=0.0, gone=False,
        suspended_at=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("failures", "last_kind", "kind", "change"),
    [
        (0, None, "http_500", "is failing"),
        (0, "timeout", "http_500", "is failing"),  # an old error from before a recovery
        (1, "http_500", "http_500", None),  # a retry failing the same way
        (7, "http_500", "http_500", None),
        (3, "http_500", "timeout", "now fails differently (was: http_500)"),
    ],
)
def test_failure_change(
    failures: int, last_kind: str | None, kind: str, change: str | None
) -> None:
    error = FeedError(kind, "message")
    assert failure_change(feed_row(failures, last_kind), error) == change


@pytest.mark.parametrize(
    ("counts", "reasons"),
    [
        ({"feeds_failing": 0, "alerts_dead": 0}, []),
        ({"feeds_failing": 2, "alerts_dead": 0}, ["feeds_failing"]),
        ({"feeds_failing": 0, "alerts_dead": 1}, ["alerts_dead"]),
        (
            {"feeds_failing": 1, "alerts_dead": 3, "alerts_pending": 9},
            ["feeds_failing", "alerts_dead"],
        ),
        ({}, []),  # the database could not be read: unhealthy, not degraded
    ],
)
def test_degraded_by(counts: dict[str, int], reasons: list[str]) -> None:
    assert degraded_by(counts) == reasons
