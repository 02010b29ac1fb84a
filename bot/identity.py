"""Which stored story an incoming item is (SPEC §4).

A story's primary key is its canonical link, else its GUID, else a hash of
title + summary. It also keeps aliases so that a changed GUID, an edited
title or the same story in another feed still resolve to the one story.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace

from bot.canonical import story_key
from bot.models import Item

# GUIDs shorter than this ("1", "42") are feed-local counters, not identities.
MIN_GLOBAL_GUID = 8


def content_key(item: Item) -> str:
    text = (
        " ".join(item.title.split()).casefold() + "\n" + " ".join(item.summary.split()).casefold()
    )
    return "hash:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def story_keys(
    item: Item,
    trustworthy_guid: bool = True,
    trustworthy_link: bool = True,
    feed_url: str = "",
) -> list[str]:
    """Primary key first, then aliases. Pass trustworthy_guid=False when the
    feed reuses this GUID for several entries (some feeds put the home page
    URL in every <guid>), trustworthy_link=False when several different
    entries share this link: then it identifies none of them."""
    basis = item if trustworthy_link else replace(item, link=None)
    primary = story_key(basis if trustworthy_guid else replace(basis, guid=None))
    guid = (item.guid or "").strip()
    if primary.startswith("guid:") and len(guid) < MIN_GLOBAL_GUID:
        # "1", "42": a counter of this feed's, which other feeds reuse for
        # other stories.
        primary = f"guid:{feed_url}#{guid}"
    keys = [primary]
    if trustworthy_guid and len(guid) >= MIN_GLOBAL_GUID and not primary.startswith("guid:"):
        keys.append("guid:" + guid)
    if not primary.startswith("link:"):
        # Without a link, the content is the only identity left when a GUID changes.
        hashed = content_key(item)
        if hashed not in keys:
            keys.append(hashed)
    return keys


def _link_key(item: Item) -> str | None:
    key = story_key(replace(item, guid=None)) if item.link else ""
    return key if key.startswith("link:") else None


def keys_for_feed(items: Sequence[Item], feed_url: str = "") -> list[list[str]]:
    guid_counts = Counter(item.guid for item in items if item.guid)
    # A link that entries with different GUIDs (or, without GUIDs, different
    # content) share is a home page, not a story: it names none of them.
    names_by_link: dict[str, set[str]] = defaultdict(set)
    links = [_link_key(item) for item in items]
    for item, link in zip(items, links, strict=True):
        if link is not None:
            names_by_link[link].add(item.guid or content_key(item))
    shared = {link for link, names in names_by_link.items() if len(names) > 1}
    return [
        story_keys(
            item,
            trustworthy_guid=guid_counts[item.guid] <= 1 if item.guid else True,
            trustworthy_link=link not in shared,
            feed_url=feed_url,
        )
        for item, link in zip(items, links, strict=True)
    ]
