"""Outbox delivery against fake Slack over real HTTP: order, shared rate
limits, 429s, 5xx bursts, dropped and slow connections, dead letters, crash
recovery, and a SIGKILL test over real subprocesses."""

from __future__ import annotations

import itertools
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli, write_config
from fakeslack import FakeSlack, Fault
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.deliver import IN_FLIGHT, RETRY_CAP, RETRY_START, Deliverer, retry_delay
from bot.messages import ALERT, DIGEST
from bot.sinks.slack import CLOCK_SKEW, SlackSink
from bot.store import DEAD, PENDING, SENDING, SENT, Store

A, B, C = "C0AAAAAAAA1", "C0BBBBBBBB2", "C0CCCCCCCC3"
POST = "chat.postMessage"
HISTORY = "conversations.history"


def alert(n: int) -> dict[str, object]:
    return {
        "title": f"Story {n}",
        "link": f"https://news.example/{n}",
        "source": "Example",
        "published": 1_760_000_000.0,
        "terms": ["tariff"],
        "snippet": [["new ", False], ["tariff", True], [" story", False]],
    }


def sink_for(slack: FakeSlack, timeout: float = 5.0) -> SlackSink:
    return SlackSink("xoxb-test", slack.api_url, timeout=timeout)


def deliverer(store: Store, sink: SlackSink, **kwargs) -> Deliverer:
    kwargs.setdefault("send_interval", 0.0)
    return Deliverer(store, lambda channel: sink, **kwargs)


def queue(store: Store, channel: str, count: int, kind: str = ALERT) -> list[int]:
    ids = []
    for n in range(count):
        payload = alert(n) if kind == ALERT else {"items": [alert(n)]}
        ids.append(store.outbox.add(channel, kind, payload, time.time()))
    return ids


def post_times(slack: FakeSlack, channel: str | None = None) -> list[float]:
    return [c.at for c in slack.calls(POST) if channel is None or c.args.get("channel") == channel]


def assert_each_posted_once(slack: FakeSlack, ids: list[int]) -> None:
    assert sorted(slack.posted_outbox_ids()) == sorted(ids)


# -- order, rate, 429 ------------------------------------------------------------


def test_oldest_first_per_channel_and_sent_with_ts(store: Store, slack: FakeSlack):
    ids = queue(store, A, 3) + queue(store, B, 2)
    report = deliverer(store, sink_for(slack)).deliver()
    assert report.sent == 5
    assert [m["text"].split(" (")[0] for m in slack.posts(A)] == ["Story 0", "Story 1", "Story 2"]
    for message in slack.posts():
        row = store.outbox.get(message["metadata"]["event_payload"]["outbox_id"])
        assert row is not None and row.state == SENT and row.remote_id == message["ts"]
    assert_each_posted_once(slack, ids)


def test_slack_429_waits_retry_after_before_any_further_post(store: Store, slack: FakeSlack):
    ids = queue(store, A, 2) + queue(store, B, 2)
    slack.fail_next(POST, Fault(status=429, error="ratelimited", retry_after=0.4))
    report = deliverer(store, sink_for(slack)).deliver(max_wait=5)
    assert report.sent == 4
    limited, *rest = post_times(slack)
    assert len(rest) == 4 and min(rest) - limited >= 0.4  # no call to the method before it elapsed
    assert [m["text"].split(" (")[0] for m in slack.posts(A)] == ["Story 0", "Story 1"]
    assert_each_posted_once(slack, ids)


def test_slack_429_with_retry_after_nan_waits_a_second(store: Store, slack: FakeSlack):
    # NaN used to reach the database as the gate time: NOT NULL constraint
    # failed, and delivery (so `poll` and `run`) stopped with an internal error.
    ids = queue(store, A, 1)
    slack.fail_next(POST, Fault(status=429, error="ratelimited", retry_after=float("nan")))
    assert deliverer(store, sink_for(slack)).deliver(max_wait=5).sent == 1
    limited, resent = post_times(slack)
    assert resent - limited >= 1.0
    assert_each_posted_once(slack, ids)


def test_429_is_persisted_for_another_sender(
    db_url: str, tmp_path: Path, store: Store, slack: FakeSlack
):
    ids = queue(store, A, 1)
    slack.fail_next(POST, Fault(status=429, error="ratelimited", retry_after=0.6))
    first = deliverer(store, sink_for(slack)).deliver(max_wait=0)  # gives up waiting at once
    assert first.sent == 0
    with Store(db_url) as other:  # a second process / a restart
        assert deliverer(other, sink_for(slack)).deliver(retry_now=True, max_wait=5).sent == 1
    limited, resent = post_times(slack)
    assert resent - limited >= 0.6
    assert_each_posted_once(slack, ids)


