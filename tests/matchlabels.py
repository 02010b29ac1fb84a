"""Precision and recall of matching over the labelled pairs in
fixtures/match_labels.tsv (SPEC §3: acronyms, symbols, word forms, scripts,
feed boilerplate).

Every pair goes through the product path: its title and summary become an RSS
item, `bot.parse.parse_feed` turns the document into items (HTML, URLs and
boilerplate removed) and one `Matcher` compiled over all the terms decides.
Used by tests/test_match_quality.py (thresholds) and
benchmarks/match_quality.py (prints the figures).
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from feedgen import FeedEntry, rss

from bot.match import Matcher
from bot.parse import parse_feed
from bot.query import Query, QueryError, parse_query

LABELS = Path(__file__).parent / "fixtures" / "match_labels.tsv"


@dataclass(frozen=True)
class Pair:
    expect: bool  # should the term alert on this item?
    lang: str
    term: str
    title: str
    summary: str


@dataclass
class Score:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0
    misses: list[Pair] = field(default_factory=list)  # should alert, did not
    false_alarms: list[Pair] = field(default_factory=list)  # alerted, should not

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0

    def add(self, pair: Pair, matched: bool) -> None:
        if pair.expect and matched:
            self.true_positives += 1
        elif pair.expect:
            self.false_negatives += 1
            self.misses.append(pair)
        elif matched:
            self.false_positives += 1
            self.false_alarms.append(pair)
        else:
            self.true_negatives += 1


def load_pairs(path: Path = LABELS) -> list[Pair]:
    """The labelled pairs; lines starting with "#" are comments."""
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    pairs = []
    for row in reader:
        if row["expect"] not in ("+", "-"):
            raise ValueError(f"expect must be + or -: {row}")
        pairs.append(
            Pair(
                expect=row["expect"] == "+",
                lang=row["lang"],
                term=row["term"],
                title=row["title"],
                summary=row["summary"] or "",
            )
        )
    return pairs


def _queries(terms: Iterable[str]) -> list[tuple[str, Query]]:
    """Parsed terms; a term the parser refuses matches nothing."""
    parsed = []
    for term in dict.fromkeys(terms):
        with contextlib.suppress(QueryError):
            parsed.append((term, parse_query(term)))
    return parsed


def evaluate(pairs: list[Pair]) -> tuple[Score, dict[str, Score]]:
    """The overall score and one per language."""
    body = rss(
        FeedEntry(title=p.title, summary=p.summary, guid=f"pair-{i}") for i, p in enumerate(pairs)
    )
    items = {
        item.guid: item
        for item in parse_feed(body, url="https://labels.example/feed", max_items=10_000).items
    }
    matcher = Matcher(_queries(p.term for p in pairs))
    total, by_lang = Score(), {}
    for i, pair in enumerate(pairs):
        matched = pair.term in matcher.match(items[f"pair-{i}"])
        total.add(pair, matched)
        by_lang.setdefault(pair.lang, Score()).add(pair, matched)
    return total, by_lang
