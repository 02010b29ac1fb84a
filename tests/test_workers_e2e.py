"""Several workers on one PostgreSQL database, end to end.

Real `newshound run` subprocesses share a fresh schema, poll loopback feeds
(tests/feedserver.py) and post to the fake Slack (tests/fakeslack.py):

- together they poll each feed once per interval, never early, and every
  alert arrives once;
- workers killed with SIGKILL at random moments (mid-cycle, mid-delivery)
  and restarted lose no alert and duplicate none;
- the per-channel budget of a cycle (`max_alerts_per_poll`) holds across
  workers: two pollers sharing one cycle queue that many single alerts in
  all, and one digest with the rest.

The shortest interval a config may set is a minute, too long to wait for
several times here, so the tests make time pass for the schedule: every
feed's stored next check is moved back by most of an interval at once (as
if that much time had gone by), and the request log shows whether the
workers then poll each feed once, on time, and not before it is due.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import REPO, write_config
from fakeslack import FakeSlack, Fault, outbox_id_of
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from pg_schema import postgres_schema
from service_helpers import free_port, request, wait_for

from bot.config import load_config
from bot.fetch import Fetcher, FetchPolicy
from bot.messages import ALERT, DIGEST
from bot.poll import Poller
from bot.service import JITTER
from bot.store import PENDING, SENDING, SENT, Store
from bot.wiring import mirror_config

CHANNEL = "C0WORKERS01"
INTERVAL = 60.0  # the shortest a config allows
TICK = 0.2  # NEWSHOUND_TICK of the workers


@pytest.fixture
def database() -> Iterator[str]:
    yield from postgres_schema("workers")


# -- workers -----------------------------------------------------------------


class Worker:
    """One `newshound run` on the shared database, leader of its own process
    group so that its parser processes can be cleaned up after a SIGKILL."""

    def __init__(self, config: Path, location: str, slack: FakeSlack, log_dir: Path) -> None:
        self.config = config
        self.location = location
        self.log_dir = log_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
        self.env.update(
            {
                "SLACK_BOT_TOKEN": "xoxb-test-token",
                "SLACK_API_URL": slack.api_url,
                "NEWSHOUND_TICK": str(TICK),
                "NEWSHOUND_BIND": "127.0.0.1",
                "PYTHONFAULTHANDLER": "1",  # SIGABRT shows where a stuck worker is
            }
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started = 0
        self.answered = False  # its /healthz answered since it was (re)started

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        self.started += 1
        self.answered = False
        self.port = free_port()
        log = (self.log_dir / f"worker-{self.port}.log").open("wb")
        args = ["--config", str(self.config), "--db", self.location]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", *args, "run", "--port", str(self.port)],
            cwd=str(REPO),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_up(self) -> None:
        wait_for(self._up, timeout=30)

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log()}")
        return self.up()

    def up(self) -> bool:
        """Started up (its /healthz answers), without waiting for it."""
        if not self.answered:
            with contextlib.suppress(OSError):
                self.answered = request(self.base + "/healthz").status == 200
        return self.answered

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        path = self.log_dir / f"worker-{self.port}.log"
        return path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL to the worker alone (its parser processes are left to
        notice), then to whatever of its group is left."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._kill_group()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            self._kill_group()
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait()
            raise AssertionError(f"worker did not stop:\n{self.log()}") from None
        finally:
            self._kill_group()
        # Stopped before it had set up its signal handlers: SIGTERM's default.
        assert code == 0 or (code == -signal.SIGTERM and not self.answered), self.log()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def polls(self) -> int:
        """Feed polls this process counted (`newshound_feeds_polled`)."""
        text = request(self.base + "/metrics").body.decode()
        found = re.findall(r"^newshound_feeds_polled_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
        return int(sum(float(n) for n in found))


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """The test's workers, stopped afterwards (all of them, even if one fails to)."""
    started: list[Worker] = []
    yield started
    failures = []
    for worker in started:
        try:
            worker.stop()
        except AssertionError as exc:
            failures.append(str(exc))
    assert failures == []


