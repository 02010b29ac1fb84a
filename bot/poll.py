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

import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.analyze import AnalyzedItem
from bot.config import Config, FeedConfig
from bot.decide import FeedDecision, FeedFacts, Seen, StoryRow, decide_feed
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
from bot.models import FeedError
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
from bot.store import Conflict, FeedRow, FeedSuccess, FollowupLine, OutboxRow, Store, StoryCopy
from bot.watchlist import WatchList, watch_entries
from bot.worker import WorkShare, lease_seconds, worker_id

log = logging.getLogger(__name__)

# A feed whose transaction keeps losing races on story keys with other
# workers is left for the next cycle after this many tries.
CONFLICT_RETRIES = 3
# Feeds claimed ahead of the results processed, per fetch slot: enough that
# feeds waiting for a slow host never keep the others from being fetched.
CLAIM_AHEAD = 8
# How long a cycle's per-channel counts are kept (long after any cycle ends).
BUDGET_MEMORY = 24 * 3600.0

Clock = Callable[[], float]


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
    """`max_alerts_per_poll` single alerts per channel per cycle, counted in
    the database across every worker polling in the same cycle; the rest of
    the cycle's matches for that channel share one digest message."""

    def __init__(self, store: Store, limit: int, cycle: str) -> None:
        self.store = store
        self.limit = limit
        self.cycle = cycle

    def left(self, channels: Iterable[str], now: float) -> dict[str, int]:
        """Single alerts each of `channels` may still take this cycle. Inside
        the feed's transaction: the channels' counts stay locked until it ends."""
        wanted = sorted(set(channels))
        used = self.store.outbox.budget_used(self.cycle, wanted, now)
        return {channel: self.limit - used.get(channel, 0) for channel in wanted}

    def use(self, channels: Iterable[str]) -> None:
        self.store.outbox.spend_budget(self.cycle, Counter(channels))

    def digest_for(self, channel: str, now: float) -> int:
        # Written now (inside this feed's transaction) so the items are never
        # lost; it becomes sendable when the cycle is over for every worker.
        return self.store.outbox.assembling_for(
            f"digest:{channel}:{self.cycle}", channel, DIGEST, {"items": []}, self.cycle, now
        )


@dataclass
class _Cycle:
    """What one cycle's feeds share while it runs."""

    watchlist: WatchList
    budget: _ChannelBudget
    followups: _CycleFollowups
    items: dict[int, int] = field(default_factory=dict)  # item id -> feed that stored it


class _CycleFollowups:
    """One follow-up message per (channel, story) per cycle: opened (as
    `assembling`, inside the feed's transaction, so no line is lost) when
    the first later copy arrives, sendable when the cycle is over."""

    def __init__(self, store: Store, cycle: str) -> None:
        self.store = store
        self.cycle = cycle

    def outbox_for(self, channel: str, item_id: int, parent: int, now: float) -> int:
        return self.store.outbox.assembling_for(
            f"followup:{channel}:{item_id}:{self.cycle}",
            channel,
            FOLLOWUP,
            {"parent": parent},
            self.cycle,
            now,
        )


