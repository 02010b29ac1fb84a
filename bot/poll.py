"""One poll cycle: due feeds -> fetch -> parse -> match -> dedup -> outbox.

`Poller.run_cycle` is the table of contents; each stage is a plain function
or an injected object (fetcher, store, clock), so every step is testable on
its own. Fetching runs concurrently as coroutines on the fetcher's event loop
and parsing in worker processes; everything that touches the database happens
on the calling thread, one transaction per feed, so a feed's items, its alerts
and its bookkeeping commit together.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from bot.analyze import AnalyzedFeed, AnalyzedItem, analyze
from bot.config import Config, FeedConfig
from bot.fetch import Fetcher, FetcherClosed, abandoned
from bot.messages import ALERT, DIGEST, NOTICE, digest_payload, notice_payload
from bot.messages import feed_display_name as display_name
from bot.models import FeedError, FetchResult, Item
from bot.parse import FeedParser, parse_feed
from bot.parsepool import ParsePool
from bot.store import ASSEMBLING, FeedRow, FeedSuccess, Store
from bot.watchlist import WatchList, watch_entries

log = logging.getLogger(__name__)

Clock = Callable[[], float]

BACKOFF_START = 300.0  # first retry of a failing feed: 5 minutes, doubling
BACKOFF_CAP = 86400.0  # never wait more than a day
GONE_RECHECK = 30 * 86400.0  # a 410 feed is not polled again for a month
MAX_PUBLISHER_INTERVAL = 86400.0  # <ttl>/max-age never push a check beyond a day
INTERVAL_WITH_JITTER = 1.25  # a wait set by the interval is at most this much of it
# The one result every abandoned fetch of a cycle shares (compared by identity).
CANCELLED = abandoned()
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)", re.IGNORECASE)
# Why a matching item did not alert (SPEC §4), as counted in FeedOutcome.held_back.
TOO_OLD = "older than max_age"
UNDATED_ON_FIRST_POLL = "undated on a feed's first poll"


@dataclass
class FeedOutcome:
    url: str
    name: str
    status: str  # ok | not_modified | unchanged | error | cancelled
    items: int = 0
    new_items: int = 0
    alerts: int = 0
    duplicates: int = 0
    # New items that matched a watch but may not alert, by reason (TOO_OLD, ...).
    held_back: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    error_kind: str | None = None


@dataclass
class CycleReport:
    feeds: list[FeedOutcome] = field(default_factory=list)
    duration: float = 0.0
    digests: int = 0
    pruned: int = 0

    @property
    def items(self) -> int:
        return sum(f.items for f in self.feeds)

    @property
    def new_items(self) -> int:
        return sum(f.new_items for f in self.feeds)

    @property
    def alerts(self) -> int:
        return sum(f.alerts for f in self.feeds)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.feeds)

    @property
    def held_back(self) -> Counter[str]:
        return sum((f.held_back for f in self.feeds), Counter())

    @property
    def failed(self) -> int:
        return sum(1 for f in self.feeds if f.status == "error")


@dataclass
class _Fetched:
    feed: FeedConfig
    row: FeedRow
    result: FetchResult | None = None
    analyzed: AnalyzedFeed | None = None
    body_hash: str | None = None
    error: FeedError | None = None


@dataclass
class _Job:
    """One feed's place in `fetch_all`: it puts exactly one `_Fetched` into
    `results`, even when cancelled before its coroutine ever ran."""

    feed: FeedConfig
    row: FeedRow
    results: queue.SimpleQueue[_Fetched]
    started: bool = False

    def cancelled_before_start(self, future: Future[None]) -> None:
        if future.cancelled() and not self.started:
            self.results.put(_Fetched(self.feed, self.row, error=CANCELLED))


class _ChannelBudget:
    """`max_alerts_per_poll` single alerts per channel per cycle; the rest of
    the cycle's matches for that channel share one digest message."""

    def __init__(self, store: Store, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.singles: dict[str, int] = {}
        self.digests: dict[str, int] = {}

    def takes_single(self, channel: str) -> bool:
        used = self.singles.get(channel, 0)
        if used < self.limit:
            self.singles[channel] = used + 1
            return True
        return False

    def digest_for(self, channel: str, now: float) -> int:
        if channel not in self.digests:
            # Written now (inside this feed's transaction) so the items are
            # never lost; it becomes sendable when the cycle finishes.
            self.digests[channel] = self.store.add_outbox(
                channel, DIGEST, {"items": []}, now, state=ASSEMBLING
            )
        return self.digests[channel]


def feed_display_name(feed: FeedConfig, row: FeedRow | None) -> str:
    return display_name(feed.name, row.title if row is not None else None, feed.url)


def ineligible_reason(item: Item, *, first_poll: bool, max_age: float, now: float) -> str | None:
    """Why a new item may not alert, or None when it may. SPEC §4: on a feed's
    first poll only recent dated items alert; later polls alert undated
    newcomers too; nothing older than max_age ever does."""
    if item.published is None:
        return UNDATED_ON_FIRST_POLL if first_poll else None
    if max_age > 0 and item.published < now - max_age:
        return TOO_OLD
    return None


def in_feed_order(
    results: Iterable[_Fetched], feeds: Sequence[tuple[FeedConfig, FeedRow]]
) -> Iterator[_Fetched]:
    """`results` (in whatever order fetches finished) in the order of `feeds`,
    each as soon as every feed before it is done: a reproducible cycle."""
    order = iter(feed.url for feed, _row in feeds)
    wanted = next(order, None)
    waiting: dict[str, _Fetched] = {}
    for fetched in results:
        waiting[fetched.feed.url] = fetched
        while wanted is not None and wanted in waiting:
            yield waiting.pop(wanted)
            wanted = next(order, None)


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


def channels_watching(watchlist: WatchList, feed_url: str) -> list[str]:
    """Channels with at least one term that applies to this feed."""
    return sorted(
        {
            channel
            for (channel, _term), scope in watchlist.scopes.items()
            if scope is None or feed_url in scope
        }
    )


def suspension_notice(name: str, failures: int, error: FeedError) -> str:
    return (
        f"The feed {name} has failed {failures} times in a row and is suspended "
        f"(last error: {error.message}). newshound will retry it once a day and post "
        "here again when it works."
    )


def recovery_notice(name: str) -> str:
    return f"The feed {name} works again; its alerts resume."


class Poller:
    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        *,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        jitter: float = 0.0,
        workers: int = 16,
        parser: FeedParser = parse_feed,
        pool: ParsePool | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.rng = rng or random.Random()
        self.jitter = jitter  # most of the interval taken off at random to spread polls
        self.workers = workers
        # With a pool (CLI and service), parsing *and* matching run in worker
        # processes; without one (unit tests) `parser` runs in this process.
        self.parser = parser
        self.pool = pool
        self._watch = WatchList(())
        self._unchanged: list[FeedSuccess] = []

    # -- the cycle -------------------------------------------------------

    def run_cycle(
        self,
        *,
        all_feeds: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        in_order: bool = False,
    ) -> CycleReport:
        """should_stop: checked between feeds; when it turns true the rest of
        the cycle is abandoned (each feed commits on its own, so that is safe).
        in_order: process feeds in config order rather than as their fetches
        finish (slower, but the same input always gives the same alerts in
        the same order: the demo)."""
        started = self.clock()
        self.finish_digests()  # a previous cycle that crashed may have left some open
        self.store.sync_feeds([f.url for f in self.config.feeds])
        rows = self.store.feeds()  # read once: for due feeds and for feed titles
        feeds = self.due_feeds(started, all_feeds=all_feeds, rows=rows)
        watchlist = self._watch = self.watchlist(rows)
        if self.pool is not None:
            self.pool.set_watch(str(hash(watchlist.entries)), watchlist)
        budget = _ChannelBudget(self.store, self.config.settings.max_alerts_per_poll)
        report = CycleReport()
        cycle_items: dict[int, int] = {}  # item id -> feed id that stored it this cycle
        try:
            results = self.fetch_all(feeds)
            for fetched in in_feed_order(results, feeds) if in_order else results:
                if should_stop():
                    break
                report.feeds.append(self.process(fetched, watchlist, budget, cycle_items))
        finally:
            self.store.record_feed_successes(self._unchanged)
            self._unchanged = []
        report.digests = self.finish_digests()
        # Stories no feed has carried for `retention` are forgotten; anything
        # still in a feed keeps being touched, so its dedup never lapses.
        live = {feed.url for feed in self.config.feeds}
        report.pruned = self.store.prune_items(
            self.clock() - self.config.settings.retention,
            live_feeds=[row.id for row in rows if row.url in live],
        )
        report.duration = self.clock() - started
        self.store.set_meta("last_cycle_at", repr(self.clock()))
        return report

    def watchlist(self, rows: Sequence[FeedRow] | None = None) -> WatchList:
        rows = self.store.feeds() if rows is None else rows
        titles = {row.url: row.title for row in rows if row.title}
        return WatchList.cached(watch_entries(self.config, self.store.terms(), titles))

    def due_feeds(
        self, now: float, *, all_feeds: bool, rows: Sequence[FeedRow] | None = None
    ) -> list[tuple[FeedConfig, FeedRow]]:
        by_url = {row.url: row for row in (self.store.feeds() if rows is None else rows)}
        due = []
        for feed in self.config.feeds:
            row = by_url[feed.url]
            if all_feeds or (not row.gone and self.next_check_at(feed, row) <= now):
                due.append((feed, row))
        return due

    def next_check_at(self, feed: FeedConfig, row: FeedRow) -> float:
        """The stored next check, brought forward when the configured interval
        has become shorter since it was set (SIGHUP or restart with a new
        feeds.yaml): the wait shrinks in proportion. A wait that a publisher
        asked for (<ttl>, max-age) or a failure backoff stays as it is."""
        interval = feed_interval(feed, self.config)
        before, last = row.check_interval, row.last_success_at
        if not before or interval >= before or last is None or row.consecutive_failures:
            return row.next_check_at
        wait = row.next_check_at - last
        if wait > before * INTERVAL_WITH_JITTER + 1.0:
            return row.next_check_at  # longer than the interval: the publisher's wish
        return min(row.next_check_at, last + wait * interval / before)

    def fetch_all(self, feeds: Sequence[tuple[FeedConfig, FeedRow]]) -> Iterable[_Fetched]:
        """Yield each feed's fetch+parse result as soon as it is ready.

        Every feed is a coroutine on the fetcher's event loop; at most
        `workers` of them are fetching or parsing at once. Parsing (and
        hashing the body) runs in threads that hand the work to the parser
        processes, so the loop only ever waits on sockets."""
        if not feeds:
            return
        # Results come through a queue rather than futures: a processed
        # result is then referenced nowhere, so a cycle's memory stays at
        # the results in flight, and waiting costs O(1) per feed.
        results: queue.SimpleQueue[_Fetched] = queue.SimpleQueue()
        in_flight = asyncio.Semaphore(self.workers)
        parsers = ThreadPoolExecutor(
            max_workers=min(self.workers, len(feeds)), thread_name_prefix="newshound-parse"
        )
        futures = []
        for feed, row in feeds:
            job = _Job(feed, row, results)
            try:
                future = self.fetcher.submit(self._fetch_into(job, in_flight, parsers))
            except FetcherClosed:  # shutting down: the feed waits for the next run
                results.put(_Fetched(feed, row, error=CANCELLED))
                continue
            future.add_done_callback(job.cancelled_before_start)
            futures.append(future)
        try:
            for _ in range(len(feeds)):
                yield results.get()
        finally:
            # Left early (should_stop): cancel what has not finished, don't wait.
            for future in futures:
                future.cancel()
            parsers.shutdown(wait=False, cancel_futures=True)

    async def _fetch_into(
        self, job: _Job, in_flight: asyncio.Semaphore, parsers: ThreadPoolExecutor
    ) -> None:
        job.started = True
        # Replaced by fetch_one's result unless the coroutine is cancelled.
        fetched = _Fetched(job.feed, job.row, error=CANCELLED)
        try:
            fetched = await self.fetch_one(job.feed, job.row, in_flight, parsers)
        finally:
            job.results.put(fetched)  # always exactly one result per feed

    async def fetch_one(
        self,
        feed: FeedConfig,
        row: FeedRow,
        in_flight: asyncio.Semaphore,
        parsers: ThreadPoolExecutor,
    ) -> _Fetched:
        fetched = _Fetched(feed, row)
        try:
            async with AsyncExitStack() as cycle_slot:
                async with self.fetcher.host_slot(feed.url):
                    # The cycle slot only once the host has room: a feed that
                    # waits for a busy (or stuck) host holds nothing that feeds
                    # on other hosts need.
                    await cycle_slot.enter_async_context(in_flight)
                    result = await self.fetcher.fetch_now(
                        feed.url, etag=row.etag, last_modified=row.last_modified
                    )
                # The host slot is free again; the cycle slot is kept while
                # parsing, so bodies waiting to be parsed stay few.
                fetched.result = result
                if not result.not_modified:
                    await self._parse_in_thread(fetched, result, parsers)
        except FeedError as exc:
            fetched.error = exc
        except Exception as exc:  # a bug must cost one feed, never the cycle
            log.exception("unexpected error polling %s", feed.url)
            fetched.error = FeedError("internal", f"internal error: {type(exc).__name__}")
        return fetched

    async def _parse_in_thread(
        self, fetched: _Fetched, result: FetchResult, parsers: ThreadPoolExecutor
    ) -> None:
        try:
            handoff = asyncio.get_running_loop().run_in_executor(
                parsers, self._hash_and_parse, fetched, result
            )
        except RuntimeError:  # the cycle was abandoned and its parser threads shut down
            raise asyncio.CancelledError from None
        await handoff

    def _hash_and_parse(self, fetched: _Fetched, result: FetchResult) -> None:
        """In a parser thread: skip bodies seen last time, else parse and match."""
        row = fetched.row
        fetched.body_hash = hashlib.sha256(result.body).hexdigest()
        if fetched.body_hash == row.body_hash and row.first_polled_at is not None:
            return  # server ignores conditional GET but nothing changed
        fetched.analyzed = self.parse_and_analyze(fetched.feed, result)
        fetched.result = replace(result, body=b"")  # parsed: the bytes are no longer needed

    def parse_and_analyze(self, feed: FeedConfig, result: FetchResult) -> AnalyzedFeed:
        content_type = result.headers.get("content-type")
        max_items = self.config.settings.max_items_per_feed
        if self.pool is not None:
            return self.pool.analyze(
                result.body,
                url=result.url,
                content_type=content_type,
                max_items=max_items,
                feed_url=feed.url,
                feed_name=feed.name,
            )
        parsed = self.parser(
            result.body, url=result.url, content_type=content_type, max_items=max_items
        )
        return analyze(parsed, self._watch, feed_url=feed.url, feed_name=feed.name)

    # -- one feed ----------------------------------------------------------

    def process(
        self,
        fetched: _Fetched,
        watchlist: WatchList,
        budget: _ChannelBudget,
        cycle_items: dict[int, int],
    ) -> FeedOutcome:
        feed, row = fetched.feed, fetched.row
        now = self.clock()
        name = feed_display_name(feed, row)
        if fetched.error is CANCELLED:
            return FeedOutcome(feed.url, name, "cancelled", error=CANCELLED.message)
        if fetched.error is not None:
            return self.record_failure(feed, row, fetched.error, now, watchlist)
        if row.consecutive_failures:
            log.info(
                "feed %s (%s) works again after %d failed checks",
                name,
                feed.url,
                row.consecutive_failures,
            )
        result = fetched.result
        assert result is not None
        jitter = self.rng.random() * self.jitter
        analyzed = fetched.analyzed
        ttl = analyzed.ttl_seconds if analyzed is not None else None
        next_check = next_check_after_success(feed, self.config, ttl, now, jitter, result.headers)
        interval = feed_interval(feed, self.config)
        if analyzed is None:
            success = FeedSuccess(
                row.id,
                now,
                next_check,
                result.etag,
                result.last_modified,
                check_interval=interval,
            )
            if row.suspended_at is None:
                # Nothing new and nothing to announce: batch the bookkeeping
                # (a warm cycle is mostly this; one commit per feed would dominate it).
                self._unchanged.append(success)
            else:
                with self.store.transaction():
                    self.record_recovery(feed, row, name, watchlist, now)
                    self.store.record_feed_successes([success])
            status = "not_modified" if result.not_modified else "unchanged"
            return FeedOutcome(feed.url, name, status)

        name = analyzed.source
        outcome = FeedOutcome(feed.url, name, "ok", items=len(analyzed.items))
        first_poll = row.first_polled_at is None
        max_age = self.config.settings.max_age
        with self.store.transaction():
            # A few batched statements per feed: one lookup of all story keys
            # (most items of a feed are known), then one insert per table.
            known_keys = self.store.find_stories([k for a in analyzed.items for k in a.lookups])
            seen_again: list[tuple[int, Sequence[str]]] = []
            known_entries: list[tuple[AnalyzedItem, int]] = []
            new_entries: list[AnalyzedItem] = []
            for entry in analyzed.items:
                known = next((known_keys[k] for k in entry.lookups if k in known_keys), None)
                if known is None:
                    # Mark its keys so a repeated entry in this feed is not new again.
                    known_keys.update(dict.fromkeys(entry.keys, -1 - len(new_entries)))
                    new_entries.append(entry)
                elif known < 0:
                    continue  # a repeat of an entry that is new in this very document
                else:
                    seen_again.append((known, entry.keys))
                    known_entries.append((entry, known))
                    if cycle_items.get(known, row.id) != row.id:
                        outcome.duplicates += 1
            item_ids = self.store.insert_items(row.id, [(e.item, e.keys) for e in new_entries], now)
            outcome.new_items = len(new_entries)
            # (entry, story id, channels that already have the story)
            offers: list[tuple[AnalyzedItem, int, frozenset[str]]] = [
                (entry, item_id, frozenset())
                for entry, item_id in zip(new_entries, item_ids, strict=True)
            ]
            offers += self.known_but_new_here(row, known_entries)
            pending: list[tuple[str, int, Sequence[str], bool]] = []
            singles: list[tuple[str, str, dict[str, Any]]] = []
            for entry, item_id, alerted in offers:
                cycle_items.setdefault(item_id, row.id)
                reason = ineligible_reason(
                    entry.item, first_poll=first_poll, max_age=max_age, now=now
                )
                if reason is not None:
                    # Counted once per story and cycle, by the feed that brought it.
                    if entry.alerts and not alerted and cycle_items[item_id] == row.id:
                        outcome.held_back[reason] += 1
                    continue
                for draft in entry.alerts:
                    if draft.channel in alerted:
                        continue  # one alert per (channel, story), whichever feed
                    single = budget.takes_single(draft.channel)
                    if single:
                        singles.append((draft.channel, ALERT, draft.payload))
                    pending.append((draft.channel, item_id, draft.terms, single))
            # Singles first, so a digest opened now is queued behind them.
            single_ids = iter(self.store.add_outbox_many(singles, now))
            self.store.add_alerts(
                [
                    (
                        channel,
                        item_id,
                        terms,
                        next(single_ids) if single else budget.digest_for(channel, now),
                    )
                    for channel, item_id, terms, single in pending
                ],
                now,
            )
            outcome.alerts = len(pending)
            self.store.touch_stories(seen_again, now)
            self.store.record_carried(row.id, [*item_ids, *(i for i, _ in seen_again)], now)
            self.record_recovery(feed, row, name, watchlist, now)
            self.store.record_feed_successes(
                [
                    FeedSuccess(
                        row.id,
                        now,
                        next_check,
                        result.etag,
                        result.last_modified,
                        title=analyzed.title,
                        body_hash=fetched.body_hash,
                        check_interval=interval,
                    )
                ]
            )
        return outcome

    def known_but_new_here(
        self, row: FeedRow, known: Sequence[tuple[AnalyzedItem, int]]
    ) -> list[tuple[AnalyzedItem, int, frozenset[str]]]:
        """Stories another feed brought first that this feed carries for the
        first time: channels that watch this feed (and not that one) still
        get them once. A feed read before newshound tracked what feeds carry
        only records what it carries, so an upgrade alerts nothing old."""
        if not known or (row.first_polled_at is not None and row.items_seen_at is None):
            return []
        carried = self.store.carried_by(row.id, [item_id for _, item_id in known])
        fresh: dict[int, AnalyzedItem] = {}
        for entry, item_id in known:
            if item_id not in carried and entry.alerts:
                fresh.setdefault(item_id, entry)  # a story repeated in the feed: once
        if not fresh:
            return []
        alerted = self.store.alerted(list(fresh))
        return [
            (
                entry,
                item_id,
                frozenset(channel for channel, alerted_id in alerted if alerted_id == item_id),
            )
            for item_id, entry in fresh.items()
        ]

    def record_failure(
        self,
        feed: FeedConfig,
        row: FeedRow,
        error: FeedError,
        now: float,
        watchlist: WatchList,
    ) -> FeedOutcome:
        failures = row.consecutive_failures + 1
        change = failure_change(row, error)
        if change is not None:
            # Once per change of state, not per retry: a feed that is down for
            # a day would otherwise fill the log with the same line.
            name = feed_display_name(feed, row)
            log.warning(
                "feed %s (%s) %s: %s [%s]", name, feed.url, change, error.message, error.kind
            )
        suspend = not error.gone and failures >= self.config.settings.failure_threshold
        next_check = next_check_after_failure(feed, self.config, failures, error, now)
        if suspend:
            next_check = max(next_check, suspended_next_check(now))
        with self.store.transaction():
            newly_suspended = suspend and row.suspended_at is None
            self.store.record_feed_failure(
                row.id,
                now=now,
                kind=error.kind,
                message=error.message,
                next_check_at=next_check,
                gone=error.gone,
                suspend=suspend,
            )
            if newly_suspended:
                log.warning("feed %s suspended after %d failures", feed.url, failures)
                text = suspension_notice(feed_display_name(feed, row), failures, error)
                self.notify(watchlist, feed.url, text, now)
        return FeedOutcome(
            feed.url,
            feed_display_name(feed, row),
            "error",
            error=error.message,
            error_kind=error.kind,
        )

    def notify(self, watchlist: WatchList, feed_url: str, text: str, now: float) -> None:
        for channel in channels_watching(watchlist, feed_url):
            self.store.add_outbox(channel, NOTICE, notice_payload(text), now)

    def record_recovery(
        self, feed: FeedConfig, row: FeedRow, name: str, watchlist: WatchList, now: float
    ) -> None:
        """Inside the success transaction: one notice when a suspended feed works again."""
        if row.suspended_at is not None:
            self.notify(watchlist, feed.url, recovery_notice(name), now)

    def finish_digests(self) -> int:
        """Turn this cycle's assembling digests into sendable messages."""
        finished = 0
        names = {feed.url: feed.name for feed in self.config.feeds if feed.name}
        for digest in self.store.assembling_digests():
            payload = digest_payload(self.store.digest_entries(digest.id), names)
            self.store.finish_digest(digest.id, payload)
            finished += 1
        return finished
