"""bot/worker.py and the store's leases: how workers on one database split
the feeds of a cycle and finish its digests, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from ipaddress import ip_network
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from feedgen import rss
from feedserver import FeedServer
from test_poll import tariff_stories

from bot.config import Config, load_config, parse_config
from bot.fetch import Fetcher, FetchPolicy
from bot.messages import DIGEST
from bot.poll import Poller
from bot.store import ASSEMBLING, PENDING, Store
from bot.wiring import config_stamp
from bot.worker import dead_here, worker_id

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
CHANNEL = "C0SHARE0001"
NOW = datetime.now(UTC)


def _postgres_schema() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_BASE, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "newshound.db")
    else:
        yield from _postgres_schema()


def config_for(urls: list[str], **settings: object) -> Config:
    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    return parse_config(
        "settings: {allow_networks: [127.0.0.0/8], fetch_timeout: 2s"
        + extra
        + "}\nfeeds:\n"
        + "".join(f"  - url: {url}\n" for url in urls)
        + f"watches:\n  - channel: {CHANNEL}\n    terms: [tariff]\n",
        "feeds.yaml",
    )


POLICY = FetchPolicy(timeout=2.0, allow_networks=(ip_network("127.0.0.0/8"),))


def test_a_feed_one_worker_holds_is_not_claimed_by_another_until_its_lease_ends(
    location: str,
) -> None:
    with Store(location) as store:
        store.feeds.sync(["http://feeds.example/a", "http://feeds.example/b"])
        ids = [row.id for row in store.feeds.all()]
        assert store.feeds.claim(ids, owner="host:1:a", now=100.0, until=200.0) == ids
        assert store.feeds.claim(ids, owner="host:2:b", now=150.0, until=250.0) == []
        # Its own claim is renewed; the lease runs out at 200.
        assert store.feeds.claim(ids[:1], owner="host:1:a", now=150.0, until=260.0) == ids[:1]
        assert store.feeds.claim(ids, owner="host:2:b", now=201.0, until=300.0) == ids[1:]
        # A recorded outcome ends the lease at once.
        store.feeds.record_failure(
            ids[0], now=210.0, kind="http", message="HTTP 500", next_check_at=220.0
        )
        assert store.feeds.claim(ids, owner="host:2:b", now=211.0, until=300.0) == ids
        store.feeds.release(ids, owner="someone else")  # not theirs: kept
        assert store.feeds.claim(ids, owner="host:3:c", now=212.0, until=300.0) == []
        store.feeds.release(ids, owner="host:2:b")
        assert store.feeds.claim(ids, owner="host:3:c", now=212.0, until=300.0) == ids


def test_a_dead_worker_on_this_host_is_recognised_by_its_missing_process() -> None:
    me = worker_id()
    host = socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert dead_here(f"{host}:{gone.stdout.strip()}:dead", me)
    assert dead_here(f"{host}:{os.getpid()}:earlier", me)  # our pid, an earlier process
    assert not dead_here(me, me)
    assert not dead_here(f"{host}:1:init", me)  # alive (pid 1 always is)
    assert not dead_here(f"elsewhere:{gone.stdout.strip()}:x", me)  # another host: lease only


def test_two_workers_polling_at_once_fetch_each_feed_once_and_alert_each_story_once(
    location: str, feed_server: FeedServer
) -> None:
    urls = []
    for i in range(40):
        feed_server.set(f"/f{i}.xml", rss(tariff_stories(f"f{i}", 3)), delay=0.02)
        urls.append(feed_server.url(f"/f{i}.xml"))
    config = config_for(urls, max_alerts_per_poll=1000)
    with (
        Store(location) as first,
        Store(location) as second,
        Fetcher(POLICY) as fetch_a,
        Fetcher(POLICY) as fetch_b,
    ):
        pollers = [
            Poller(config, first, fetch_a, workers=2, worker="host-a:1:a", cycle_period=60.0),
            Poller(config, second, fetch_b, workers=2, worker="host-b:2:b", cycle_period=60.0),
        ]
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(lambda p: p.run_cycle(), pollers))
        polled = [f.url for report in reports for f in report.feeds]
        assert sorted(polled) == sorted(urls)  # every feed, by exactly one worker
        assert all(report.feeds for report in reports)  # and both did some of the work
        counts = first.outbox.counts()
        alerts = first.db.rows("SELECT channel, item_id FROM alerts")
    fetched = [r.path for r in feed_server.requests]
    assert sorted(fetched) == sorted(f"/f{i}.xml" for i in range(40))
    # First read of a feed records what it carries without alerting; the
    # point here is that nothing was stored twice.
    assert len(alerts) == len(set(alerts))
    assert set(counts) <= {PENDING}


def test_a_cycles_digest_is_finished_only_when_its_last_worker_has_left(location: str) -> None:
    with Store(location) as store:
        config = config_for([])
        with Fetcher(POLICY) as fetcher:
            a = Poller(config, store, fetcher, worker="host-a:1:a", cycle_period=60.0)
            b = Poller(config, store, fetcher, worker="host-b:2:b", cycle_period=60.0)
            cycle = a.share.cycle_key(1_000_000.0)
            assert cycle == b.share.cycle_key(1_000_010.0)  # the same period: one cycle
            with store.transaction():
                digest = store.outbox.assembling_for(
                    f"digest:{CHANNEL}:{cycle}", CHANNEL, DIGEST, {"items": []}, cycle, 1e6
                )
                again = store.outbox.assembling_for(
                    f"digest:{CHANNEL}:{cycle}", CHANNEL, DIGEST, {"items": []}, cycle, 1e6
                )
            assert digest == again  # one digest per channel and cycle, whoever adds to it
            a.share.join(cycle, 1_000_000.0)
            b.share.join(cycle, 1_000_000.0)
            a.share.leave(cycle)
            assert b.finish_assembled(1_000_020.0) == (0, 0)  # b is still in the cycle
            assert store.outbox.get(digest).state == ASSEMBLING
            b.share.leave(cycle)
            assert a.finish_assembled(1_000_030.0) == (1, 0)
            finished = store.outbox.get(digest)
            assert finished.state == PENDING
            # The next cycle of the same channel opens a new digest.
            with store.transaction():
                later = store.outbox.assembling_for(
                    f"digest:{CHANNEL}:{cycle}x", CHANNEL, DIGEST, {"items": []}, cycle + "x", 1e6
                )
            assert later != digest


def test_a_killed_workers_cycle_is_finished_once_its_place_expires(location: str) -> None:
    with Store(location) as store, Fetcher(POLICY) as fetcher:
        config = config_for([])
        survivor = Poller(config, store, fetcher, worker="host-b:2:b", cycle_period=60.0)
        cycle = "every60s:1"
        with store.transaction():
            digest = store.outbox.assembling_for(
                f"digest:{CHANNEL}:{cycle}", CHANNEL, DIGEST, {"items": []}, cycle, 60.0
            )
        store.meta.join_cycle(cycle, "elsewhere:99:killed", until=500.0)
        assert survivor.finish_assembled(400.0) == (0, 0)  # its place still holds
        assert survivor.finish_assembled(501.0) == (1, 0)
        assert store.outbox.get(digest).state == PENDING


def test_status_lists_live_workers_and_flags_different_configs(
    location: str, tmp_path: Path
) -> None:
    config_path = write_config(
        tmp_path / "feeds.yaml",
        ["http://127.0.0.1:9/a.xml"],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
    )
    stamp = config_stamp(load_config(config_path))[:12]
    now = time.time()
    with Store(location) as store:
        store.meta.heartbeat("host-a:11:aa", host="host-a", pid=11, config_stamp=stamp, now=now)
        store.meta.heartbeat(
            "host-b:22:bb", host="host-b", pid=22, config_stamp="0ld0ld0ld0ld", now=now
        )
        store.meta.heartbeat(
            "host-c:33:cc", host="host-c", pid=33, config_stamp=stamp, now=now - 3600
        )
    result = run_cli("--config", str(config_path), "--db", location, "status")
    assert result.code == 0, result.err
    assert "Workers (2) (different configs: give every worker the same one):" in result.out
    assert f"host-a:11:aa  config {stamp} = this feeds.yaml" in result.out
    assert "host-b:22:bb  config 0ld0ld0ld0ld;" in result.out
    assert "host-c" not in result.out  # not heard from for an hour: not alive
    with Store(location) as store:
        store.meta.leave("host-b:22:bb")
    result = run_cli("--config", str(config_path), "--db", location, "status")
    assert "Workers (1):" in result.out
