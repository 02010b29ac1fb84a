"""The labelled near-duplicate set (fixtures/neardup_stories.yaml) and the
pairwise precision/recall of a merging method over it; shared by
tests/test_neardup.py and benchmarks/neardup.py."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.text import searchable_text

FIXTURE = Path(__file__).parent / "fixtures" / "neardup_stories.yaml"
HOUR = 3600.0


@dataclass(frozen=True)
class LabelledItem:
    seen: float  # epoch-like seconds from the start of the set
    story: str  # the label: items with the same label are one story
    outlet: str
    title: str  # plain text, as the parser hands it on
    lead: str


def load_labelled() -> list[LabelledItem]:
    """Every item of the set, oldest first; HTML leads turned into plain text."""
    stories = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))["stories"]
    items = [
        LabelledItem(
            seen=item["hours"] * HOUR,
            story=story["id"],
            outlet=item["outlet"],
            title=searchable_text(item["title"], is_html=False),
            lead=searchable_text(item["lead"], is_html=bool(item.get("html"))),
        )
        for story in stories
        for item in story["items"]
    ]
    return sorted(items, key=lambda i: i.seen)


# Given the items so far (oldest first) and a new one, the position of the
# earlier item it merges into, or None.
Merger = Callable[[int], "int | None"]


def cluster(count: int, merge_into: Merger) -> list[int]:
    """Feed items 0..count-1 in order; each joins the cluster of the item it
    merges into, else starts its own."""
    clusters: list[int] = []
    for n in range(count):
        target = merge_into(n)
        clusters.append(clusters[target] if target is not None else n)
    return clusters


def pairwise_scores(labels: list[str], clusters: list[int]) -> tuple[float, float]:
    """(precision, recall) over all pairs of items: a pair is merged when both
    ended in one cluster, and should be when both carry one label."""
    tp = fp = fn = 0
    for a, b in itertools.combinations(range(len(labels)), 2):
        same, merged = labels[a] == labels[b], clusters[a] == clusters[b]
        tp += same and merged
        fp += merged and not same
        fn += same and not merged
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)
