"""Sharing the polling between workers on one database.

The database is the coordinator; there is no other cluster protocol:

- a worker claims due feeds in small batches with a lease
  (`FeedStore.claim`, `FOR UPDATE SKIP LOCKED`), so a feed is fetched by one
  worker per due time and idle workers take the next batch;
- cycles are numbered by time (`cycle_key`): workers whose scheduler ticks
  fall in the same period share that cycle's per-channel alert budget and
  its digest / follow-up messages; the last worker out of a cycle (or the
  next one in, after a crash) finishes them;
- a worker that is killed holds its feed leases and its place in a cycle
  only until they expire; then the others carry on without it.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.config import FeedConfig, Settings
from bot.store import FeedRow, Store

# Extra seconds on every lease: slack for the database round trips and
# the processing of a batch after its fetches.
LEASE_MARGIN = 60.0


def worker_id() -> str:
    """Unique per process, readable in `status`: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


def dead_here(owner: str, me: str) -> bool:
    """A worker of this host whose process is gone (crashed or killed): its
    leases need not run out before this host's next worker takes over. A
    worker elsewhere is only known dead by its leases expiring."""
    host, _, rest = owner.partition(":")
    pid_text, _, _tag = rest.partition(":")
    my_host = me.partition(":")[0]
    if host != my_host or not pid_text.isdigit() or owner == me:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # an earlier process with our pid (e.g. pid 1 in a restarted container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def worker_timeout(tick: float) -> float:
    """A worker not heard from for this long (its heartbeat comes every tick)
    is no longer counted as alive."""
    return max(60.0, 3 * tick)


def lease_seconds(settings: Settings, ahead: int, fetchers: int) -> float:
    """Long enough for the feeds claimed ahead to be fetched (rounds of
    `fetchers` at a time, each bounded by the fetch deadline plus the parse
    limit) and processed: a live worker never loses a feed it is working on."""
    rounds = max(1, -(-ahead // max(1, fetchers)))
    return rounds * (settings.fetch_timeout + settings.parse_timeout) + LEASE_MARGIN


@dataclass
class WorkShare:
    store: Store
    worker: str
    lease: float  # seconds a feed claim lasts
    batch: int  # feeds claimed at a time
    ahead: int  # feeds claimed but not yet processed, at most (about)
    cycle_period: float | None = None  # None: each cycle is a cycle of its own

    def cycle_key(self, started: float) -> str:
        if self.cycle_period is None:
            return f"once:{self.worker}:{started!r}"
        return f"every{self.cycle_period:g}s:{int(started // self.cycle_period)}"

    def join(self, cycle: str, now: float) -> None:
        """Be counted in `cycle` for another lease period (renewed per batch)."""
        self.store.meta.join_cycle(cycle, self.worker, now + self.lease)

    def leave(self, cycle: str) -> None:
        self.store.meta.leave_cycle(cycle, self.worker)

    def claim(
        self,
        candidates: Sequence[tuple[FeedConfig, FeedRow]],
        now: float,
        still_due: Callable[[FeedConfig, FeedRow, float], bool],
    ) -> list[tuple[FeedConfig, FeedRow]]:
        """The candidates this worker now holds and that are still due by
        their row as it is now (another worker may have just polled one:
        its outcome is committed before its lease ends), in candidate order."""
        by_id = {row.id: feed for feed, row in candidates}
        dead = [
            owner
            for owner in {row.lease_owner for _, row in candidates if row.lease_owner}
            if dead_here(owner, self.worker)
        ]
        taken = self.store.feeds.claim(
            list(by_id), owner=self.worker, now=now, until=now + self.lease, dead_owners=dead
        )
        fresh = {row.id: row for row in self.store.feeds.by_ids(taken)}
        claimed, not_due = [], []
        for feed_id in by_id:
            row = fresh.get(feed_id)
            if row is None:
                continue
            if still_due(by_id[feed_id], row, now):
                claimed.append((by_id[feed_id], row))
            else:
                not_due.append(feed_id)
        self.release(not_due)
        return claimed

    def release(self, feed_ids: Sequence[int]) -> None:
        self.store.feeds.release(feed_ids, owner=self.worker)

    def finishable(self, cycles: Sequence[str | None], now: float) -> set[str | None]:
        """Those of `cycles` no live worker is polling in any more."""
        busy = {
            cycle
            for cycle, worker in self.store.meta.cycle_workers(now)
            if not dead_here(worker, self.worker)
        }
        return {cycle for cycle in cycles if cycle not in busy}
