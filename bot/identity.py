"""Which stored story an incoming item is (SPEC §4).

A story's primary key is its canonical link, else its GUID, else a hash of
title + summary. It also keeps aliases so that a changed GUID, an edited
title or the same story in another feed still resolve to the one story.
"""

from __future__ import annotations

import hashlib
from collections import Counter
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


def story_keys(item: Item, trustworthy_guid: bool = True) -> list[str]:
    """Primary key first, then aliases. Pass trustworthy_guid=False when the
    feed reuses this GUID for several entries (some feeds put the home page
    URL in every <guid>): then the GUID identifies nothing."""
    primary = story_key(item if trustworthy_guid else replace(item, guid=None))
    keys = [primary]
    if (
        trustworthy_guid
        and item.guid
        and len(item.guid) >= MIN_GLOBAL_GUID
        and not primary.startswith("guid:")
    ):
        keys.append("guid:" + item.guid)
    if not primary.startswith("link:"):
        # Without a link, the content is the only identity left when a GUID changes.
        hashed = content_key(item)
        if hashed not in keys:
            keys.append(hashed)
    return keys


def keys_for_feed(items: Sequence[Item]) -> list[list[str]]:
    guid_counts = Counter(item.guid for item in items if item.guid)
    return [story_keys(item, guid_counts[item.guid] <= 1 if item.guid else True) for item in items]