def test_per_channel_rate_measured_at_the_destination(store: Store, slack: FakeSlack):
    ids = queue(store, A, 4) + queue(store, B, 4) + queue(store, C, 4)
    deliverer(store, sink_for(slack), send_interval=0.2).deliver(max_wait=5)
    firsts = []
    for channel in (A, B, C):
        times = post_times(slack, channel)
        assert len(times) == 4
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.2
        firsts.append(times[0])
    assert max(firsts) - min(firsts) < 0.2  # channels do not wait for each other
    assert_each_posted_once(slack, ids)


def test_two_senders_share_the_rate_and_never_duplicate(
    db_url: str, tmp_path: Path, slack: FakeSlack
):
    path = db_url
    with Store(path) as setup:
        ids = queue(setup, A, 6) + queue(setup, B, 6)

    def run() -> None:
        with Store(path) as own:
            deliverer(own, sink_for(slack), send_interval=0.1).deliver(max_wait=5)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_each_posted_once(slack, ids)
    for channel in (A, B):
        times = post_times(slack, channel)
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.1


# -- transient failures ------------------------------------------------------------


def test_500_burst_stays_pending_then_sent_once(
    db_url: str, tmp_path: Path, store: Store, slack: FakeSlack
):
    ids = queue(store, A, 1)
    slack.fail_next(POST, *[Fault(status=500, error="internal_error")] * 3)
    d = deliverer(store, sink_for(slack))
    for _ in range(3):
        assert d.deliver(retry_now=True).failed == 1
    with Store(db_url) as restarted:  # stays pending across restarts
        row = restarted.outbox.get(ids[0])
        assert row is not None and row.state == PENDING and row.attempts == 3
        assert row.verify_since is not None  # a 500 may hide a posted message
        assert deliverer(restarted, sink_for(slack)).deliver(retry_now=True).sent == 1
    assert slack.calls(HISTORY)  # looked before resending
    assert_each_posted_once(slack, ids)


def test_backoff_is_exponential_jittered_and_bounded(store: Store, slack: FakeSlack):
    rng = random.Random(7)
    for attempts in range(1, 20):
        nominal = min(RETRY_CAP, RETRY_START * 2 ** (attempts - 1))
        assert nominal / 2 <= retry_delay(attempts, rng) <= nominal
    (message_id,) = queue(store, A, 1)
    now = [time.time()]
    d = deliverer(store, sink_for(slack), clock=lambda: now[0], rng=rng)
    slack.fail_next(POST, *[Fault(status=503)] * 3)
    waits = []
    for _ in range(3):
        d.deliver()
        row = store.outbox.get(message_id)
        assert row is not None
        waits.append(row.next_attempt_at - now[0])
        d.deliver()  # not due yet: no call
        now[0] = row.next_attempt_at
    assert len(slack.calls(POST)) == 3
    assert 2.5 <= waits[0] <= 5 and 5 <= waits[1] <= 10 and 10 <= waits[2] <= 20


def test_backoff_after_very_many_attempts_stays_at_the_cap(store: Store, slack: FakeSlack):
    # A message retried hourly for weeks passes 1024 attempts; 2 ** 1024
    # does not fit in a float, and delivery must go on rather than crash.
    rng = random.Random(7)
    for attempts in (1024, 1025, 10**30):
        assert RETRY_CAP / 2 <= retry_delay(attempts, rng) <= RETRY_CAP
    (message_id,) = queue(store, A, 1)
    store.db.execute("UPDATE outbox SET attempts = 5000 WHERE id = ?", (message_id,))
    slack.fail_next(POST, Fault(status=503))
    now = time.time()
    assert deliverer(store, sink_for(slack), clock=lambda: now, rng=rng).deliver().failed == 1
    row = store.outbox.get(message_id)
    assert row is not None and row.state == PENDING and row.attempts == 5001
    assert now + RETRY_CAP / 2 <= row.next_attempt_at <= now + RETRY_CAP


def test_dropped_connections_retry_and_never_duplicate(store: Store, slack: FakeSlack):
    lost, accepted = queue(store, A, 1) + queue(store, B, 1)
    slack.fail_next(POST, Fault(drop=True), Fault(drop=True, accept=True))
    d = deliverer(store, sink_for(slack))
    assert d.deliver().failed == 2
    report = d.deliver(retry_now=True)
    assert report.sent == 2 and report.recovered == 1  # found in the history, not re-posted
    assert_each_posted_once(slack, [lost, accepted])


