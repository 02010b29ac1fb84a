"""Concurrency plumbing of a poll cycle: fetch every due feed and parse it.

Every feed is a coroutine on the fetcher's event loop; at most `workers` of
them are fetching or parsing at once. Parsing (and hashing the body) runs in
threads that hand the work to the parser processes (`ParsePool`: parse,
match, sign, in parallel on every core), so the loop only ever waits on
sockets. Results come out one per feed as soon as each is ready; the poll
cycle (bot/poll.py) consumes them on its own thread and does everything that
touches the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace

from bot.analyze import AnalyzedFeed, analyze
from bot.config import FeedConfig
from bot.fetch import Fetcher, FetcherClosed, abandoned
from bot.models import FeedError, FetchResult
from bot.parse import FeedParser, parse_feed
from bot.parsepool import ParsePool
from bot.records import FeedRow
from bot.watchlist import WatchList

log = logging.getLogger(__name__)

# The one result every abandoned fetch of a cycle shares (compared by identity).
CANCELLED = abandoned()


@dataclass
class Fetched:
    feed: FeedConfig
    row: FeedRow
    result: FetchResult | None = None
    analyzed: AnalyzedFeed | None = None
    body_hash: str | None = None
    error: FeedError | None = None


@dataclass
class _Job:
    """One feed's place in `fetch_all`: it puts exactly one `Fetched` into
    `results`, even when cancelled before its coroutine ever ran."""

    feed: FeedConfig
    row: FeedRow
    results: queue.SimpleQueue[Fetched]
    started: bool = False

    def cancelled_before_start(self, future: Future[None]) -> None:
        if future.cancelled() and not self.started:
            self.results.put(Fetched(self.feed, self.row, error=CANCELLED))


def in_feed_order(
    results: Iterable[Fetched], feeds: Sequence[tuple[FeedConfig, FeedRow]]
) -> Iterator[Fetched]:
    """`results` (in whatever order fetches finished) in the order of `feeds`,
    each as soon as every feed before it is done: a reproducible cycle."""
    order = iter(feed.url for feed, _row in feeds)
    wanted = next(order, None)
    waiting: dict[str, Fetched] = {}
    for fetched in results:
        waiting[fetched.feed.url] = fetched
        while wanted is not None and wanted in waiting:
            yield waiting.pop(wanted)
            wanted = next(order, None)


class FeedRunner:
    """Fetches and parses feeds concurrently. With a pool (CLI and service)
    parsing *and* matching run in worker processes; without one (unit tests)
    `parser` runs in this process."""

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        max_items: int,
        workers: int = 16,
        parser: FeedParser = parse_feed,
        pool: ParsePool | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.max_items = max_items
        self.workers = workers
        self.parser = parser
        self.pool = pool
        self._watch = WatchList(())

    def set_watch(self, watchlist: WatchList) -> None:
        """The watch list items are matched against from now on."""
        self._watch = watchlist
        if self.pool is not None:
            self.pool.set_watch(str(hash(watchlist.entries)), watchlist)

    def fetch_all(
        self, feeds: Iterable[tuple[FeedConfig, FeedRow]], *, ahead: int | None = None
    ) -> Iterable[Fetched]:
        """Yield each feed's fetch+parse result as soon as it is ready.

        Every feed is a coroutine on the fetcher's event loop; at most
        `workers` of them are fetching or parsing at once. Parsing (and
        hashing the body) runs in threads that hand the work to the parser
        processes, so the loop only ever waits on sockets. `feeds` is read
        lazily, at most `ahead` feeds beyond the results taken so far (all
        at once when None): a worker claims feeds only as it gets to them."""
        # Results come through a queue rather than futures: a processed
        # result is then referenced nowhere, so a cycle's memory stays at
        # the results in flight, and waiting costs O(1) per feed.
        results: queue.SimpleQueue[Fetched] = queue.SimpleQueue()
        in_flight = asyncio.Semaphore(self.workers)
        parsers = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="newshound-parse")
        futures: list[Future[None]] = []
        source = iter(feeds)
        outstanding = 0

        def submit_more() -> int:
            submitted = 0
            while ahead is None or outstanding + submitted < ahead:
                nxt = next(source, None)
                if nxt is None:
                    break
                feed, row = nxt
                submitted += 1
                job = _Job(feed, row, results)
                try:
                    future = self.fetcher.submit(self._fetch_into(job, in_flight, parsers))
                except FetcherClosed:  # shutting down: the feed waits for the next run
                    results.put(Fetched(feed, row, error=CANCELLED))
                    continue
                future.add_done_callback(job.cancelled_before_start)
                futures.append(future)
            return submitted

        try:
            outstanding += submit_more()
            while outstanding:
                outstanding -= 1
                yield results.get()
                outstanding += submit_more()
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
        fetched = Fetched(job.feed, job.row, error=CANCELLED)
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
    ) -> Fetched:
        fetched = Fetched(feed, row)
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
        self, fetched: Fetched, result: FetchResult, parsers: ThreadPoolExecutor
    ) -> None:
        try:
            handoff = asyncio.get_running_loop().run_in_executor(
                parsers, self._hash_and_parse, fetched, result
            )
        except RuntimeError:  # the cycle was abandoned and its parser threads shut down
            raise asyncio.CancelledError from None
        await handoff

    def _hash_and_parse(self, fetched: Fetched, result: FetchResult) -> None:
        """In a parser thread: skip bodies seen last time, else parse and match."""
        row = fetched.row
        fetched.body_hash = hashlib.sha256(result.body).hexdigest()
        if fetched.body_hash == row.body_hash and row.first_polled_at is not None:
            return  # server ignores conditional GET but nothing changed
        fetched.analyzed = self.parse_and_analyze(fetched.feed, result)
        fetched.result = replace(result, body=b"")  # parsed: the bytes are no longer needed

    def parse_and_analyze(self, feed: FeedConfig, result: FetchResult) -> AnalyzedFeed:
        content_type = result.headers.get("content-type")
        max_items = self.max_items
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
