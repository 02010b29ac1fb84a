"""Plain data shared by the pipeline stages (fetch -> parse -> match -> store).

Everything here is immutable and free of I/O so every stage can be tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Item:
    """One feed entry, already reduced to plain text.

    `title` and `summary` have HTML removed and entities decoded; nothing in
    here is trusted: sinks escape it for their destination.
    """

    title: str
    link: str | None = None
    guid: str | None = None
    summary: str = ""
    tags: tuple[str, ...] = ()
    published: float | None = None  # epoch seconds, UTC; None when undated
    author: str | None = None
    # The publisher an aggregator's entry names (RSS <source>): the alert's
    # source, and the site its headline belongs to (bot.story_identity).
    source_name: str | None = None
    source_url: str | None = None
    # The link releases before 2026-12 gave this item, where it differs (a
    # relative RSS link resolved against the feed URL, a Reddit post's
    # thread): looked up so upgraded databases know the story, never stored.
    legacy_link: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    items: tuple[Item, ...]
    ttl_seconds: int | None = None  # RSS <ttl>, a lower bound on the next check


@dataclass(frozen=True)
class FetchResult:
    """A completed HTTP exchange. `body` is empty when `not_modified`."""

    url: str  # final URL after redirects
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


class FeedError(Exception):
    """A feed could not be fetched or parsed. `kind` is a short stable label
    (dns, connect, timeout, http_404, too_large, blocked_address, parse, ...)
    used in status output and metrics; the message is safe to show users."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retry_after: float | None = None,
        gone: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.gone = gone  # HTTP 410: stop polling this feed

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class TermRow:
    """A watch term as stored: from feeds.yaml (`source` "config") or a command."""

    channel: str
    term: str
    source: str
    added_by: str | None
    added_at: float