def feed_display_name(feed: FeedConfig, row: FeedRow | None) -> str:
    return display_name(feed.name, row.title if row is not None else None, feed.url)


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
        worker: str | None = None,
        cycle_period: float | None = None,
    ) -> None:
        """worker: this process's id among the workers on the database (made
        up when not given). cycle_period: the scheduler's tick in `run`, so
        workers whose ticks fall in the same period share a cycle's budget
        and digests; None (a one-off poll) makes the cycle its own."""
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
        self.share = WorkShare(
            store,
            worker or worker_id(),
            lease=lease_seconds(config.settings, CLAIM_AHEAD * workers, workers),
            batch=2 * workers,
            ahead=CLAIM_AHEAD * workers,
            cycle_period=cycle_period,
        )

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
        share = self.share
        cycle = share.cycle_key(started)
        share.join(cycle, started)
        self.store.meta.forget_cycles(started)  # places of workers that died
        # Cycles that crashed, or that every other worker has left.
        self.finish_assembled(started)
        self.merger.refresh(started, new_cycle=True)  # rows others stored since our last cycle
        self.store.feeds.sync([f.url for f in self.config.feeds])
        rows = self.store.feeds.all()  # read once: for due feeds and for feed titles
        candidates = self.due_feeds(started, all_feeds=all_feeds, rows=rows)
        watchlist = self.watchlist(rows)
        self.runner.set_watch(watchlist)
        state = _Cycle(
            watchlist,
            _ChannelBudget(self.store, self.config.settings.max_alerts_per_poll, cycle),
            _CycleFollowups(self.store, cycle),
        )
        report = CycleReport()
        claimed: set[int] = set()  # held by this worker and not yet processed

        def claim_as_needed() -> Iterator[tuple[FeedConfig, FeedRow]]:
            # Claimed a batch at a time, when the runner gets to them: the
            # other workers take the batches this one has not reached yet.
            size = len(candidates) if in_order else share.batch
            for offset in range(0, len(candidates), max(1, size)):
                now = self.clock()
                share.join(cycle, now)
                batch = share.claim(
                    candidates[offset : offset + size],
                    now,
                    lambda feed, row, at: all_feeds or self.is_due(feed, row, at),
                )
                claimed.update(row.id for _, row in batch)
                yield from batch

        try:
            feeds = claim_as_needed()
            if in_order:
                ordered = list(feeds)
                results = in_feed_order(self.runner.fetch_all(ordered), ordered)
            else:
                results = iter(self.runner.fetch_all(feeds, ahead=share.ahead))
            for fetched in results:
                if should_stop():
                    break
                outcome = self.process_sharing(fetched, state)
                claimed.discard(fetched.row.id)
                report.feeds.append(outcome)
        finally:
            self.store.feeds.record_successes(self._unchanged)
            self._unchanged = []
            share.release(sorted(claimed))  # not polled after all: due again now
            share.leave(cycle)
        report.digests, report.followups = self.finish_assembled(self.clock())
        # Stories no feed has carried for `retention` are forgotten; anything
        # still in a feed keeps being touched, so its dedup never lapses.
        live = {feed.url for feed in self.config.feeds}
        with contextlib.suppress(Conflict):  # another worker is pruning them right now
            report.pruned = self.store.stories.prune(
                self.clock() - self.config.settings.retention,
                live_feeds=[row.id for row in rows if row.url in live],
            )
        self.store.outbox.forget_budgets(started - BUDGET_MEMORY)
        report.duration = self.clock() - started
        self.store.meta.set("last_cycle_at", repr(self.clock()))
        return report

    def process_sharing(
        self,
        fetched: Fetched,
        cycle: _Cycle,
    ) -> FeedOutcome:
        """`process`, run again when a worker polling another feed at the
        same moment won a race for one of its stories (the transaction was
        rolled back whole; run again, the story is simply known)."""
        for _attempt in range(CONFLICT_RETRIES):
            try:
                return self.process(fetched, cycle)
            except Conflict as exc:
                log.info("feed %s: %s; processing it again", fetched.feed.url, exc)
        feed, row = fetched.feed, fetched.row
        self.store.feeds.release([row.id], owner=self.share.worker)
        return FeedOutcome(
            feed.url,
            feed_display_name(feed, row),
            "cancelled",
            error="kept losing races with other workers; it is polled again next cycle",
        )

    def watchlist(self, rows: Sequence[FeedRow] | None = None) -> WatchList:
        rows = self.store.feeds.all() if rows is None else rows
        titles = {row.url: row.title for row in rows if row.title}
        return WatchList.cached(watch_entries(self.config, self.store.terms.all(), titles))

    def due_feeds(
        self, now: float, *, all_feeds: bool, rows: Sequence[FeedRow] | None = None
    ) -> list[tuple[FeedConfig, FeedRow]]:
        by_url = {row.url: row for row in (self.store.feeds.all() if rows is None else rows)}
        due = []
        for feed in self.config.feeds:
            row = by_url[feed.url]
            if all_feeds or self.is_due(feed, row, now):
                due.append((feed, row))
        return due

    def is_due(self, feed: FeedConfig, row: FeedRow, now: float) -> bool:
        return not row.gone and effective_next_check(feed, row, self.config) <= now

    # -- one feed ----------------------------------------------------------

    def process(
        self,
        fetched: Fetched,
        cycle: _Cycle,
    ) -> FeedOutcome:
        feed, row = fetched.feed, fetched.row
        now = self.clock()
        name = feed_display_name(feed, row)
        if fetched.error is CANCELLED:
            return FeedOutcome(feed.url, name, "cancelled", error=CANCELLED.message)
        if fetched.error is not None:
            return self.record_failure(feed, row, fetched.error, now, cycle.watchlist)
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
                    self.record_recovery(feed, row, name, cycle.watchlist, now)
                    self.store.feeds.record_successes([success])
            status = "not_modified" if result.not_modified else "unchanged"
            return FeedOutcome(feed.url, name, status)

        name = analyzed.source
        outcome = FeedOutcome(feed.url, name, "ok", items=len(analyzed.items))
        wrote_signatures = False
        with self.store.transaction():
            # A few batched statements per feed: one lookup of all story keys
            # (most items of a feed are known), then one insert per table.
            known_keys = self.store.stories.find_many(
                [k for a in analyzed.items for k in a.lookups]
            )
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
                    if cycle.items.get(known, row.id) != row.id:
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
            item_ids = self.store.stories.insert(
                row.id, [(e.item, e.keys) for e in new_entries], now
            )
            outcome.new_items = len(new_entries) + len(merged)
            self.record_merges(row, analyzed.source, new_entries, item_ids, merged, now)
            stories = self.story_rows(
                row, analyzed.source, new_entries, item_ids, known_entries, merged, cycle.items
            )
            decision = decide_feed(
                FeedFacts(
                    now=now,
                    max_age=self.config.settings.max_age,
                    first_poll=row.first_polled_at is None,
                    tracks_carriage=row.first_polled_at is None or row.items_seen_at is not None,
                    singles_left=cycle.budget.left(
                        (d.channel for story in stories for d in story.entry.alerts), now
                    ),
                    followups_off=frozenset(
                        draft.channel
                        for copy in merged
                        for draft in copy.entry.alerts
                        if not self.config.followups_for(draft.channel)
                    ),
                ),
                stories,
            )
            outcome.held_back.update(decision.held_back)
            self.commit_alerts(decision, cycle.budget, now)
            outcome.alerts = len(decision.alerts)
            outcome.followups = self.commit_followups(decision, cycle.followups, now)
            self.store.stories.touch(seen_again, now)
            self.store.stories.record_carried(row.id, [*item_ids, *(i for i, _ in seen_again)], now)
            self.record_recovery(feed, row, name, cycle.watchlist, now)
            self.store.feeds.record_successes(
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
        for item_id in decision.offered:  # committed: later feeds of this cycle see them
            cycle.items.setdefault(item_id, row.id)
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
        self.store.stories.add_signatures(self.merger.rows_for(stories, now))
        self.store.stories.add_copies(
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

    def story_rows(
        self,
        row: FeedRow,
        source: str,
        new_entries: Sequence[AnalyzedItem],
        item_ids: Sequence[int],
        known_entries: Sequence[tuple[AnalyzedItem, int]],
        merged: Sequence[Merged],
        cycle_items: dict[int, int],
    ) -> list[StoryRow]:
        """The decision's input: each entry with what the database knows of
        its story (carried by this feed before, channels that have it)."""
        stories = [
            StoryRow(entry, item_id, Seen.NEW, source=entry.item.source_name or source)
            for entry, item_id in zip(new_entries, item_ids, strict=True)
        ]
        copies = {id(copy.entry) for copy in merged}
        seen = [item_id for _, item_id in known_entries]
        if not seen:
            return stories
        carried = self.store.stories.carried_by(row.id, seen)
        # Who has the story matters only for entries some channel matched.
        matched = [item_id for entry, item_id in known_entries if entry.alerts]
        alerted: dict[int, set[str]] = {}
        for channel, item_id in self.store.outbox.alerted(matched):
            alerted.setdefault(item_id, set()).add(channel)
        singles: dict[int, dict[str, int]] = {}
        for (channel, item_id), outbox_id in self.store.outbox.single_alerts(matched).items():
            singles.setdefault(item_id, {})[channel] = outbox_id
        for entry, item_id in known_entries:
            stories.append(
                StoryRow(
                    entry,
                    item_id,
                    Seen.COPY if id(entry) in copies else Seen.KNOWN,
                    carried_before=item_id in carried,
                    alerted=frozenset(alerted.get(item_id, ())),
                    single_alerts=singles.get(item_id, {}),
                    first_in_cycle=cycle_items.get(item_id, row.id) == row.id,
                    source=entry.item.source_name or source,
                )
            )
        return stories

    def commit_alerts(self, decision: FeedDecision, budget: _ChannelBudget, now: float) -> None:
        """The decided alerts into the outbox: singles first, so a digest
        opened now is queued behind them."""
        singles = [a for a in decision.alerts if a.single]
        budget.use(a.channel for a in singles)
        single_ids = iter(
            self.store.outbox.add_many([(a.channel, ALERT, a.payload) for a in singles], now)
        )
        self.store.outbox.add_alerts(
            [
                (
                    a.channel,
                    a.item_id,
                    a.terms,
                    next(single_ids) if a.single else budget.digest_for(a.channel, now),
                )
                for a in decision.alerts
            ],
            now,
        )

    def commit_followups(
        self, decision: FeedDecision, followups: _CycleFollowups, now: float
    ) -> int:
        """The decided "Also reported by" lines, each in its (channel, story)
        follow-up of this cycle; a source already reported is left out."""
        return self.store.outbox.add_followup_lines(
            [
                FollowupLine(
                    outbox_id=followups.outbox_for(f.channel, f.item_id, f.parent, now),
                    parent_id=f.parent,
                    channel=f.channel,
                    item_id=f.item_id,
                    source=f.source,
                    title=f.title,
                    link=f.link,
                )
                for f in decision.followups
            ]
        )

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
            self.store.feeds.record_failure(
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
            self.store.outbox.add(channel, NOTICE, notice_payload(text), now)

    def record_recovery(
        self, feed: FeedConfig, row: FeedRow, name: str, watchlist: WatchList, now: float
    ) -> None:
        """Inside the success transaction: one notice when a suspended feed works again."""
        if row.suspended_at is not None:
            self.notify(watchlist, feed.url, recovery_notice(name), now)

    def finish_assembled(self, now: float) -> tuple[int, int]:
        """Digests and follow-ups of cycles no live worker is polling in any
        more become sendable: (digests, follow-ups) finished."""
        return self.finish_digests(now), self.finish_followups(now)

    def _finishable(self, kind: str, now: float) -> list[OutboxRow]:
        open_ = self.store.outbox.assembling(kind)
        done = self.share.finishable([m.cycle_key for m in open_], now)
        return [m for m in open_ if m.cycle_key in done]

    def finish_followups(self, now: float) -> int:
        """Follow-ups: the sources new this cycle, and (for an edited alert) the earlier ones."""
        finished = 0
        for message in self._finishable(FOLLOWUP, now):
            with self.store.transaction():
                if not self.store.outbox.lock_assembling(message.id):
                    continue  # another worker finished it
                new = self.store.outbox.followup_outbox_lines(message.id)
                if not new:
                    self.store.outbox.discard(message.id)  # every source was reported before
                    continue
                parent = int(message.payload["parent"])
                earlier = [
                    line
                    for line in self.store.outbox.followup_lines(parent, up_to_outbox=message.id)
                    if line.outbox_id != message.id
                ]
                payload = followup_payload(
                    parent,
                    [vars_of(line) for line in new],
                    [vars_of(line) for line in earlier],
                )
                self.store.outbox.finish(message.id, payload)
                finished += 1
        return finished

    def finish_digests(self, now: float) -> int:
        finished = 0
        names = {feed.url: feed.name for feed in self.config.feeds if feed.name}
        for digest in self._finishable(DIGEST, now):
            with self.store.transaction():
                # Waits for any worker still adding to it in an open transaction.
                if not self.store.outbox.lock_assembling(digest.id):
                    continue
                payload = digest_payload(self.store.outbox.digest_entries(digest.id), names)
                self.store.outbox.finish(digest.id, payload)
                finished += 1
        return finished
