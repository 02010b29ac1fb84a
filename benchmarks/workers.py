"""Several workers on one database: run by hand, prints a table and ratios.

    .venv/bin/python benchmarks/workers.py                  # 2,000 feeds x 25 items, 1,000 terms
    .venv/bin/python benchmarks/workers.py --feeds 300 --workers 1 2

A loopback farm of generated feeds (benchmarks/feedfarm.py, its own
process) serves every feed; then one cold cycle runs per setup, each on a
fresh database:

  SQLite, 1 worker (the embedded default, for reference), and PostgreSQL
  with 1, 2 and 4 workers: separate processes, each with its own `Poller`
  (and parser pool) over the same config and database, released together.

For each it reports the wall-clock time until every feed is polled (first
worker's start to last worker's end), alerts per second, database time per
feed, CPU per feed (workers, their parsers and the PostgreSQL server),
connections and lock waits seen on the server, and the database's size
afterwards. The farm's request counts must show every feed fetched exactly
once in total, or the run fails.

Database time is measured inside each worker by wrapping its `Database`
object's methods (execute, executemany, query, rows, insert_ids, and the
BEGIN / COMMIT of a transaction, but not the Python work between them):
wall time from call to return, so it includes waiting for a pooled
connection, for row locks held by other workers and for the CPU (the
workers share the machine's cores with the server). It is summed per
worker and divided by the feeds that worker polled.

The machine may be shared: the script prints its load and CPU use, and
the figures are best read as CPU seconds next to the wall clock.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feedfarm import FeedFarm, make_terms, write_config

from bot.config import Settings
from bot.store import Conflict, Store
from bot.store.database import POOL_SIZE, Database

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
CYCLE_PERIOD = 3600.0  # the workers' shared cycle (budgets, digests)
SAMPLE_EVERY = 0.05  # seconds between looks at pg_stat_activity


# -- the config ---------------------------------------------------------------


# -- timing the database inside a worker ------------------------------------

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.IGNORECASE)


def statement_kind(sql: str) -> str:
    """'UPDATE feeds', 'SELECT channel_budgets FOR UPDATE', ...: what the
    time is spent on, without the statement's details."""
    verb = sql.split(None, 1)[0].upper() if sql.strip() else "?"
    table = _TABLE.search(sql)
    kind = f"{verb} {table.group(1) if table else ''}".strip()
    return kind + (" FOR UPDATE" if "FOR UPDATE" in sql.upper() and verb == "SELECT" else "")


@dataclass
class DbTimer:
    seconds: float = 0.0
    calls: int = 0
    conflicts: int = 0
    by_kind: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.seconds += seconds
            self.calls += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0.0) + seconds

    def wrap(self, db: Database) -> None:
        """Time every statement and every BEGIN / COMMIT of `db` (an
        instance's methods are replaced; the stores share the instance)."""
        for name in ("execute", "executemany", "query", "rows", "insert_ids"):
            setattr(db, name, self._timed(getattr(db, name)))
        original = db.transaction

        @contextmanager
        def transaction() -> Iterator[None]:
            started = time.perf_counter()
            manager = original()
            manager.__enter__()
            self.add("BEGIN", time.perf_counter() - started)
            try:
                yield
            except BaseException as exc:
                if not manager.__exit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                started = time.perf_counter()
                try:
                    manager.__exit__(None, None, None)
                finally:
                    self.add("COMMIT", time.perf_counter() - started)

        db.transaction = transaction  # type: ignore[method-assign]

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(sql: str, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(sql, *args)
            except Conflict:
                self.conflicts += 1
                raise
            finally:
                self.add(statement_kind(sql), time.perf_counter() - started)

        return timed


class _StageTimer:
    """Wall time of the poller's per-feed store stage (`process_sharing`:
    dedup, merge, decide, write, one transaction), which runs on one
    thread per worker: its time per feed bounds a worker's feeds per second
    however many cores it is given. Its CPU time on that thread is the
    part no waiting (for the server, for a core) inflates."""

    def __init__(self, poller: Any) -> None:
        self.seconds = 0.0
        self.cpu = 0.0
        original = poller.process_sharing

        def timed(*args: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args)
            finally:
                self.seconds += time.perf_counter() - started
                self.cpu += time.thread_time() - cpu

        poller.process_sharing = timed


# -- one worker process -------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def run_worker(
    location: str, config_path: str, name: str, ready: Any, start: Any, results: Any
) -> None:
    """One worker: store, fetcher and parser processes started, then one
    cycle (the terms are compiled in it, as in any cycle) once every worker
    is ready."""
    from bot.config import load_config
    from bot.fetch import Fetcher
    from bot.parsepool import ParsePool
    from bot.poll import Poller
    from bot.wiring import fetch_policy

    config = load_config(config_path)
    timer = DbTimer()
    with (
        Store(location) as store,
        Fetcher(fetch_policy(config.settings)) as fetcher,
        ParsePool(timeout=config.settings.parse_timeout) as pool,
    ):
        pool.start()  # as in the service, whose parser processes outlive cycles
        poller = Poller(config, store, fetcher, pool=pool, worker=name, cycle_period=CYCLE_PERIOD)
        timer.wrap(store.db)
        stage = _StageTimer(poller)
        parsers = pool.pids()
        ready.put(name)
        start.wait()
        cpu_before = time.process_time(), sum(cpu_seconds(p) for p in parsers)
        started = time.time()
        report = poller.run_cycle()
        ended = time.time()
        parsers = pool.pids()  # a parser that overran is replaced
        pool_stats = store.db.pool.get_stats() if store.postgres else {}  # type: ignore[attr-defined]
        results.put(
            {
                "name": name,
                "started": started,
                "ended": ended,
                "feeds": len(report.feeds),
                "failed": report.failed,
                "cancelled": sum(1 for f in report.feeds if f.status == "cancelled"),
                "items": report.items,
                "new_items": report.new_items,
                "alerts": report.alerts,
                "db_seconds": timer.seconds,
                "store_stage_seconds": stage.seconds,
                "store_stage_cpu": stage.cpu,
                "db_calls": timer.calls,
                "conflicts": timer.conflicts,
                "by_kind": dict(timer.by_kind),
                "cpu_main": time.process_time() - cpu_before[0],
                "cpu_parsers": sum(cpu_seconds(p) for p in parsers) - cpu_before[1],
                "connections_opened": pool_stats.get("connections_num", 1),
                "pool_wait_ms": pool_stats.get("requests_wait_ms", 0),
            }
        )