def test_slow_response_times_out_and_is_found_not_resent(store: Store, slack: FakeSlack):
    ids = queue(store, A, 1)
    slack.fail_next(POST, Fault(delay=1.0))  # Slack posts it but answers too late
    d = deliverer(store, sink_for(slack, timeout=0.3))
    started = time.monotonic()
    assert d.deliver().failed == 1
    assert time.monotonic() - started < 0.9
    assert d.deliver(retry_now=True).recovered == 1
    assert len(slack.calls(POST)) == 1
    assert_each_posted_once(slack, ids)


# -- permanent errors and head of line ---------------------------------------------------


def test_permanent_error_is_dead_and_other_channels_flow(store: Store, slack: FakeSlack):
    a1 = queue(store, A, 1)[0]
    others = queue(store, B, 2) + queue(store, A, 1)
    slack.fail_next(POST, Fault(error="channel_not_found"))
    report = deliverer(store, sink_for(slack)).deliver()
    assert report.dead == 1 and report.sent == 3
    row = store.outbox.get(a1)
    assert row is not None and row.state == DEAD and row.last_error == "channel_not_found"
    assert_each_posted_once(slack, others)


def test_unknown_error_gives_up_after_some_attempts(store: Store, slack: FakeSlack):
    ids = queue(store, A, 2)
    slack.fail_next(POST, *[Fault(error="something_new")] * 5)
    d = deliverer(store, sink_for(slack))
    for _ in range(4):
        assert d.deliver(retry_now=True).failed == 1
    report = d.deliver(retry_now=True)
    assert report.dead == 1 and report.sent == 1  # the channel moves on
    row = store.outbox.get(ids[0])
    assert row is not None and row.last_error == "something_new (after 5 attempts)"
    assert_each_posted_once(slack, ids[1:])


def test_dead_letters_show_in_status(db_url: str, tmp_path: Path, store: Store, slack: FakeSlack):
    queue(store, A, 1)
    slack.fail_next(POST, Fault(error="is_archived"))
    deliverer(store, sink_for(slack)).deliver()
    config = write_config(tmp_path / "feeds.yaml", [], [])
    status = run_cli("--config", str(config), "--db", db_url, "status")
    assert "1 dead" in status.out and "is_archived" in status.out


def test_retrying_head_holds_back_only_its_own_channel(store: Store, slack: FakeSlack):
    a1, a2 = queue(store, A, 2)
    b = queue(store, B, 2)
    slack.fail_next(POST, Fault(status=500))
    d = deliverer(store, sink_for(slack))
    d.deliver()
    assert slack.posts(A) == [] and len(slack.posts(B)) == 2  # A keeps its order, B flows
    d.deliver(retry_now=True)
    assert [m["metadata"]["event_payload"]["outbox_id"] for m in slack.posts(A)] == [a1, a2]
    assert_each_posted_once(slack, [a1, a2, *b])


def test_digest_follows_the_same_outbox_rules(store: Store, slack: FakeSlack):
    ids = queue(store, A, 1, kind=DIGEST)
    slack.fail_next(POST, Fault(status=429, error="ratelimited", retry_after=0.2))
    assert deliverer(store, sink_for(slack)).deliver(max_wait=5).sent == 1
    assert "1 more matching story this round" in slack.posts(A)[0]["text"]
    assert_each_posted_once(slack, ids)


# -- crash recovery --------------------------------------------------------------------


def dead_owner() -> str:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return f"{socket.gethostname()}/{int(proc.stdout)}/gone"


def claim(store: Store, message_id: int, owner: str, at: float | None = None) -> None:
    taken = store.outbox.claim(
        message_id, owner=owner, now=at or time.time(), gate_keys=[], hold={}
    )
    assert taken.row is not None


def test_interrupted_after_posting_is_found_not_resent(store: Store, slack: FakeSlack):
    (message_id,) = queue(store, A, 1)
    claim(store, message_id, dead_owner(), at=time.time() - IN_FLIGHT)
    sink = sink_for(slack)
    ts = sink.send(A, ALERT, alert(0), message_id)  # it arrived, then the sender died
    report = deliverer(store, sink).deliver()
    assert report.recovered == 1 and len(slack.calls(POST)) == 1
    row = store.outbox.get(message_id)
    assert row is not None and row.state == SENT and row.remote_id == ts


def test_interrupted_before_posting_is_sent_once(store: Store, slack: FakeSlack):
    (message_id,) = queue(store, A, 1)
    claim(store, message_id, dead_owner(), at=time.time() - IN_FLIGHT)
    assert deliverer(store, sink_for(slack)).deliver().sent == 1
    assert_each_posted_once(slack, [message_id])