# -- feeds and the schedule ---------------------------------------------------


class Feeds:
    """Feeds on the loopback server whose stories the test adds to."""

    def __init__(self, server: FeedServer, count: int, delay: float) -> None:
        self.server = server
        self.delay = delay
        self.paths = [f"/f{i}.xml" for i in range(count)]
        self.entries: dict[str, list[FeedEntry]] = {path: [] for path in self.paths}
        self.matching: set[str] = set()  # links of every story that must alert
        self.now = datetime.now(UTC)
        self.publish(0)

    @property
    def urls(self) -> list[str]:
        return [self.server.url(path) for path in self.paths]

    def publish(self, round_: int, per_feed: int = 1) -> None:
        """New stories in every feed: `per_feed` matching ones each, one that
        matches nothing, and a matching one two feeds share (one alert)."""
        published = self.now + timedelta(seconds=round_)
        shared = FeedEntry(
            title=f"Tariff shared report {round_}",
            link=f"https://news.example/shared/{round_}.html",
            guid=f"urn:shared:{round_}",
            published=published,
        )
        self.matching.add(str(shared.link))
        for i, path in enumerate(self.paths):
            fresh = [
                FeedEntry(
                    title=f"Tariff story {i}.{round_}.{n}",
                    link=f"https://news.example/{i}/{round_}/{n}.html",
                    published=published,
                )
                for n in range(per_feed)
            ]
            self.matching.update(str(e.link) for e in fresh)
            fresh.append(FeedEntry(title=f"Weather {i}.{round_}", published=published))
            if i < 2:
                fresh.append(shared)
            self.entries[path] = fresh + self.entries[path]
            self.server.set(path, rss(self.entries[path]), delay=self.delay)


def schedule(store: Store) -> dict[str, tuple[float, float]]:
    """url -> (last polled, next check) as the workers recorded them."""
    return {
        str(url): (float(polled or 0.0), float(next_check))
        for url, polled, next_check in store.db.rows(
            "SELECT url, last_polled_at, next_check_at FROM feeds"
        )
    }


def pass_time(store: Store, seconds: float) -> None:
    """As if `seconds` had passed for the schedule: every next check that much earlier."""
    store.db.execute("UPDATE feeds SET next_check_at = next_check_at - ?", (seconds,))


def wait_polled_since(store: Store, before: dict[str, tuple[float, float]], timeout: float) -> None:
    """Until every feed has a poll recorded after the ones in `before`."""

    def all_polled() -> bool:
        now = schedule(store)
        return all(now[url][0] > polled for url, (polled, _) in before.items())

    wait_for(all_polled, timeout=timeout, interval=0.05)


def wait_all_sent(store: Store, timeout: float) -> dict[str, int]:
    def settled() -> dict[str, int] | None:
        counts = store.outbox.counts()
        return counts if set(counts) == {SENT} else None

    return wait_for(settled, timeout=timeout, interval=0.1)


# -- what Slack got ------------------------------------------------------------


def posted_links(slack: FakeSlack) -> Counter[str]:
    """How often each story link appears in the alerts and digests the channel got."""
    seen: Counter[str] = Counter()
    for message in slack.posts(CHANNEL):
        if message.get("thread_ts"):
            continue  # a follow-up names stories that were alerted already
        blocks = message.get("blocks")
        text = blocks if isinstance(blocks, str) else json.dumps(blocks)
        seen.update(re.findall(r"<(https://news\.example/[^|>]+)\|", text))
    return seen


def assert_each_alerted_once(slack: FakeSlack, store: Store, feeds: Feeds) -> None:
    posted = Counter(slack.posted_outbox_ids())
    twice = [i for i, n in posted.items() if n > 1]
    assert twice == [], [store.outbox.get(i) for i in twice]  # no message posted twice
    sent = {int(r[0]) for r in store.db.rows("SELECT id FROM outbox WHERE state = ?", (SENT,))}
    assert set(posted) == sent
    links = posted_links(slack)
    repeated = sorted(link for link, n in links.items() if n > 1)
    assert repeated == [], story_messages(slack, store, repeated)  # no story twice
    assert sorted(feeds.matching - set(links)) == []  # nothing lost
    assert set(links) == feeds.matching  # and nothing else
    alerts = store.db.rows("SELECT channel, item_id FROM alerts")
    assert len(alerts) == len(set(alerts)) == len(feeds.matching)


