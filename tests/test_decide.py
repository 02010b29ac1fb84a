"""bot/decide.py: the per-feed decision over typed rows, as a table."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.analyze import AlertDraft, AnalyzedItem
from bot.decide import (
    TOO_OLD,
    UNDATED_ON_FIRST_POLL,
    FeedFacts,
    Seen,
    StoryRow,
    decide_feed,
)
from bot.models import Item

NOW = 1_800_000_000.0
DAY = 86400.0


def entry(title: str, *channels: str, published: float | None = NOW - 60) -> AnalyzedItem:
    item = Item(title=title, link=f"https://news.example/{title}", published=published)
    drafts = tuple(AlertDraft(c, ("term",), {"title": title}) for c in channels)
    return AnalyzedItem(item, (f"link:{title}",), (f"link:{title}",), drafts)


@dataclass(frozen=True)
class Case:
    stories: list[StoryRow]
    singles_left: dict[str, int] = field(default_factory=lambda: {"A": 10, "B": 10})
    first_poll: bool = False
    tracks_carriage: bool = True
    followups_off: frozenset[str] = frozenset()
    # expected: (channel, item id, single) per alert; (channel, item id, parent) per follow-up
    alerts: list[tuple[str, int, bool]] = field(default_factory=list)
    followups: list[tuple[str, int, int]] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)


CASES = {
    "a new story alerts every matching channel": Case(
        [StoryRow(entry("n", "A", "B"), 1, Seen.NEW)],
        alerts=[("A", 1, True), ("B", 1, True)],
    ),
    "a new story nobody matched alerts nobody": Case([StoryRow(entry("n"), 1, Seen.NEW)]),
    "past the budget a channel's alerts go into its digest": Case(
        [StoryRow(entry(f"n{i}", "A"), i, Seen.NEW) for i in range(3)],
        singles_left={"A": 2},
        alerts=[("A", 0, True), ("A", 1, True), ("A", 2, False)],
    ),
    "too old: held back, counted once": Case(
        [StoryRow(entry("old", "A", "B", published=NOW - 3 * DAY), 1, Seen.NEW)],
        held_back=[TOO_OLD],
    ),
    "undated on a first poll: held back": Case(
        [StoryRow(entry("u", "A", published=None), 1, Seen.NEW)],
        first_poll=True,
        held_back=[UNDATED_ON_FIRST_POLL],
    ),
    "undated on a later poll: alerts": Case(
        [StoryRow(entry("u", "A", published=None), 1, Seen.NEW)], alerts=[("A", 1, True)]
    ),
    "held back by the feed that brought it, not counted by a later one": Case(
        [StoryRow(entry("old", "A", published=NOW - 3 * DAY), 1, Seen.KNOWN, first_in_cycle=False)],
    ),
    "a known story this feed carried before: nothing": Case(
        [StoryRow(entry("k", "A"), 1, Seen.KNOWN, carried_before=True)]
    ),
    "a known story new to this feed: only channels that lack it": Case(
        [StoryRow(entry("k", "A", "B"), 1, Seen.KNOWN, alerted=frozenset({"A"}))],
        alerts=[("B", 1, True)],
    ),
    "a story repeated in the feed is offered once": Case(
        [StoryRow(entry("k", "B"), 1, Seen.KNOWN), StoryRow(entry("k2", "B"), 1, Seen.KNOWN)],
        alerts=[("B", 1, True)],
    ),
    "a feed read before carriage was tracked offers nothing old": Case(
        [StoryRow(entry("k", "B"), 1, Seen.KNOWN), StoryRow(entry("n", "B"), 2, Seen.NEW)],
        tracks_carriage=False,
        alerts=[("B", 2, True)],
    ),
    "a copy answers the single alert with a follow-up": Case(
        [
            StoryRow(
                entry("c", "A"),
                1,
                Seen.COPY,
                alerted=frozenset({"A"}),
                single_alerts={"A": 7},
                source="Outlet",
            )
        ],
        followups=[("A", 1, 7)],
    ),
    "a copy in a feed that carried the story (updated headline): no follow-up": Case(
        [
            StoryRow(
                entry("c", "A"),
                1,
                Seen.COPY,
                carried_before=True,
                alerted=frozenset({"A"}),
                single_alerts={"A": 7},
            )
        ],
    ),
    "a copy of a story that went into a digest: no follow-up": Case(
        [StoryRow(entry("c", "A"), 1, Seen.COPY, alerted=frozenset({"A"}), single_alerts={})],
    ),
    "followups off for the channel: no follow-up": Case(
        [StoryRow(entry("c", "A"), 1, Seen.COPY, alerted=frozenset({"A"}), single_alerts={"A": 7})],
        followups_off=frozenset({"A"}),
    ),
    "a copy alerts a channel that lacks the story and follows up the one that has it": Case(
        [
            StoryRow(
                entry("c", "A", "B"),
                1,
                Seen.COPY,
                alerted=frozenset({"A"}),
                single_alerts={"A": 7},
            )
        ],
        alerts=[("B", 1, True)],
        followups=[("A", 1, 7)],
    ),
    "a known (not copied) story never follows up": Case(
        [StoryRow(entry("k", "A"), 1, Seen.KNOWN, alerted=frozenset({"A"}), single_alerts={"A": 7})]
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_decide_feed(case: Case) -> None:
    facts = FeedFacts(
        now=NOW,
        max_age=2 * DAY,
        first_poll=case.first_poll,
        tracks_carriage=case.tracks_carriage,
        singles_left=case.singles_left,
        followups_off=case.followups_off,
    )
    decision = decide_feed(facts, case.stories)
    assert [(a.channel, a.item_id, a.single) for a in decision.alerts] == case.alerts
    assert [(f.channel, f.item_id, f.parent) for f in decision.followups] == case.followups
    assert list(decision.held_back) == case.held_back
    for alert in decision.alerts:
        assert alert.terms == ("term",)


def test_follow_up_names_the_copy() -> None:
    copy = StoryRow(
        entry("copy-title", "A"),
        3,
        Seen.COPY,
        alerted=frozenset({"A"}),
        single_alerts={"A": 9},
        source="Outlet B",
    )
    [followup] = decide_feed(FeedFacts(now=NOW, max_age=0, first_poll=False), [copy]).followups
    assert (followup.source, followup.title, followup.link) == (
        "Outlet B",
        "copy-title",
        "https://news.example/copy-title",
    )
