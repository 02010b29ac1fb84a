"""The neutral content of outgoing messages, stored as JSON in the outbox.

Nothing here is escaped or formatted for a destination: each sink does that
at the last moment, in one place, because every string came from a feed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from bot.match import Span, document_fields, highlight
from bot.models import Item

ALERT = "alert"
DIGEST = "digest"
NOTICE = "notice"
# "Also reported by" under an alert (SPEC §8). Its payload names the alert's
# outbox row (`parent`); the deliverer adds that message's destination id
# (`parent_message`) and content (`parent_payload`) when it sends.
FOLLOWUP = "followup"
FOLLOWUP_SOURCES = 5  # sources listed in one follow-up; the rest as "+N more"

SNIPPET_CHARS = 280
TITLE_CHARS = 250


def alert_payload(
    item: Item, source: str, terms: Sequence[str], spans: Sequence[Span]
) -> dict[str, Any]:
    fields = document_fields(item)
    summary_spans = [(s.start, s.end) for s in spans if s.field == "summary"]
    snippet = highlight(fields["summary"], summary_spans, max_len=SNIPPET_CHARS)
    return {
        "title": _cap(item.title, TITLE_CHARS),
        "link": item.link,
        "source": source,
        "published": item.published if as_datetime(item.published) else None,
        "terms": list(terms),
        "snippet": [[text, bold] for text, bold in snippet],
    }


def digest_payload(
    entries: Sequence[dict[str, Any]], feed_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """`entries` come from `Store.digest_entries`; `feed_names` maps feed URLs
    to their configured `name:`. Each item's source is the same display name
    single alerts use: the publisher an aggregator named, else the configured
    name, else the feed's title, else its host."""
    names = feed_names or {}
    return {
        "items": [
            {
                "title": _cap(e["title"], TITLE_CHARS),
                "link": e["link"],
                "source": e.get("source_name")
                or feed_display_name(names.get(e["feed_url"]), e["feed_title"], e["feed_url"]),
                "terms": e["terms"] if isinstance(e["terms"], list) else _json_list(e["terms"]),
            }
            for e in entries
        ]
    }


def followup_payload(
    parent: int, new: Sequence[Mapping[str, Any]], earlier: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A follow-up to alert `parent`: the sources reported this cycle
    (`new`) and those reported by earlier follow-ups (`earlier`; an edited
    alert shows them all). Each is {source, title, link}."""

    def line(entry: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "source": entry["source"],
            "title": _cap(entry["title"], TITLE_CHARS),
            "link": entry.get("link"),
        }

    return {"parent": parent, "new": [line(e) for e in new], "earlier": [line(e) for e in earlier]}


def listed_sources(sources: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """The sources a follow-up lists and how many more it only counts."""
    return list(sources[:FOLLOWUP_SOURCES]), max(0, len(sources) - FOLLOWUP_SOURCES)


def feed_display_name(name: str | None, title: str | None, url: str) -> str:
    """How alerts name a feed: its configured name, else its own title, else its host."""
    return name or title or urlsplit(url).hostname or url


def notice_payload(text: str) -> dict[str, Any]:
    return {"text": text}


def as_datetime(epoch: float | None) -> datetime | None:
    """`epoch` as an aware UTC datetime, or None when there is none or it
    lies outside what a datetime (and Discord's ISO 8601 timestamps) can
    hold: a feed date like `9999-12-31T23:59:59-05:00` is year 10000 in UTC."""
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "undated"
    when = as_datetime(epoch)
    if when is None:  # beyond what datetime can show
        return "far in the future" if epoch > 0 else "long ago"
    return when.strftime("%Y-%m-%d %H:%M UTC")


def snippet_text(payload: dict[str, Any]) -> str:
    return "".join(text for text, _bold in payload.get("snippet", []))


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _json_list(raw: str) -> list[str]:
    import json

    value = json.loads(raw)
    return [str(v) for v in value] if isinstance(value, list) else []