def story_messages(slack: FakeSlack, store: Store, links: list[str]) -> dict[str, Any]:
    """For a failure message: which posts and stored stories carry these links."""
    found: dict[str, Any] = {}
    for link in links:
        posts = [
            (outbox_id_of(m), m["ts"], m.get("text"))
            for m in slack.posts(CHANNEL)
            if link in json.dumps(m.get("blocks"))
        ]
        items = store.db.rows(
            "SELECT i.id, i.feed_id, i.first_seen_at, a.outbox_id, o.kind, o.cycle_key "
            "FROM items i LEFT JOIN alerts a ON a.item_id = i.id "
            "LEFT JOIN outbox o ON o.id = a.outbox_id WHERE i.link = ?",
            (link,),
        )
        found[link] = {"posts": posts, "items": items}
    return found


# -- 1. polling shared, once per interval ---------------------------------------


@pytest.mark.slow
def test_workers_poll_each_feed_once_per_interval_and_alert_once(
    tmp_path: Path, database: str, feed_server: FeedServer, slack: FakeSlack, workers: list[Worker]
) -> None:
    """Three workers, nine feeds, four intervals. Each interval the schedule
    is moved on by `step` = 95 % of the interval, so with the 10 %
    earlier-only jitter each feed falls due somewhere from at once to a few
    seconds later: the feeds come due at different ticks of the workers."""
    feeds = Feeds(feed_server, 9, delay=0.03)
    config = write_config(
        tmp_path / "feeds.yaml",
        feeds.urls,
        [{"channel": CHANNEL, "terms": ["tariff"]}],
        interval="1m",
        max_alerts_per_poll=1000,
    )
    workers.extend(Worker(config, database, slack, tmp_path) for _ in range(3))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_up()
    step = 0.95 * INTERVAL
    wall_minus_monotonic = time.time() - time.monotonic()
    rounds = 3
    due: list[dict[str, float]] = []  # per interval: url -> when it fell due (wall clock)
    recorded: list[dict[str, tuple[float, float]]] = []
    with Store(database) as store:
        wait_for(lambda: len(schedule(store)) == len(feeds.paths), timeout=10)
        wait_polled_since(store, {url: (0.0, 0.0) for url in feeds.urls}, timeout=20)
        time.sleep(3 * TICK)
        for round_ in range(1, rounds + 1):
            feeds.publish(round_)
            before = schedule(store)
            recorded.append(before)
            pass_time(store, step)
            moved = time.time()  # a feed due before this fell due now
            due.append({url: max(moved, nxt - step) for url, (_, nxt) in before.items()})
            wait_polled_since(store, before, timeout=20)
            time.sleep(3 * TICK)  # a second poll of a feed would show up now
        recorded.append(schedule(store))
        wait_all_sent(store, timeout=20)
        polls_by_worker = [worker.polls() for worker in workers]
        assert_each_alerted_once(slack, store, feeds)

    by_feed: dict[str, list[float]] = {url: [] for url in feeds.urls}
    for r in feed_server.requests:
        by_feed[feed_server.url(r.path)].append(r.at + wall_minus_monotonic)
    assert sum(polls_by_worker) == len(feed_server.requests)  # each fetch by one worker
    print(f"polls by worker: {polls_by_worker}")
    late: list[float] = []
    for url, times in by_feed.items():
        assert len(times) == rounds + 1, (url, times)  # once per interval, in total
        for round_ in range(1, rounds + 1):
            fell_due = due[round_ - 1][url]
            late.append(times[round_] - fell_due)
            assert fell_due - 0.05 <= times[round_] <= fell_due + 2.0, (url, round_)
            # On the schedule's clock (moved on by `step` each interval) no two
            # requests are closer than the interval less its jitter.
            gap = times[round_] + step - times[round_ - 1]
            assert gap >= (1 - JITTER) * INTERVAL - 0.05, (url, round_, gap)
    print(f"polled after falling due: {min(late):.2f}..{max(late):.2f} s")
    # Each poll set the next check a jittered interval ahead: never later,
    # at most 10 % earlier.
    waits = [nxt - polled for snapshot in recorded for polled, nxt in snapshot.values()]
    assert all((1 - JITTER) * INTERVAL <= w <= INTERVAL for w in waits), waits
    assert max(waits) - min(waits) > 0.5  # and the jitter does spread them


