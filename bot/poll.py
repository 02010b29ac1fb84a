"""One poll cycle: due feeds -> fetch -> parse -> match -> dedup -> outbox.

`Poller.run_cycle` is the table of contents; each stage is a plain function
or an injected object (fetcher, store, clock), so every step is testable on
its own. Fetching and parsing run concurrently in `bot.runner` (event loop,
threads, parser processes); when a feed is due again is `bot.schedule`'s
policy. Everything that touches the database happens on the calling thread,
one transaction per feed, so a feed's items, its alerts and its bookkeeping
commit together.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.analyze import AnalyzedItem
from bot.config import Config, FeedConfig
from bot.fetch import Fetcher
from bot.merging import Merged, StoryMerger
from bot.messages import (
    ALERT,
    DIGEST,
    FOLLOWUP,
    NOTICE,
    digest_payload,
    followup_payload,
    notice_payload,
)
from bot.messages import feed_display_name as display_name
from bot.models import FeedError, Item
from bot.parse import FeedParser, parse_feed
from bot.parsepool import ParsePool
from bot.runner import CANCELLED, FeedRunner, Fetched, in_feed_order
from bot.schedule import (
    effective_next_check,
    failure_change,
    feed_interval,
    next_check_after_failure,
    next_check_after_success,
    suspended_next_check,
)
from bot.store import ASSEMBLING, FeedRow, FeedSuccess, FollowupLine, Store, StoryCopy
from bot.watchlist import WatchList, watch_entries

log = logging.getLogger(__name__)

Clock = Callable[[], float]

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
    merged: int = 0  # new items that are near-duplicate copies of a known story
    followups: int = 0  # "Also reported by" lines queued
    # New items that matched a watch but may not alert, by reason (TOO_OLD, ...).
    held_back: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    error_kind: str | None = None


@dataclass
class CycleReport:
    feeds: list[FeedOutcome] = field(default_factory=list)
    duration: float = 0.0
    digests: int = 0
    followups: int = 0  # follow-up messages queued
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
    def merged(self) -> int:
        return sum(f.merged for f in self.feeds)

    @property
    def held_back(self) -> Counter[str]:
        return sum((f.held_back for f in self.feeds), Counter())

    @property
    def failed(self) -> int:
        return sum(1 for f in self.feeds if f.status == "error")


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


class _CycleFollowups:
    """One follow-up message per (channel, story) per cycle: opened (as
    `assembling`, inside the feed's transaction, so no line is lost) when
    the first later copy arrives, sendable when the cycle finishes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.open: dict[tuple[str, int], int] = {}

    def outbox_for(self, channel: str, item_id: int, parent: int, now: float) -> int:
        key = (channel, item_id)
        if key not in self.open:
            self.open[key] = self.store.add_outbox(
                channel, FOLLOWUP, {"parent": parent}, now, state=ASSEMBLING
            )
        return self.open[key]


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


def vars_of(line: FollowupLine) -> dict[str, Any]:
    return {"source": line.source, "title": line.title, "link": line.link}


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
        merger: StoryMerger | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.rng = rng or random.Random()
        self.jitter = jitter  # most of the interval taken off at random to spread polls
        self.runner = FeedRunner(
            fetcher,
            max_items=config.settings.max_items_per_feed,
            workers=workers,
            parser=parser,
            pool=pool,
        )
        self._unchanged: list[FeedSuccess] = []
        # The service passes the one it keeps between cycles (built from the
        # database once, then topped up); a one-off cycle builds its own.
        self.merger = merger or StoryMerger(store, config.settings.merge_window)

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
        self.finish_followups()
        self.merger.refresh(started)  # rows other processes stored since our last cycle
        self.store.sync_feeds([f.url for f in self.config.feeds])
        rows = self.store.feeds()  # read once: for due feeds and for feed titles
        feeds = self.due_feeds(started, all_feeds=all_feeds, rows=rows)
        watchlist = self.watchlist(rows)
        self.runner.set_watch(watchlist)
        budget = _ChannelBudget(self.store, self.config.settings.max_alerts_per_poll)
        followups = _CycleFollowups(self.store)
        report = CycleReport()
        cycle_items: dict[int, int] = {}  # item id -> feed id that stored it this cycle
        try:
            results = self.runner.fetch_all(feeds)
            for fetched in in_feed_order(results, feeds) if in_order else results:
                if should_stop():
                    break
                outcome = self.process(fetched, watchlist, budget, cycle_items, followups)
                report.feeds.append(outcome)
        finally:
            self.store.record_feed_successes(self._unchanged)
            self._unchanged = []
        report.digests = self.finish_digests()
        report.followups = self.finish_followups()
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
            if all_feeds or (not row.gone and effective_next_check(feed, row, self.config) <= now):
                due.append((feed, row))
        return due

    # -- one feed ----------------------------------------------------------

    def process(
        self,
        fetched: Fetched,
        watchlist: WatchList,
        budget: _ChannelBudget,
        cycle_items: dict[int, int],
        followups: _CycleFollowups,
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
        wrote_signatures = False
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
            # New by link, GUID and text, but maybe a copy of a recent story.
            new_entries, merged = self.merger.find_copies(new_entries, now)
            for copy in merged:
                seen_again.append((copy.item_id, copy.entry.keys))  # its keys find the story now
                known_entries.append((copy.entry, copy.item_id))
                log.info(
                    "%s (score %.2f)", copy.match.describe(copy.entry.keys[0]), copy.match.score
                )
            outcome.merged = len(merged)
            item_ids = self.store.insert_items(row.id, [(e.item, e.keys) for e in new_entries], now)
            outcome.new_items = len(new_entries) + len(merged)
            self.record_merges(row, analyzed.source, new_entries, item_ids, merged, now)
            outcome.followups = self.queue_followups(row, analyzed.source, merged, followups, now)
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
            wrote_signatures = bool(new_entries or merged)
        if wrote_signatures:
            self.merger.refresh(now)  # committed: later feeds of this cycle may merge into them
        return outcome

    def record_merges(
        self,
        row: FeedRow,
        source: str,
        new_entries: Sequence[AnalyzedItem],
        item_ids: Sequence[int],
        merged: Sequence[Merged],
        now: float,
    ) -> None:
        """Signatures of the new items and copies (the merge index is rebuilt
        from them), and each copy with the reason it merged (for status)."""
        stories = [*zip(new_entries, item_ids, strict=True)]
        stories += [(copy.entry, copy.item_id) for copy in merged]
        self.store.add_signatures(self.merger.rows_for(stories, now))
        self.store.add_story_copies(
            [
                StoryCopy(
                    item_id=copy.item_id,
                    item_key=copy.entry.keys[0],
                    feed_id=row.id,
                    source=copy.entry.item.source_name or source,
                    title=copy.entry.item.title,
                    link=copy.entry.item.link,
                    like_key=copy.match.item,
                    score=copy.match.score,
                    reason=copy.match.reason,
                    merged_at=now,
                )
                for copy in merged
            ]
        )

    def queue_followups(
        self,
        row: FeedRow,
        source: str,
        merged: Sequence[Merged],
        followups: _CycleFollowups,
        now: float,
    ) -> int:
        """An "Also reported by" line for each channel that watches this
        feed, matched the copy and already got the story as a single alert
        (a story in a digest has no message of its own to answer). A feed
        that carried the story before (an updated headline) is no new source."""
        if not merged:
            return 0
        stories = [copy.item_id for copy in merged]
        carried = self.store.carried_by(row.id, stories)
        parents = self.store.single_alerts(stories)
        lines = []
        for copy in merged:
            if copy.item_id in carried:
                continue
            for draft in copy.entry.alerts:
                parent = parents.get((draft.channel, copy.item_id))
                if parent is None or not self.config.followups_for(draft.channel):
                    continue
                outbox_id = followups.outbox_for(draft.channel, copy.item_id, parent, now)
                lines.append(
                    FollowupLine(
                        outbox_id=outbox_id,
                        parent_id=parent,
                        channel=draft.channel,
                        item_id=copy.item_id,
                        source=copy.entry.item.source_name or source,
                        title=copy.entry.item.title,
                        link=copy.entry.item.link,
                    )
                )
        return self.store.add_followup_lines(lines)

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

    def finish_followups(self) -> int:
        """Turn this cycle's assembling follow-ups into sendable messages:
        the sources new this cycle, and (for an edited alert) the earlier ones."""
        finished = 0
        for message in self.store.assembling(FOLLOWUP):
            new = self.store.followup_outbox_lines(message.id)
            if not new:
                self.store.discard_outbox(message.id)  # every source was reported before
                continue
            parent = int(message.payload["parent"])
            earlier = [
                line
                for line in self.store.followup_lines(parent, up_to_outbox=message.id)
                if line.outbox_id != message.id
            ]
            payload = followup_payload(
                parent,
                [vars_of(line) for line in new],
                [vars_of(line) for line in earlier],
            )
            self.store.finish_digest(message.id, payload)
            finished += 1
        return finished

    def finish_digests(self) -> int:
        """Turn this cycle's assembling digests into sendable messages."""
        finished = 0
        names = {feed.url: feed.name for feed in self.config.feeds if feed.name}
        for digest in self.store.assembling_digests():
            payload = digest_payload(self.store.digest_entries(digest.id), names)
            self.store.finish_digest(digest.id, payload)
            finished += 1
        return finished
