"""Failing feeds: backoff, Retry-After, 410, suspension with one notice each way."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

import pytest
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.commands import CommandContext, feed_health, watch_feeds
from bot.config import Config, parse_config
from bot.fetch import Fetcher, FetchPolicy
from bot.messages import NOTICE
from bot.models import FeedError
from bot.poll import CycleReport, Poller
from bot.reply import render
from bot.schedule import BACKOFF_CAP, BACKOFF_START, next_check_after_failure
from bot.store import Store
from bot.wiring import config_terms

T0 = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make_config(url: str, other: str, threshold: int = 3, interval: str = "10m") -> Config:
    return parse_config(
        f"""
settings:
  interval: {interval}
  failure_threshold: {threshold}
  allow_networks: [127.0.0.0/8]
feeds:
  - url: {url}
    name: Flaky
  - url: {other}
    name: Steady
    tags: [steady]
watches:
  - channel: C0AAAAAAAA1
    terms: [tariff]
  - channel: C0BBBBBBBB2
    terms: [tariff]
    feeds: [steady]
  - channel: discord:$HOOK
    terms: [tariff]
    feeds: [Flaky]
""",
        "feeds.yaml",
    )


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))) as f:
        yield f


def notices(store: Store) -> list[tuple[str, str]]:
    return [
        (m.channel, m.payload["text"])
        for m in store.outbox.in_state("pending", 100)
        if m.kind == NOTICE
    ]


def test_backoff_doubles_from_5_minutes_to_a_day() -> None:
    # (never sooner than the feed's own interval: 1m here)
    config = make_config("https://a.example/f", "https://b.example/f", interval="1m")
    feed = config.feeds[0]
    err = FeedError("http_5xx", "boom")
    delays = [next_check_after_failure(feed, config, n, err, 0.0) for n in range(1, 12)]
    assert delays[:4] == [BACKOFF_START, 600.0, 1200.0, 2400.0]
    assert max(delays) == BACKOFF_CAP
    assert delays == sorted(delays)


def test_backoff_stays_capped_after_any_number_of_failures() -> None:
    # 2 ** 1024 does not fit in a float: a feed failing for years (or polled
    # by cron every minute) must still get a next check, not an OverflowError.
    config = make_config("https://a.example/f", "https://b.example/f")
    feed, err = config.feeds[0], FeedError("connect", "refused")
    for failures in (1024, 1025, 5000, 10**30):
        assert next_check_after_failure(feed, config, failures, err, 0.0) == BACKOFF_CAP


def test_retry_after_and_gone() -> None:
    config = make_config("https://a.example/f", "https://b.example/f")
    feed = config.feeds[0]
    slow_down = FeedError("http_429", "wait", retry_after=7200.0)
    assert next_check_after_failure(feed, config, 1, slow_down, 0.0) == 7200.0
    absurd = FeedError("http_503", "wait", retry_after=10 * 86400.0)
    assert next_check_after_failure(feed, config, 1, absurd, 0.0) == BACKOFF_CAP
    gone = FeedError("gone", "gone", gone=True)
    assert next_check_after_failure(feed, config, 1, gone, 0.0) > BACKOFF_CAP


def test_suspension_and_recovery_notify_once(
    db_url: str, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set("/flaky.xml", b"oops", status=500, content_type="text/plain")
    entry = FeedEntry(title="x", link="https://n.example/1", published=datetime.now(UTC))
    feed_server.set("/steady.xml", rss([entry]))
    flaky, steady = feed_server.url("/flaky.xml"), feed_server.url("/steady.xml")
    config = make_config(flaky, steady, threshold=3)
    clock = Clock()
    with Store(db_url) as store:
        store.terms.sync_config(config_terms(config), T0)
        poller = Poller(config, store, fetcher, clock=clock)
        for round_ in range(1, 6):
            report = poller.run_cycle(all_feeds=True)
            by_url = {f.url: f for f in report.feeds}
            assert by_url[flaky].error_kind == "http_5xx"
            assert by_url[steady].status in ("ok", "unchanged")
            row = store.feeds.get(flaky)
            assert row is not None and row.consecutive_failures == round_
            if round_ < 3:
                assert row.suspended_at is None
                assert notices(store) == []
            else:
                assert row.suspended_at is not None
                assert row.next_check_at >= clock.now + BACKOFF_CAP
            clock.now += 3600
        sent = notices(store)
        # One notice per channel that watches the flaky feed, not for the other.
        assert sorted(ch for ch, _ in sent) == ["C0AAAAAAAA1", "discord:$HOOK"]
        assert all("Flaky" in text and "suspended" in text for _, text in sent)
        row = store.feeds.get(flaky)
        assert row is not None
        assert feed_health(row).startswith("suspended since")
        ctx = CommandContext(store=store, config=lambda: config)
        assert "suspended" in render(watch_feeds(ctx), "cli")
        # Not due again within the day, unless --all.
        assert flaky not in [f.url for f, _ in poller.due_feeds(clock.now, all_feeds=False)]

        feed_server.set("/flaky.xml", rss([entry]))
        poller.run_cycle(all_feeds=True)
        poller.run_cycle(all_feeds=True)
        texts = [text for _, text in notices(store)]
        assert len(texts) == 4
        assert sum("works again" in t for t in texts) == 2
        row = store.feeds.get(flaky)
        assert row is not None and row.suspended_at is None and row.consecutive_failures == 0
        assert feed_health(row).startswith("ok")


def test_410_marks_gone_without_suspension(
    db_url: str, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set("/flaky.xml", b"", status=410, content_type="text/plain")
    feed_server.set("/steady.xml", rss([]))
    config = make_config(feed_server.url("/flaky.xml"), feed_server.url("/steady.xml"), 1)
    clock = Clock()
    with Store(db_url) as store:
        poller = Poller(config, store, fetcher, clock=clock)
        poller.run_cycle(all_feeds=True)
        row = store.feeds.get(feed_server.url("/flaky.xml"))
        assert row is not None and row.gone and row.suspended_at is None
        assert "gone" in feed_health(row)
        clock.now += 40 * 86400
        due = [f.url for f, _ in poller.due_feeds(clock.now, all_feeds=False)]
        assert feed_server.url("/flaky.xml") not in due
        assert notices(store) == []


def test_retry_after_header_sets_next_check(
    db_url: str, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set(
        "/flaky.xml", b"", status=429, content_type="text/plain", headers={"Retry-After": "5000"}
    )
    feed_server.set("/steady.xml", rss([]))
    config = make_config(feed_server.url("/flaky.xml"), feed_server.url("/steady.xml"))
    clock = Clock()
    with Store(db_url) as store:
        Poller(config, store, fetcher, clock=clock).run_cycle(all_feeds=True)
        row = store.feeds.get(feed_server.url("/flaky.xml"))
        assert row is not None
        assert row.last_error_kind == "http_429"
        assert row.next_check_at == pytest.approx(T0 + 5000, abs=1)

    assert timedelta(seconds=BACKOFF_CAP).days == 1


def test_fetcher_shutdown_mid_cycle_ends_the_cycle_without_blaming_feeds(
    db_url: str,
    feed_server: FeedServer,
) -> None:
    urls = [feed_server.url(f"/slow{i}.xml") for i in range(6)]
    for i in range(6):
        feed_server.set(f"/slow{i}.xml", rss([]), delay=3.0)
    config = make_config(urls[0], urls[1])
    config = replace(config, feeds=[replace(config.feeds[0], url=u) for u in urls])
    policy = FetchPolicy(timeout=10.0, allow_networks=(ip_network("127.0.0.0/8"),))
    with Store(db_url) as store, Fetcher(policy, per_host=2) as fetcher:
        poller = Poller(config, store, fetcher, clock=Clock())
        reports: list[CycleReport] = []
        cycle = threading.Thread(target=lambda: reports.append(poller.run_cycle(all_feeds=True)))
        cycle.start()
        time.sleep(0.5)  # two fetches in flight, four waiting for a slot
        fetcher.close()
        cycle.join(5)
        assert not cycle.is_alive()
        assert [f.status for f in reports[0].feeds] == ["cancelled"] * 6
        assert reports[0].failed == 0
        for url in urls:
            row = store.feeds.get(url)
            assert row is not None and row.consecutive_failures == 0 and row.last_error is None
