"""bot/demo/explain.py: why an item that came close to a watch term did not
alert (table-driven, real query parser and matcher)."""

from __future__ import annotations

import pytest

from bot.demo.explain import NOT_CAPITALS, PARTIAL_WORD, near_miss
from bot.models import Item

FEED = "https://feeds.example/markets.xml"
OTHER_FEED = "https://feeds.example/world.xml"


def item(title: str, summary: str = "") -> Item:
    return Item(title=title, summary=summary)


@pytest.mark.parametrize(
    ("term", "title", "why"),
    [
        (
            "semiconductor -rumor",
            "Semiconductor merger rumor lifts small caps",
            "excluded by -rumor",
        ),
        ("semiconductor -rumor", "Semiconductor rumors swirl", "excluded by -rumor"),
        ('chips -"price war"', "Chips slide as a price war looms", 'excluded by -"price war"'),
        ("tariff", "No tariffication of spare parts is planned", PARTIAL_WORD),
        ("Pax Silica", "The paxsilicate mineral was found", None),  # words apart in the term
        ("trade deal", "Dealer networks report strong bookings", None),
        ("tariff", "Steel tariffs rise", None),  # a full match: not a near miss
        ("semiconductor -rumor", "Oil slips as inventories build", None),
    ],
)
def test_near_miss(term: str, title: str, why: str | None) -> None:
    assert near_miss(item(title), FEED, [("C0CHIPSDESK", term, None)]) == why


def test_a_full_match_of_another_term_is_no_near_miss() -> None:
    watches = [("C0A", "semiconductor -rumor", None), ("C0B", "merger", None)]
    assert near_miss(item("Semiconductor merger rumor"), FEED, watches) is None


def test_terms_scoped_to_other_feeds_are_ignored() -> None:
    watches = [("C0A", "semiconductor -rumor", frozenset({OTHER_FEED}))]
    assert near_miss(item("Semiconductor merger rumor"), FEED, watches) is None
    assert near_miss(item("Semiconductor merger rumor"), OTHER_FEED, watches) == (
        "excluded by -rumor"
    )


def test_an_acronym_found_in_lower_case_is_explained_as_such() -> None:
    assert near_miss(item("Let us know what you think"), FEED, [("C1", "US", None)]) == NOT_CAPITALS
    assert near_miss(item("Markets rebound"), FEED, [("C1", "US", None)]) is None
