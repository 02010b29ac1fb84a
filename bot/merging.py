"""Near-duplicate copies as one story, across the poll cycle (SPEC §8).

`StoryMerger` keeps a `NearDupIndex` of the items seen within
`settings.merge_window`, fed from the `signatures` table: rebuilt from it at
start (so a restart in the middle of a story's spread still knows the
story) and topped up from it after each feed commits, which also picks up
rows that another process (a manual `poll --once` beside `run`) wrote. The
in-memory index never holds anything the database does not.

Only items that would alert somewhere (they match a watch) are signed
(`bot.analyze`), looked up and indexed: whether an item nobody watches is a
copy changes nothing anyone sees, and signing and looking up are most of
the cost. A story that first arrives where no channel watches it is then
simply new when a copy reaches a watched feed, which alerts that channel
as SPEC §8 asks; one that first arrives in a feed another channel watches
is indexed, and its copy in this channel's feed merges into it and still
alerts this channel once (its feed never carried the story before).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.analyze import AnalyzedItem
from bot.neardup import Match, NearDupIndex, SignatureRow
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Merged:
    """A new item that is a copy of the story `item_id`, and why."""

    entry: AnalyzedItem
    item_id: int
    match: Match


class StoryMerger:
    def __init__(self, store: Store, window: float) -> None:
        self.store = store
        self.window = window
        self._index = NearDupIndex(window)
        self._last_row = 0
        # Where the previous cycle's first refresh stopped reading, and the
        # rows indexed since (item key -> seen): see `refresh`.
        self._cycle_mark = 0
        self._indexed: dict[str, float] = {}
        # (seen, item key) of `_indexed`, oldest first: what falls out of the
        # window is found without going over every row after every feed.
        self._expiry: list[tuple[float, str]] = []

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def refresh(self, now: float, *, new_cycle: bool = False) -> None:
        """Add the rows stored since the last refresh (ours and other processes').

        Row ids are handed out when a row is written but become visible when
        its transaction commits, so with several workers a row can appear
        below an id already read. At the start of each cycle (`new_cycle`)
        the rows since the previous cycle's start are read again and those
        not indexed yet are added; within a cycle, a copy another worker
        stores at the same moment may be missed (a possible duplicate
        alert, never a false merge)."""
        if not self.enabled:
            return
        since = self._cycle_mark if new_cycle else self._last_row
        rows, top = self.store.stories.signatures_after(since, now - self.window)
        if new_cycle:
            self._cycle_mark = max(self._last_row, self._cycle_mark)
        self._last_row = max(top, self._last_row)
        self._index.advance(now)
        horizon = now - self.window
        while self._expiry and self._expiry[0][0] < horizon:
            seen, key = heapq.heappop(self._expiry)
            if self._indexed.get(key) == seen:
                del self._indexed[key]
        for row in rows:
            if row.item in self._indexed:
                continue
            self._indexed[row.item] = row.seen
            heapq.heappush(self._expiry, (row.seen, row.item))
            self._index.add(row)

    def find_copies(
        self, entries: Sequence[AnalyzedItem], now: float
    ) -> tuple[list[AnalyzedItem], list[Merged]]:
        """`entries` (new by their links/GUIDs/content) split into stories
        that are new indeed and copies of a story seen within the window."""
        if not self.enabled or not entries:
            return list(entries), []
        found: list[tuple[AnalyzedItem, Match]] = []
        fresh: list[AnalyzedItem] = []
        for entry in entries:
            sig = entry.signature
            match = None if sig is None else self._index.find(sig, now)
            if match is None:
                fresh.append(entry)
            else:
                found.append((entry, match))
        # A story pruned since its row was read (retention shorter than the
        # window) is no story to merge into.
        alive = self.store.stories.existing([int(match.story) for _, match in found])
        merged = []
        for entry, match in found:
            if int(match.story) in alive:
                merged.append(Merged(entry, int(match.story), match))
            else:
                fresh.append(entry)
        return fresh, merged

    def rows_for(
        self, stories: Sequence[tuple[AnalyzedItem, int]], now: float
    ) -> list[tuple[int, SignatureRow]]:
        """Signature rows to store for items and the story each belongs to."""
        if not self.enabled:
            return []
        return [
            (item_id, SignatureRow.of(str(item_id), entry.keys[0], now, entry.signature))
            for entry, item_id in stories
            if entry.signature is not None and entry.keys
        ]
