"""`/watch` acknowledgement latency while a cold cycle runs (run by hand).

    .venv/bin/python benchmarks/ack_latency.py            # 1,000 feeds x 50 items
    .venv/bin/python benchmarks/ack_latency.py --feeds 200

Starts `newshound run` as a subprocess against a loopback farm of generated
feeds and the fake Slack Web API, then sends signed `/watch list` requests
every 100 ms for as long as the first (cold) cycle runs and prints the p50 /
p99 / max time until the HTTP acknowledgement (Slack's limit is 3 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from cycle import tree_rss_mb, write_config  # noqa: E402
from fakeslack import FakeSlack  # noqa: E402
from feedfarm import FeedFarm, make_terms  # noqa: E402
from service_helpers import Service  # noqa: E402

from bot.store import Store  # noqa: E402


def cycle_finished(db: Path, feeds: int) -> bool:
    with Store(db) as store:
        return sum(1 for f in store.feeds.all() if f.last_polled_at is not None) >= feeds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--terms", type=int, default=1000)
    args = parser.parse_args()

    with (
        FeedFarm(args.feeds, args.items) as farm,
        FakeSlack() as slack,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config, db = Path(tmp) / "feeds.yaml", Path(tmp) / "newshound.db"
        write_config(config, farm.urls(), make_terms(args.terms))
        service = Service(config, db, slack).start()
        assert service.proc is not None
        latencies: list[float] = []
        peak_rss = 0.0
        started = time.monotonic()
        try:
            while not cycle_finished(db, args.feeds) and time.monotonic() - started < 600:
                result, _ = service.post_command("list", "C0BENCH0000")
                if result.status == 200:
                    latencies.append(result.elapsed)
                # The service and its parser workers (the farm and fake Slack
                # run in this process, not under the service).
                peak_rss = max(peak_rss, tree_rss_mb(service.proc.pid))
                time.sleep(0.1)
        finally:
            code, _ = service.stop()
        elapsed = time.monotonic() - started
        if not latencies:
            print("no acknowledgements measured")
            return
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"cold cycle of {args.feeds} feeds x {args.items} items took ~{elapsed:.1f}s "
            f"(service exit {code})"
        )
        print(
            f"(e) /watch ack latency over {len(latencies)} requests: "
            f"p50 {1000 * statistics.median(latencies):.0f} ms, p99 {1000 * p99:.0f} ms, "
            f"max {1000 * latencies[-1]:.0f} ms (target p99 < 1000 ms)"
        )
        print(
            f"(f) service peak RSS (service + parser workers, {args.feeds} feeds, "
            f"{args.terms} terms): {peak_rss:.0f} MB (target <= 250 MB with 500 feeds)"
        )


if __name__ == "__main__":
    main()
