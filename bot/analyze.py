"""Everything about a parsed feed that needs no database: story identities,
matching and alert payloads (pure).

It runs right after parsing, in the parser worker processes when there is a
pool, so the CPU-heavy part of a cycle (parse + tokenise + match + snippet)
spreads over all cores and the service process only deduplicates and stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.messages import alert_payload
from bot.messages import feed_display_name as display_name
from bot.models import Item, ParsedFeed
from bot.neardup import Signature, some_feed_signatures
from bot.story_identity import identify_feed
from bot.watchlist import WatchList


@dataclass(frozen=True)
class AlertDraft:
    """What an alert to one channel would say, if the story turns out new."""

    channel: str
    terms: tuple[str, ...]
    payload: dict[str, Any]


@dataclass(frozen=True)
class AnalyzedItem:
    item: Item
    keys: tuple[str, ...]  # primary story key first, then aliases (stored)
    lookups: tuple[str, ...]  # an earlier story under any of these is this one
    alerts: tuple[AlertDraft, ...]
    # Title + lead signature: is it a copy of a story seen recently? (SPEC §8)
    signature: Signature | None = None


@dataclass(frozen=True)
class AnalyzedFeed:
    title: str | None
    ttl_seconds: int | None
    source: str  # the feed's display name used in alerts
    items: tuple[AnalyzedItem, ...]  # newest first


def newest_first(items: tuple[Item, ...]) -> list[int]:
    """Indexes of `items`: dated newest first, then undated in document order."""
    order = list(range(len(items)))
    order.sort(
        key=lambda i: (items[i].published is None, -(items[i].published or 0.0), i),
    )
    return order


def analyze(
    parsed: ParsedFeed, watch: WatchList, *, feed_url: str, feed_name: str | None
) -> AnalyzedFeed:
    source = display_name(feed_name, parsed.title, feed_url)
    identities = identify_feed(parsed.items, feed_url)
    drafts_of: dict[int, tuple[AlertDraft, ...]] = {}
    for index, item in enumerate(parsed.items):
        drafts = []
        for channel, hits in watch.channels_for(item, feed_url).items():
            terms = tuple(hit.term for hit in hits)
            spans = [span for hit in hits for span in hit.spans]
            # An aggregator's entry is the publisher's story: named after it.
            named = item.source_name or source
            drafts.append(AlertDraft(channel, terms, alert_payload(item, named, terms, spans)))
        drafts_of[index] = tuple(drafts)
    # Only items that would alert somewhere are signed (SPEC §8: most of a
    # feed matches no watch, and whether those are copies changes nothing
    # anyone sees); the whole document goes in, so a tagline its entries
    # share is no lead.
    signatures = some_feed_signatures(
        [(item.title, item.summary) for item in parsed.items],
        [bool(drafts_of[index]) for index in range(len(parsed.items))],
    )
    analyzed = []
    for index in newest_first(parsed.items):
        identity = identities[index]
        analyzed.append(
            AnalyzedItem(
                parsed.items[index],
                identity.keys,
                identity.lookups,
                drafts_of[index],
                signatures[index],
            )
        )
    return AnalyzedFeed(parsed.title, parsed.ttl_seconds, source, tuple(analyzed))