def test_a_dead_senders_post_still_in_flight_is_waited_for_not_duplicated(
    store: Store, slack: FakeSlack
):
    """The sender died right after its request left: the request reaches
    Slack a moment later. A lookup at once would not find it and the message
    would go out twice; the orphan is looked for only once its attempt
    is old enough that anything it sent has arrived."""
    (message_id,) = queue(store, A, 1)
    claim(store, message_id, dead_owner())
    sink = sink_for(slack)
    late = threading.Timer(0.3, sink.send, (A, ALERT, alert(0), message_id))
    late.start()
    assert deliverer(store, sink).deliver(max_wait=0).sent == 0  # too soon to tell
    late.join()
    later = time.time() + IN_FLIGHT
    report = deliverer(store, sink, clock=lambda: later).deliver(max_wait=0)
    assert report.recovered == 1
    assert_each_posted_once(slack, [message_id])


def test_live_senders_message_is_left_alone_until_its_lease_ends(store: Store, slack: FakeSlack):
    fresh, stale = queue(store, A, 1) + queue(store, B, 1)
    live = f"{socket.gethostname()}/{__import__('os').getpid()}/other"
    claim(store, fresh, live)
    claim(store, stale, live, at=time.time() - 1000)
    deliverer(store, sink_for(slack)).deliver()
    row = store.outbox.get(fresh)
    assert row is not None and row.state == SENDING  # another sender is on it
    assert_each_posted_once(slack, [stale])


def test_history_lookup_starts_at_the_attempt_and_paginates(slack: FakeSlack):
    sink = sink_for(slack)
    before = time.time()
    ours = sink.send(A, ALERT, alert(1), 42)
    for n in range(450):  # a busy channel after our post: three pages
        slack.inject(A, {"text": f"chatter {n}"})
    assert sink.find_sent(A, 42, since=before) == ours
    calls = slack.calls(HISTORY)
    assert len(calls) == 3
    assert float(calls[0].args["oldest"]) == pytest.approx(before - CLOCK_SKEW, abs=1e-3)
    assert sink.find_sent(A, 43, since=before) is None
    assert sink.find_sent(A, 42, since=time.time() + 2 * CLOCK_SKEW) is None  # outside the window


# -- kill -9 -----------------------------------------------------------------------------


def test_sigkill_at_random_points_loses_nothing_and_duplicates_nothing(
    db_url: str, tmp_path: Path, feed_server: FeedServer, slack: FakeSlack
):
    """`newshound poll --once` processes are killed with SIGKILL after a random
    delay while new stories keep arriving, until twelve really died mid-way
    (at most 40 rounds); then runs go to completion.
    Every outbox message (alerts and digests) must be posted exactly once."""
    rng = random.Random(5)
    config, db = tmp_path / "feeds.yaml", db_url
    write_config(
        config,
        [feed_server.url("/feed.xml")],
        [{"channel": A, "terms": ["tariff"]}, {"channel": B, "terms": ["tariff"]}],
        max_alerts_per_poll=4,
    )
    slack.fail_every(POST, 1, Fault(delay=0.04))  # every post takes a little while
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.api_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "bot", "--config", str(config), "--db", str(db)]
    command += ["poll", "--once", "--all"]
    now = datetime.now(UTC)
    entries: list[FeedEntry] = []

    def run(kill_after: float | None) -> int:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if kill_after is None:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            return 0
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return proc.returncode

    def new_stories(round_: int) -> None:
        for n in range(6):
            number = round_ * 6 + n
            entries.insert(
                0,
                FeedEntry(
                    title=f"Tariff story {number}",
                    link=f"https://news.example/t/{number}",
                    published=now - timedelta(seconds=number),
                ),
            )
        feed_server.set("/feed.xml", rss(entries))

    # One undisturbed run measures how long start-up + poll + delivery take here.
    new_stories(0)
    started = time.monotonic()
    run(None)
    full_run = time.monotonic() - started
    # Under CPU load a run may finish before its kill lands: keep going until
    # twelve runs really were killed mid-way (at most 40 rounds / 3 minutes).
    killed = 0
    deadline = time.monotonic() + 180
    round_ = 0
    while killed < 12 and round_ < 40 and time.monotonic() < deadline:
        round_ += 1
        new_stories(round_)  # fresh stories each round, so every kill lands in real work
        if run(rng.uniform(0.3, 1.0) * full_run) == -signal.SIGKILL:
            killed += 1
    assert killed >= 12, f"only {killed} of {round_} runs were killed mid-way"
    # A send the last kill interrupted is looked for once it is IN_FLIGHT old.
    settle_by = time.monotonic() + IN_FLIGHT + 10 * full_run
    for _ in range(30):
        run(None)
        with Store(db) as check:
            counts = check.outbox.counts()
            if set(counts) == {SENT} or time.monotonic() > settle_by:
                break
        time.sleep(0.5)

    with Store(db) as check:
        assert check.meta.damage() is None
        assert set(check.outbox.counts()) == {SENT}
        all_ids = [m.id for m in check.outbox.in_state(SENT, limit=100_000)]
        assert len(check.db.rows("SELECT id FROM alerts")) == 2 * len(entries)
    print(f"{killed} killed runs, {len(slack.calls(HISTORY))} history checks after interruptions")
    posted = Counter(slack.posted_outbox_ids())
    assert [i for i, c in posted.items() if c > 1] == []  # no duplicates
    assert sorted(posted) == sorted(all_ids)  # nothing lost


