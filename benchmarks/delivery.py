"""Delivery benchmark: N alerts across M channels through a fake Slack that
answers 429 (Retry-After) to every 10th call.

Run by hand:  .venv/bin/python benchmarks/delivery.py [--quick] [--baseline]

Prints throughput, per-channel rate (and the smallest gap between two posts
to one channel, measured at the fake), 429s taken, calls made too early
after a 429 (must be 0) and duplicates (must be 0). `--baseline` also runs a
naive sender (post, sleep send_interval, sleep Retry-After on 429) over a
slice of the alerts for comparison. Nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakeslack import FakeSlack, Fault

from bot.deliver import Deliverer
from bot.messages import ALERT
from bot.sinks.base import DeliveryError
from bot.sinks.slack import SlackSink
from bot.store import PENDING, SENDING, Store

POST = "chat.postMessage"


def payload(n: int) -> dict[str, object]:
    return {
        "title": f"Benchmark story {n}",
        "link": f"https://news.example/bench/{n}",
        "source": "Bench",
        "published": 1_760_000_000.0,
        "terms": ["tariff"],
        "snippet": [["about ", False], ["tariff", True]],
    }


def channels(count: int) -> list[str]:
    return [f"C0BENCH{n:04d}" for n in range(count)]


def report(name: str, fake: FakeSlack, elapsed: float, retry_after: float, expected: int) -> None:
    calls = fake.calls(POST)
    accepted = [c for c in calls if c.status == 200]
    limited = [c for c in calls if c.status == 429]
    ids = Counter(fake.posted_outbox_ids())
    duplicates = sum(n - 1 for n in ids.values() if n > 1)
    too_early = sum(1 for c in calls for r in limited if r.at < c.at < r.at + retry_after - 0.002)
    per_channel: dict[str, list[float]] = defaultdict(list)
    for c in accepted:
        per_channel[str(c.args["channel"])].append(c.at)
    rates, gaps = [], []
    for times in per_channel.values():
        times.sort()
        if len(times) > 1:
            rates.append((len(times) - 1) / (times[-1] - times[0]))
            gaps.append(min(b - a for a, b in itertools.pairwise(times)))
    print(f"{name}:")
    print(f"  delivered        {len(ids)} of {expected} alerts in {elapsed:.1f} s")
    print(f"  throughput       {len(ids) / elapsed:.2f} alerts/s")
    if rates:
        print(
            f"  per channel      {min(rates):.2f}-{max(rates):.2f} posts/s "
            f"(smallest gap {min(gaps):.3f} s)"
        )
    print(f"  429 answers      {len(limited)}; calls before Retry-After elapsed: {too_early}")
    print(f"  duplicates       {duplicates}")


def run_newshound(args: argparse.Namespace, db: Path) -> None:
    with FakeSlack() as fake, Store(db) as store:
        fake.fail_every(POST, args.every, Fault(status=429, error="ratelimited",
                                                retry_after=args.retry_after))  # fmt: skip
        names = channels(args.channels)
        for n in range(args.alerts):
            store.outbox.add(names[n % len(names)], ALERT, payload(n), time.time())
        sink = SlackSink("xoxb-bench", fake.api_url)
        deliverer = Deliverer(store, lambda channel: sink, send_interval=args.send_interval)
        started = time.monotonic()
        while True:
            deliverer.deliver(retry_now=True, max_wait=args.retry_after + args.send_interval + 1)
            counts = store.outbox.counts()
            if not counts.get(PENDING) and not counts.get(SENDING):
                break
        report("newshound Deliverer", fake, time.monotonic() - started, args.retry_after,
               args.alerts)  # fmt: skip


def run_naive(args: argparse.Namespace) -> None:
    """One post at a time; sleep send_interval after each (the simplest way to
    keep one message per second per channel); on 429 sleep Retry-After."""
    count = args.baseline_alerts
    with FakeSlack() as fake:
        fake.fail_every(POST, args.every, Fault(status=429, error="ratelimited",
                                                retry_after=args.retry_after))  # fmt: skip
        names = channels(args.channels)
        sink = SlackSink("xoxb-bench", fake.api_url)
        started = time.monotonic()
        for n in range(count):
            while True:
                try:
                    sink.send(names[n % len(names)], ALERT, payload(n), n + 1)
                    break
                except DeliveryError as exc:
                    time.sleep(exc.retry_after or 1.0)
            time.sleep(args.send_interval)
        report(f"naive baseline ({count} alerts)", fake, time.monotonic() - started,
               args.retry_after, count)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--every", type=int, default=10, help="429 on every Nth call")
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--send-interval", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="interval and Retry-After 0.1 s")
    parser.add_argument("--baseline", action="store_true", help="also run a naive sender")
    parser.add_argument("--baseline-alerts", type=int, default=100)
    args = parser.parse_args()
    if args.quick:
        args.retry_after = args.send_interval = 0.1
    print(
        f"{args.alerts} alerts, {args.channels} channels, 429 (Retry-After "
        f"{args.retry_after:g} s) on every {args.every}th call, send_interval "
        f"{args.send_interval:g} s per channel"
    )
    with tempfile.TemporaryDirectory() as tmp:
        run_newshound(args, Path(tmp) / "bench.db")
    if args.baseline:
        run_naive(args)


if __name__ == "__main__":
    main()
