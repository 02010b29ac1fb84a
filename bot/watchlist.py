"""Every channel's watch terms, compiled once into one matcher.

Terms come from feeds.yaml (config-owned, scoped by each watch's `feeds:`)
and from `/watch add` (stored in the database; they apply to every feed the
channel already watches in the config, or to all feeds).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from bot.config import Config
from bot.match import Matcher, Span
from bot.models import Item, TermRow
from bot.query import Query, QueryError, parse_query

log = logging.getLogger(__name__)

WatchKey = tuple[str, str]  # (channel, term)


@dataclass(frozen=True)
class TermHit:
    term: str
    spans: tuple[Span, ...]


WatchEntry = tuple[str, str, frozenset[str] | None]  # (channel, term, feed URLs or None = all)


def _scopes(
    config: Config, feed_titles: Mapping[str, str] | None
) -> tuple[dict[str, set[str] | None], dict[WatchKey, set[str] | None]]:
    """Feed URLs per channel and per config term (None: every feed), by the
    watches' `feeds:` selections."""
    channel_scopes: dict[str, set[str] | None] = {}
    term_scopes: dict[WatchKey, set[str] | None] = {}
    for watch in config.watches:
        if watch.feeds:
            urls: set[str] | None = {f.url for f in config.feeds_for_watch(watch, feed_titles)}
        else:
            urls = None
        channel_scopes[watch.channel] = _union(channel_scopes.get(watch.channel, set()), urls)
        for term in watch.terms:
            key = (watch.channel, term)
            term_scopes[key] = _union(term_scopes.get(key, set()), urls)
    return channel_scopes, term_scopes


def added_term_scope(
    config: Config, channel: str, feed_titles: Mapping[str, str] | None = None
) -> set[str] | None:
    """The feed URLs a term added with /watch in `channel` applies to (None: all)."""
    return _scopes(config, feed_titles)[0].get(channel)


def watch_entries(
    config: Config,
    term_rows: Sequence[TermRow],
    feed_titles: Mapping[str, str] | None = None,
) -> tuple[WatchEntry, ...]:
    """Every stored term with the feeds it applies to: plain data, so it can be
    sent to the parser processes that match items there."""
    channel_scopes, term_scopes = _scopes(config, feed_titles)

    entries: list[WatchEntry] = []
    for row in term_rows:
        if row.source == "config":
            scope = term_scopes.get((row.channel, row.term), channel_scopes.get(row.channel))
        else:
            scope = channel_scopes.get(row.channel)
        entries.append((row.channel, row.term, None if scope is None else frozenset(scope)))
    return tuple(entries)


class WatchList:
    """The compiled matcher over all entries, plus each term's feed scope."""

    def __init__(self, entries: Sequence[WatchEntry]) -> None:
        self.entries = tuple(entries)
        self.scopes: dict[WatchKey, frozenset[str] | None] = {}
        queries: list[tuple[WatchKey, Query]] = []
        for channel, term, scope in self.entries:
            try:
                query = parse_query(term)
            except QueryError as exc:
                log.warning("skipping stored term %r: %s", term, exc)
                continue
            self.scopes[(channel, term)] = scope
            queries.append(((channel, term), query))
        self._queries = queries

    def __reduce__(self) -> tuple[Any, ...]:
        # Parser workers receive the parsed terms, not the text: unpickling
        # 10,000 queries costs a quarter of parsing them again in each worker.
        return (_restored, (self.entries, self.scopes, self._queries))

    @cached_property
    def matcher(self) -> Matcher[WatchKey]:
        # Built on first use: with parser workers the poller process itself
        # never matches, and 10,000 terms take a quarter of a second to build.
        return Matcher(self._queries)

    @staticmethod
    def cached(entries: tuple[WatchEntry, ...]) -> WatchList:
        """The same entries compile to the same matcher: reuse it across cycles."""
        return _cached_watchlist(entries)

    @classmethod
    def build(
        cls,
        config: Config,
        term_rows: Sequence[TermRow],
        feed_titles: Mapping[str, str] | None = None,
    ) -> WatchList:
        return cls(watch_entries(config, term_rows, feed_titles))

    def __len__(self) -> int:
        return len(self.matcher)

    def channels_for(self, item: Item, feed_url: str) -> dict[str, list[TermHit]]:
        """Channel -> the terms that match this item from this feed."""
        found: dict[str, list[TermHit]] = defaultdict(list)
        for (channel, term), spans in self.matcher.match(item).items():
            scope = self.scopes.get((channel, term))
            if scope is not None and feed_url not in scope:
                continue
            found[channel].append(TermHit(term, tuple(spans)))
        return dict(found)


def _union(current: set[str] | None, more: set[str] | None) -> set[str] | None:
    if current is None or more is None:
        return None
    return current | more


def _restored(
    entries: tuple[WatchEntry, ...],
    scopes: dict[WatchKey, frozenset[str] | None],
    queries: list[tuple[WatchKey, Query]],
) -> WatchList:
    """A WatchList from its parsed parts (see WatchList.__reduce__)."""
    watch = WatchList.__new__(WatchList)
    watch.entries = entries
    watch.scopes = scopes
    watch._queries = queries
    return watch


@lru_cache(maxsize=4)
def _cached_watchlist(entries: tuple[WatchEntry, ...]) -> WatchList:
    return WatchList(entries)