# -- 2. kill -9 ------------------------------------------------------------------


def busy_with(store: Store, pid: int) -> tuple[bool, bool]:
    """Whether the worker with this pid holds feeds (is polling them: claimed,
    not yet recorded) and whether it holds a message in `sending` (is posting it)."""
    polling = store.db.scalar(
        "SELECT count(*) FROM feeds WHERE lease_owner LIKE ? AND lease_until > ?",
        (f"%:{pid}:%", time.time()),
    )
    sending = store.db.scalar(
        "SELECT count(*) FROM outbox WHERE state = ? AND sending_owner LIKE ?",
        (SENDING, f"%/{pid}/%"),
    )
    return bool(polling), bool(sending)


@pytest.mark.slow
def test_workers_killed_at_random_lose_no_alert_and_duplicate_none(
    tmp_path: Path, database: str, feed_server: FeedServer, slack: FakeSlack, workers: list[Worker]
) -> None:
    """Three workers; each interval new stories appear and a worker is
    killed with SIGKILL after a random delay (mid-cycle, mid-delivery or
    idle), then restarted. Kills go on until enough of them landed in a
    cycle and in a delivery (at most ~20 s); then every matching story must
    have reached Slack exactly once, as a single alert or in a digest."""
    rng = random.Random(20)
    feeds = Feeds(feed_server, 6, delay=0.05)
    config = write_config(
        tmp_path / "feeds.yaml",
        feeds.urls,
        [{"channel": CHANNEL, "terms": ["tariff"]}],
        interval="1m",
        max_alerts_per_poll=4,
    )
    slack.fail_every("chat.postMessage", 1, Fault(delay=0.1))  # each post takes a while
    workers.extend(Worker(config, database, slack, tmp_path) for _ in range(3))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_up()
    kills = mid_poll = mid_post = 0
    with Store(database) as store:

        def busy(doing: int) -> list[Worker]:
            """Workers that are up and polling (0) or posting (1) right now."""
            return [w for w in workers if w.up() and busy_with(store, w.pid)[doing]]

        deadline = time.monotonic() + 20
        round_ = 0
        while time.monotonic() < deadline and (kills < 10 or min(mid_poll, mid_post) < 2):
            round_ += 1
            # Two of the three at work: a kill never leaves the others starving.
            wait_for(lambda: sum(w.up() for w in workers) >= 2, timeout=30)
            feeds.publish(round_, per_feed=2)
            pass_time(store, INTERVAL)
            # Some kills wait for a worker to be at work, the others come at any moment.
            doing = rng.choice([0, 1, None])
            if doing is not None:
                with contextlib.suppress(AssertionError):
                    wait_for(lambda: busy(doing), timeout=1.5, interval=0.01)  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.1 if doing is not None else 0.8))
            up = [w for w in workers if w.up()]  # one still starting up is spared
            chosen = busy(doing) if doing is not None else []
            victim = rng.choice(chosen or up)
            victim.kill()
            polling, posting = busy_with(store, victim.pid)  # what it left half-done
            kills += 1
            mid_poll += polling
            mid_post += posting
            victim.start()  # not waited for
        took = time.monotonic() - deadline + 20
        print(f"{kills} kills in {took:.1f}s: {mid_poll} mid-poll, {mid_post} mid-post")
        assert mid_poll >= 1 and mid_post >= 1  # the kills did land in the work
        # The last stories: every feed polled once more, everything delivered.
        before = schedule(store)
        pass_time(store, INTERVAL)
        wait_polled_since(store, before, timeout=20)
        wait_all_sent(store, timeout=30)
        for worker in workers:
            worker.stop()
        assert store.db.rows("SELECT id FROM outbox WHERE state <> ?", (SENT,)) == []
        kinds = Counter(str(r[0]) for r in store.db.rows("SELECT kind FROM outbox"))
        print(f"outbox: {dict(kinds)}; {len(slack.calls('conversations.history'))} lookups")
        assert kinds[DIGEST] >= 1  # budgets ran out, so digests were exercised too
        assert_each_alerted_once(slack, store, feeds)