# -- lease takeover ------------------------------------------------------------------


def test_late_results_never_overwrite_the_new_owner(store: Store):
    """Sender A's lease runs out mid-send and B takes the message over: A's
    late result (sent, retry, uncertain or dead) must not touch B's state."""
    (message_id,) = queue(store, A, 1)

    def take(owner: str) -> None:
        assert store.outbox.claim(
            message_id, owner=owner, now=time.time(), gate_keys=[], hold={}
        ).row

    take("host/1/aaaa")
    assert store.outbox.release_orphan(message_id, "host/1/aaaa", time.time())
    take("host/2/bbbb")
    late = "host/1/aaaa"
    assert not store.outbox.mark_sent(message_id, "1.000", time.time(), owner=late)
    assert not store.outbox.mark_retry(message_id, "late", time.time() + 60, owner=late)
    assert not store.outbox.mark_uncertain(message_id, "late", time.time() + 60, owner=late)
    assert not store.outbox.mark_dead(message_id, "late", time.time(), owner=late)
    row = store.outbox.get(message_id)
    assert row is not None and row.state == SENDING and row.sending_owner == "host/2/bbbb"
    assert row.last_error != "late" and row.remote_id is None
    assert store.outbox.mark_sent(message_id, "2.000", time.time(), owner="host/2/bbbb")
    row = store.outbox.get(message_id)
    assert row is not None and row.state == SENT and row.remote_id == "2.000"


def test_released_but_unclaimed_message_takes_the_late_success(store: Store):
    """Released as an orphan but nobody claimed it yet: A's late success is
    true news (it arrived), so it is recorded and nothing is sent twice."""
    (message_id,) = queue(store, A, 1)
    owner = "host/1/aaaa"
    assert store.outbox.claim(message_id, owner=owner, now=time.time(), gate_keys=[], hold={}).row
    assert store.outbox.release_orphan(message_id, owner, time.time())
    assert not store.outbox.mark_retry(message_id, "late", time.time() + 60, owner=owner)
    assert store.outbox.mark_sent(message_id, "1.000", time.time(), owner=owner)
    row = store.outbox.get(message_id)
    assert row is not None and row.state == SENT


@pytest.mark.parametrize(
    "outcome", ["sent", "retry", "uncertain", "dead", "rate_limited"], ids=lambda o: o
)
def test_deliverer_drops_its_result_after_a_takeover(store: Store, outcome: str):
    from bot.sinks.base import DeliveryError

    (message_id,) = queue(store, A, 1)
    other = "otherhost/99/bbbb"

    class SlowSink:
        """While A is 'sending', its lease runs out and B takes the message."""

        def send(self, channel, kind, payload, outbox_id):
            row = store.outbox.get(outbox_id)
            assert row is not None and row.sending_owner is not None
            assert store.outbox.release_orphan(outbox_id, row.sending_owner, time.time())
            claim = store.outbox.claim(
                outbox_id, owner=other, now=time.time(), gate_keys=[], hold={}
            )
            assert claim.row is not None
            if outcome == "sent":
                return "late.ts"
            raise DeliveryError(
                outcome,
                permanent=outcome == "dead",
                maybe_delivered=outcome == "uncertain",
                retry_after=0.01 if outcome == "rate_limited" else None,
            )

        def find_sent(self, channel, outbox_id, since=None, lookup=None):
            return None

    report = Deliverer(store, lambda channel: SlowSink(), send_interval=0.0).deliver(max_wait=0)
    assert report.sent == report.dead == report.failed == 0
    row = store.outbox.get(message_id)
    assert row is not None and row.state == SENDING and row.sending_owner == other
    assert row.remote_id is None and row.last_error != outcome