# -- the machine and the server ----------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class ServerWatch:
    """Samples pg_stat_activity for this run's connections (tagged by
    application_name): the most open at once, how often one of them was
    waiting for a lock held by another, and the CPU their server processes
    used (first and last reading of each backend's /proc entry)."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.backend_cpu: dict[int, tuple[float, float]] = {}
        self.peak = 0
        self.samples = 0
        self.active = 0  # connection-samples running a statement
        self.lock_waits = 0  # of those, waiting for a lock
        self.waiting_in: Counter[str] = Counter()  # the statements that waited
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            while not self._stop.wait(SAMPLE_EVERY):
                rows = conn.execute(
                    "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
                    "WHERE application_name LIKE %s",
                    (self.app + "%",),
                ).fetchall()
                self.samples += 1
                self.peak = max(self.peak, len(rows))
                self.active += sum(1 for _, state, _, _ in rows if state == "active")
                waiting = [query for _, _, wait, query in rows if wait == "Lock"]
                self.lock_waits += len(waiting)
                self.waiting_in.update(statement_kind(query) for query in waiting)
                for pid, _, _, _ in rows:
                    now = cpu_seconds(pid)
                    first = self.backend_cpu.get(pid, (now, now))[0]
                    self.backend_cpu[pid] = (first, now)

    @property
    def server_cpu(self) -> float:
        """CPU seconds of this run's backends while watched (a backend that
        ends between two samples loses at most SAMPLE_EVERY of its time)."""
        return sum(last - first for first, last in self.backend_cpu.values())

    def __enter__(self) -> ServerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def postgres_schema(app: str) -> Iterator[tuple[str, str]]:
    """A fresh schema, dropped afterwards: (its URL for the workers, its name)."""
    import psycopg

    schema = f"bench_workers_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}&application_name={app}", schema
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def postgres_size(schema: str) -> int:
    """Bytes of the schema's tables with their indexes and TOAST."""
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def sqlite_size(path: Path) -> int:
    """The file's bytes once the write-ahead log is folded into it."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path.stat().st_size


def stored_stories(location: str) -> int:
    with Store(location) as store:
        return int(store.db.scalar("SELECT count(*) FROM items"))


# -- one setup: a database, n workers, one cycle -----------------------------


@dataclass
class Run:
    label: str
    workers: int
    wall: float
    per_worker: list[dict[str, Any]]
    db_bytes: int
    stories: int
    machine_busy: float  # share of all cores busy during the cycle
    server_cpu: float
    connections_peak: int
    lock_wait_share: float  # of the server's active connection-samples
    waiting_in: Counter[str]  # statement kind -> samples it waited for a lock

    def total(self, key: str) -> float:
        return float(sum(w[key] for w in self.per_worker))

    @property
    def feeds(self) -> int:
        return int(self.total("feeds"))

    @property
    def db_ms_per_feed(self) -> float:
        return 1000 * self.total("db_seconds") / max(1, self.feeds)

    @property
    def stage_ms_per_feed(self) -> float:
        return 1000 * self.total("store_stage_seconds") / max(1, self.feeds)

    @property
    def stage_cpu_ms_per_feed(self) -> float:
        return 1000 * self.total("store_stage_cpu") / max(1, self.feeds)

    @property
    def cpu_ms_per_feed(self) -> float:
        return 1000 * (self.total("cpu_main") + self.total("cpu_parsers")) / max(1, self.feeds)


def prepare(location: str, config_path: Path) -> None:
    """Schema, feeds and terms in place before the clock starts (as after
    the first worker's start-up)."""
    from bot.config import load_config
    from bot.wiring import mirror_config

    with Store(location) as store:
        mirror_config(load_config(config_path), store, time.time())


def run_setup(
    label: str, location: str, config_path: Path, workers: int, farm: FeedFarm, app: str
) -> tuple[list[dict[str, Any]], float, float, ServerWatch | None]:
    ctx = multiprocessing.get_context("spawn")
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    prepare(location, config_path)
    farm.reset_requests()
    processes = [
        ctx.Process(
            target=run_worker,
            args=(location, str(config_path), f"bench-{label}-{n}", ready, start, results),
        )
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    watch = ServerWatch(app) if location.startswith("postgresql") else None
    for _ in processes:
        ready.get(timeout=300)
    time.sleep(1.0)  # start-up work (parsers compiling the terms) has settled
    if watch is not None:
        watch.__enter__()
        time.sleep(3 * SAMPLE_EVERY)  # the idle pooled connections seen before the start
    busy_before = machine_busy()
    start.set()
    per_worker = [results.get(timeout=1800) for _ in processes]
    if watch is not None:
        watch.__exit__()
    busy_after = machine_busy()
    for process in processes:
        process.join()
    wall = max(w["ended"] for w in per_worker) - min(w["started"] for w in per_worker)
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    return per_worker, wall, busy, watch


def measure(
    label: str, workers: int, postgres: bool, config_path: Path, farm: FeedFarm, tmp: Path
) -> Run:
    app = f"nhbench{uuid.uuid4().hex[:8]}"
    if postgres:
        with postgres_schema(app) as (location, schema):
            per_worker, wall, busy, watch = run_setup(
                label, location, config_path, workers, farm, app
            )
            size, stories = postgres_size(schema), stored_stories(location)
    else:
        path = tmp / f"{label}.db"
        per_worker, wall, busy, watch = run_setup(label, str(path), config_path, workers, farm, app)
        size, stories = sqlite_size(path), stored_stories(str(path))
    requests = farm.requests()
    wrong = [i for i, n in enumerate(requests) if n != 1]
    assert not wrong, (
        f"{label}: {len(wrong)} feeds not fetched exactly once "
        f"(e.g. feed {wrong[0]}: {requests[wrong[0]]} requests)"
    )
    polled = sum(w["feeds"] for w in per_worker)
    assert polled == len(requests), f"{label}: {polled} feeds polled, {len(requests)} served"
    return Run(
        label=label,
        workers=workers,
        wall=wall,
        per_worker=per_worker,
        db_bytes=size,
        stories=stories,
        machine_busy=busy,
        server_cpu=watch.server_cpu if watch is not None else 0.0,
        connections_peak=watch.peak if watch is not None else 1,
        lock_wait_share=watch.lock_waits / max(1, watch.active) if watch is not None else 0.0,
        waiting_in=watch.waiting_in if watch is not None else Counter(),
    )


# -- the report ---------------------------------------------------------------


def print_table(runs: list[Run]) -> None:
    base = next((r for r in runs if r.label.startswith("pg") and r.workers == 1), runs[0])
    print()
    print(
        f"{'setup':<7} {'cycle s':>8} {'speed-up':>8} {'feeds/s':>8} {'alerts/s':>8} "
        f"{'DB ms':>7} {'stage ms':>8} {'(CPU)':>6} {'CPU ms':>7} {'PG CPU ms':>9} {'busy':>5} "
        f"{'conns':>5} {'lock wait':>9} {'DB MB':>6}  feeds per worker"
    )
    for r in runs:
        split = "/".join(str(w["feeds"]) for w in sorted(r.per_worker, key=lambda w: w["name"]))
        print(
            f"{r.label:<7} {r.wall:>8.2f} {base.wall / r.wall:>7.2f}x {r.feeds / r.wall:>8.1f} "
            f"{r.total('alerts') / r.wall:>8.0f} {r.db_ms_per_feed:>7.2f} "
            f"{r.stage_ms_per_feed:>8.2f} {r.stage_cpu_ms_per_feed:>6.2f} "
            f"{r.cpu_ms_per_feed:>7.1f} "
            f"{1000 * r.server_cpu / max(1, r.feeds):>9.1f} {100 * r.machine_busy:>4.0f}% "
            f"{r.connections_peak:>5} {100 * r.lock_wait_share:>8.1f}% "
            f"{r.db_bytes / 1e6:>6.1f}  {split}"
        )
    print(
        f"speed-up: cycle time of {base.label} / this one. Per feed: DB ms = time inside "
        "database calls, stage ms = the worker's one-thread store stage (DB calls included; "
        "(CPU): that thread's CPU in it), "
        "CPU ms = worker + parser processes, PG CPU ms = this run's server backends. "
        "busy: share of all cores in use (by anything on the machine); lock wait: share "
        "of the server's busy-connection samples waiting for a lock."
    )
    for r in runs:
        kinds = Counter[str]()
        for w in r.per_worker:
            kinds.update(w["by_kind"])
        top = ", ".join(
            f"{kind} {1000 * seconds / max(1, r.feeds):.2f}"
            for kind, seconds in kinds.most_common(6)
        )
        print(
            f"  {r.label} DB ms per feed by statement: {top}; "
            f"{int(r.total('conflicts'))} conflicts, {int(r.total('cancelled'))} feeds given up, "
            f"{r.total('db_calls') / max(1, r.feeds):.1f} calls per feed, "
            f"waited {r.total('pool_wait_ms'):.0f} ms in all for a pooled connection"
        )
        if r.waiting_in:
            waits = ", ".join(f"{kind} {n}" for kind, n in r.waiting_in.most_common(4))
            print(f"    lock waits seen ({r.lock_wait_share:.0%} of busy samples) in: {waits}")


def print_projection(runs: list[Run], target: int, interval: float) -> None:
    """What `target` feeds polled every `interval` seconds would need, from
    the PostgreSQL 1-worker run (the least disturbed by contention): a
    straight-line extrapolation, see the README for its limits."""
    one = next((r for r in runs if r.label.startswith("pg") and r.workers == 1), None)
    if one is None:
        return
    rate = target / interval  # feeds per second to sustain
    server = one.server_cpu / one.feeds
    cpu = one.cpu_ms_per_feed / 1000 + server
    # A worker's store stage is serial: its thread's CPU plus the server's
    # work for it is a floor (no waiting); the measured wall time a ceiling
    # on this loaded machine.
    floor = one.stage_cpu_ms_per_feed / 1000 + server
    measured = one.stage_ms_per_feed / 1000
    print()
    print(
        f"projection, {target:,} feeds every {interval / 60:g} min = {rate:.0f} feeds/s "
        f"(cold: every item new; a warm cycle costs far less):"
    )
    print(
        f"  CPU: {1000 * cpu:.1f} ms per feed (worker + parsers + server) x {rate:.0f}/s "
        f"= {cpu * rate:.1f} cores busy"
    )
    print(
        f"  workers: a worker's store stage is serial, {1000 * floor:.1f} ms per feed without "
        f"waiting (its CPU + the server's) = {1 / floor:.0f} feeds/s -> >= "
        f"{-(-rate * floor // 1):.0f} workers; at the {1000 * measured:.1f} ms measured here "
        f"({1 / measured:.0f} feeds/s) -> {-(-rate * measured // 1):.0f} workers"
    )
    workers = -(-rate * measured // 1)
    print(
        f"  database after the cycle: {one.db_bytes / one.feeds / 1e3:.0f} kB per feed "
        f"({one.db_bytes / max(1, one.stories):.0f} bytes per stored story) x {target:,} "
        f"= {one.db_bytes / one.feeds * target / 1e9:.1f} GB, growing with the items "
        "kept for `retention`"
    )
    print(
        f"  connections: workers x {POOL_SIZE} (POOL_SIZE) x 3 stores = "
        f"{workers * POOL_SIZE * 3:.0f} at most (a lone cycle used {one.connections_peak})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=25)
    parser.add_argument("--terms", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite reference")
    args = parser.parse_args()

    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"generating {args.feeds} feeds x {args.items} items, {args.terms} terms ...", flush=True)
    runs: list[Run] = []
    with FeedFarm(args.feeds, args.items) as farm, tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "feeds.yaml"
        write_config(config_path, farm.urls(), make_terms(args.terms))
        setups = [] if args.no_sqlite else [("sqlite", 1, False)]
        setups += [(f"pg-{n}", n, True) for n in args.workers]
        for label, workers, postgres in setups:
            run = measure(label, workers, postgres, config_path, farm, Path(tmp))
            print(
                f"  {label}: {run.wall:.2f}s, {run.feeds} feeds each fetched once, "
                f"{run.total('alerts'):.0f} alerts, load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            runs.append(run)
    print_table(runs)
    print_projection(runs, 100_000, Settings().interval)


if __name__ == "__main__":
    main()
