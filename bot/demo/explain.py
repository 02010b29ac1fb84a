"""Why items that came close to a watch term did not alert, for the demo's summary.

Built only on the public query and matcher API (a term with and without its
exclusions, each exclusion on its own, the term's words as plain text), so it
explains the matcher's decisions without depending on how matching works.
Items held back for their age are counted by the poller itself
(`CycleReport.held_back`); this covers what the matcher decided.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from bot.match import Matcher, document_fields
from bot.models import Item
from bot.query import Phrase, Query, QueryError, fold, parse_query
from bot.watchlist import WatchEntry

PARTIAL_WORD = "only a partial word match"
NOT_CAPITALS = "an acronym not written in capitals"


def excluded_by(phrase: Phrase) -> str:
    words = " ".join(phrase.words)
    return f"excluded by -{words}" if len(phrase.words) == 1 else f'excluded by -"{words}"'


def near_miss(item: Item, feed_url: str, watches: Sequence[WatchEntry]) -> str | None:
    """Why `item` from `feed_url` matches none of `watches` although it came
    close: a term matched but one of its exclusions did too ("excluded by
    -rumor"), or a term's words occur only inside longer words ("tariff" in
    "tariffication": only a partial word match). None when no term matches
    at all, and when one fully matches (then something else held it back)."""
    fields = document_fields(item)
    queries: list[Query] = []
    for _channel, term, scope in watches:
        if scope is not None and feed_url not in scope:
            continue
        try:
            queries.append(parse_query(term))
        except QueryError:
            continue  # the watch list skips it too
    if any(_matches(query, fields) for query in queries):
        return None
    for query in queries:
        if query.exclude and _matches(dataclasses.replace(query, exclude=()), fields):
            for phrase in query.exclude:
                if _matches(Query(query.text, include=(phrase,)), fields):
                    return excluded_by(phrase)
    text = " ".join(fold(" ".join(fields.values())).split()).casefold()
    for query in queries:
        for phrase in query.include:
            words = " ".join(phrase.words).casefold()
            if words not in text:
                continue
            # "US" in "let us know": the whole word is there, in lower case.
            whole = re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text)
            return NOT_CAPITALS if query.acronyms and whole else PARTIAL_WORD
    return None


def _matches(query: Query, fields: dict[str, str]) -> bool:
    return bool(Matcher([(0, query)]).match_fields(fields))
