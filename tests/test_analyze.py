"""The pure per-feed analysis that runs in the parser workers."""

from __future__ import annotations

import pickle

import pytest

from bot.analyze import analyze, display_name
from bot.models import Item, ParsedFeed
from bot.watchlist import WatchList

WATCH = WatchList(
    [
        ("C0TRADE0001", "trade deal", None),
        ("C0TRADE0001", "tariff", None),
        ("C0CHIPS0001", "semiconductor -rumor", frozenset({"https://chips.example/feed"})),
    ]
)


def feed(*items: Item, title: str | None = "Wire") -> ParsedFeed:
    return ParsedFeed(title=title, items=items)


def test_items_come_newest_first_with_story_keys() -> None:
    parsed = feed(
        Item(title="old", link="https://n.example/old", published=100.0),
        Item(title="undated", link="https://n.example/undated"),
        Item(title="new", link="https://n.example/new?utm_source=x", published=200.0),
    )
    analyzed = analyze(parsed, WATCH, feed_url="https://n.example/rss", feed_name=None)
    assert [a.item.title for a in analyzed.items] == ["new", "old", "undated"]
    assert analyzed.items[0].keys[0] == "link:n.example/new"
    assert analyzed.source == "Wire"


def test_all_matching_terms_of_a_channel_go_into_one_draft() -> None:
    item = Item(title="Trade deal cuts tariffs", link="https://n.example/a", summary="tariff talk")
    analyzed = analyze(feed(item), WATCH, feed_url="https://n.example/rss", feed_name="Desk")
    (entry,) = analyzed.items
    (draft,) = entry.alerts
    assert draft.channel == "C0TRADE0001"
    assert draft.terms == ("trade deal", "tariff")
    assert draft.payload["source"] == "Desk"
    assert [t for t, bold in draft.payload["snippet"] if bold] == ["tariff"]


@pytest.mark.parametrize(
    ("feed_url", "title", "channels"),
    [
        ("https://chips.example/feed", "Semiconductor output rises", ["C0CHIPS0001"]),
        ("https://other.example/feed", "Semiconductor output rises", []),  # out of scope
        ("https://chips.example/feed", "Semiconductor rumors swirl", []),  # excluded
    ],
)
def test_feed_scopes_and_exclusions(feed_url: str, title: str, channels: list[str]) -> None:
    analyzed = analyze(
        feed(Item(title=title, link="https://c.example/1")),
        WATCH,
        feed_url=feed_url,
        feed_name=None,
    )
    assert [d.channel for d in analyzed.items[0].alerts] == channels


def test_reused_guids_identify_nothing() -> None:
    # Some feeds put the home page URL in every <guid>: those items stay distinct.
    items = [Item(title=f"story {n}", guid="https://n.example/", summary=str(n)) for n in range(3)]
    analyzed = analyze(feed(*items), WATCH, feed_url="https://n.example/rss", feed_name=None)
    assert len({a.keys[0] for a in analyzed.items}) == 3


@pytest.mark.parametrize(
    ("name", "title", "url", "expected"),
    [
        ("Desk", "Wire", "https://n.example/rss", "Desk"),
        (None, "Wire", "https://n.example/rss", "Wire"),
        (None, None, "https://n.example/rss", "n.example"),
    ],
)
def test_display_name(name: str | None, title: str | None, url: str, expected: str) -> None:
    assert display_name(name, title, url) == expected


def test_watchlist_is_reused_for_the_same_entries() -> None:
    entries = (("C0TRADE0001", "tariff", None),)
    assert WatchList.cached(entries) is WatchList.cached(tuple(entries))


def test_watch_list_travels_to_workers_parsed() -> None:
    """The poller sends its WatchList to the parser workers pickled: the
    parsed terms and scopes arrive (nothing is parsed again there) and match
    exactly as the original does, whether or not its matcher was built."""
    item = Item(title="Chips and tariffs: India trade deal", link="https://n.example/1")
    before = WATCH.channels_for(item, "https://feed.example/")
    assert before  # the item does match
    for original in (WATCH, WatchList(WATCH.entries)):  # matcher built / not yet
        copy = pickle.loads(pickle.dumps(original))
        assert copy.entries == original.entries and copy.scopes == original.scopes
        assert copy.channels_for(item, "https://feed.example/") == before