# -- 3. one budget per cycle across workers ---------------------------------------------


def test_a_cycles_budget_and_digest_are_shared_by_the_workers_in_it(
    tmp_path: Path, database: str, feed_server: FeedServer
) -> None:
    """Two pollers (two workers: own ids, own connections) run the same
    cycle at once over twelve feeds with two new matching stories each.
    With `max_alerts_per_poll: 2` the channel gets two single alerts in all,
    not two per worker, and one digest with the other 22 stories."""
    now = datetime.now(UTC)
    paths = [f"/b{i}.xml" for i in range(12)]
    for i, path in enumerate(paths):
        entries = [
            FeedEntry(
                title=f"Tariff budget story {i}.{n}",
                link=f"https://news.example/b/{i}/{n}.html",
                published=now,
            )
            for n in range(2)
        ]
        feed_server.set(path, rss(entries), delay=0.05)
    config = load_config(
        write_config(
            tmp_path / "feeds.yaml",
            [feed_server.url(p) for p in paths],
            [{"channel": CHANNEL, "terms": ["tariff"]}],
            max_alerts_per_poll=2,
        )
    )
    started = time.time()
    together = threading.Barrier(2)

    def cycle_clock() -> Callable[[], float]:
        """The cycle's first reading waits for the other poller: both start
        the same cycle at the same moment (as aligned ticks make them)."""
        first = [True]

        def clock() -> float:
            if first[0]:
                first[0] = False
                together.wait(timeout=10)
                return started
            return time.time()

        return clock

    policy = FetchPolicy(timeout=5.0, allow_networks=(ip_network("127.0.0.0/8"),))
    with (
        Store(database) as first,
        Store(database) as second,
        Fetcher(policy) as fetch_a,
        Fetcher(policy) as fetch_b,
    ):
        mirror_config(config, first, time.time())  # the config's terms, as `run` stores them
        pollers = [
            Poller(config, store, fetcher, workers=1, worker=name, cycle_period=5.0, clock=clock)
            for store, fetcher, name, clock in (
                (first, fetch_a, "host-a:101:aa", cycle_clock()),
                (second, fetch_b, "host-b:202:bb", cycle_clock()),
            )
        ]
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(lambda p: p.run_cycle(), pollers))
        assert all(report.feeds for report in reports)  # both polled some of the feeds
        assert sorted(f.url for r in reports for f in r.feeds) == sorted(
            feed_server.url(p) for p in paths
        )
        assert sum(r.alerts for r in reports) == 24
        messages = first.db.rows(
            "SELECT id, kind, state FROM outbox WHERE channel = ? ORDER BY id", (CHANNEL,)
        )
        singles = [m for m in messages if m[1] == ALERT]
        digests = [m for m in messages if m[1] == DIGEST]
        assert len(singles) == 2 and len(digests) == 1, messages
        assert [m[2] for m in messages] == [PENDING] * 3  # the digest was finished
        (digest_id, _, _) = digests[0]
        assert len(first.outbox.digest_entries(digest_id)) == 22
        alerts = first.db.rows(
            "SELECT item_id, outbox_id FROM alerts WHERE channel = ?", (CHANNEL,)
        )
        assert len({item for item, _ in alerts}) == 24
        assert Counter(outbox for _, outbox in alerts) == {
            singles[0][0]: 1,
            singles[1][0]: 1,
            digest_id: 22,
        }
        assert first.outbox.assembling(DIGEST) == []
