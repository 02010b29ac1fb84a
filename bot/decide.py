"""The per-feed decision of a poll cycle (pure): which stories alert which
channel (single or in the digest), which are held back and why, which
become "Also reported by" follow-ups.

The cycle (bot/poll.py) gathers the inputs from the database — which story
each entry is, whether this feed carried it before, which channels already
have it — and commits the output; everything in between is here, over
typed rows, with table tests (tests/test_decide.py). SPEC §4 and §8:

* a story new to newshound is offered to every channel whose watch matched;
* a known story (the same link/GUID/text, or a near-duplicate copy) that
  this feed carries for the first time is offered to the channels that do
  not have it yet (they may not watch the feed that brought it first); a
  feed read before newshound tracked what feeds carry offers nothing old;
* an offered story alerts only when it is eligible (max_age, first poll);
  a held-back story is counted once per cycle, by the feed that brought it;
* a channel takes single alerts while its budget for the cycle lasts, the
  rest go into its digest;
* a copy from a feed that did not carry the story before answers each
  channel's single alert for it with a follow-up, unless the channel turned
  follow-ups off.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.analyze import AnalyzedItem
from bot.models import Item

# Why a matching item did not alert (SPEC §4), as counted in FeedOutcome.held_back.
TOO_OLD = "older than max_age"
UNDATED_ON_FIRST_POLL = "undated on a feed's first poll"


class Seen(enum.Enum):
    NEW = "new"  # no story had any of its keys: a new story (already stored)
    KNOWN = "known"  # a stored story had one of its keys
    COPY = "copy"  # new by its keys, but a near-duplicate of a stored story


@dataclass(frozen=True)
class StoryRow:
    """One entry of the feed document and what the database knows of its story."""

    entry: AnalyzedItem
    item_id: int
    seen: Seen
    carried_before: bool = False  # this feed carried the story in an earlier read
    alerted: frozenset[str] = frozenset()  # channels that already have the story
    single_alerts: Mapping[str, int] | None = None  # channel -> its single alert's outbox id
    first_in_cycle: bool = True  # no other feed brought the story earlier this cycle
    source: str = ""  # the outlet, for "Also reported by"


@dataclass(frozen=True)
class FeedFacts:
    now: float
    max_age: float  # seconds, 0 = no limit
    first_poll: bool
    tracks_carriage: bool = True  # False: read before feed_items existed, records only
    singles_left: Mapping[str, int] | None = None  # channel -> single alerts left this cycle
    followups_off: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AlertDecision:
    channel: str
    item_id: int
    terms: tuple[str, ...]
    payload: dict[str, Any]
    single: bool  # False: it goes into the channel's digest


@dataclass(frozen=True)
class FollowupDecision:
    channel: str
    item_id: int
    parent: int  # outbox id of the alert it answers
    source: str
    title: str
    link: str | None


@dataclass(frozen=True)
class FeedDecision:
    alerts: tuple[AlertDecision, ...] = ()
    followups: tuple[FollowupDecision, ...] = ()
    held_back: tuple[str, ...] = ()  # one reason per held-back story
    offered: tuple[int, ...] = ()  # stories offered to channels (the cycle notes their feed)


def ineligible_reason(item: Item, *, first_poll: bool, max_age: float, now: float) -> str | None:
    """Why a new item may not alert, or None when it may. SPEC §4: on a feed's
    first poll only recent dated items alert; later polls alert undated
    newcomers too; nothing older than max_age ever does."""
    if item.published is None:
        return UNDATED_ON_FIRST_POLL if first_poll else None
    if max_age > 0 and item.published < now - max_age:
        return TOO_OLD
    return None


def offers(facts: FeedFacts, stories: Sequence[StoryRow]) -> list[StoryRow]:
    """The stories to offer to channels: every new one; a known one (or a
    copy) only when this feed carries it for the first time and it matched
    some watch, once per story."""
    offered = [story for story in stories if story.seen is Seen.NEW]
    if not facts.tracks_carriage:
        return offered
    taken: set[int] = set()
    for story in stories:
        if story.seen is Seen.NEW or story.carried_before or not story.entry.alerts:
            continue
        if story.item_id not in taken:  # a story repeated in the feed: once
            taken.add(story.item_id)
            offered.append(story)
    return offered


def decide_feed(facts: FeedFacts, stories: Sequence[StoryRow]) -> FeedDecision:
    left = dict(facts.singles_left or {})
    alerts: list[AlertDecision] = []
    held_back: list[str] = []
    offered = offers(facts, stories)
    for story in offered:
        item = story.entry.item
        reason = ineligible_reason(
            item, first_poll=facts.first_poll, max_age=facts.max_age, now=facts.now
        )
        if reason is not None:
            # Counted once per story and cycle, by the feed that brought it.
            if story.entry.alerts and not story.alerted and story.first_in_cycle:
                held_back.append(reason)
            continue
        for draft in story.entry.alerts:
            if draft.channel in story.alerted:
                continue  # one alert per (channel, story), whichever feed
            single = left.get(draft.channel, 0) > 0
            if single:
                left[draft.channel] -= 1
            alerts.append(
                AlertDecision(draft.channel, story.item_id, draft.terms, draft.payload, single)
            )
    return FeedDecision(
        alerts=tuple(alerts),
        followups=tuple(followups(facts, stories)),
        held_back=tuple(held_back),
        offered=tuple(story.item_id for story in offered),
    )


def followups(facts: FeedFacts, stories: Sequence[StoryRow]) -> list[FollowupDecision]:
    """A follow-up for each channel that matched a copy from a new source
    (this feed never carried the story: an updated headline in the same
    feed is no new source) and has the story as a single alert (a story in
    a digest has no message of its own to answer)."""
    found = []
    for story in stories:
        if story.seen is not Seen.COPY or story.carried_before:
            continue
        parents = story.single_alerts or {}
        for draft in story.entry.alerts:
            parent = parents.get(draft.channel)
            if parent is None or draft.channel in facts.followups_off:
                continue
            item = story.entry.item
            found.append(
                FollowupDecision(
                    draft.channel, story.item_id, parent, story.source, item.title, item.link
                )
            )
    return found
