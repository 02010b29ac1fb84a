"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1) -> `ParsedFeed`.

feedparser 6 does not read JSON Feed. This parser is deliberately forgiving: a
field of the wrong type is ignored, an item that is not an object is skipped;
only a document that is not JSON, or not a JSON Feed at all, is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.models import FeedError, Item, ParsedFeed
from bot.parse import (
    SUMMARY_MAX,
    TITLE_MAX,
    UNTITLED,
    keep_newest,
    unique,
    web_link,
)
from bot.text import clean_text, searchable_text

_VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")


def _str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def parse_date(value: Any) -> float | None:
    """RFC 3339 date -> epoch seconds (naive dates taken as UTC)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _names(obj: Mapping[str, Any]) -> str | None:
    people: list[Any] = []
    authors = obj.get("authors")
    if isinstance(authors, list):
        people.extend(authors)
    author = obj.get("author")  # JSON Feed 1.0
    if isinstance(author, Mapping):
        people.append(author)
    names = []
    for person in people:
        if isinstance(person, Mapping):
            name = person.get("name")
            if isinstance(name, str):
                names.append(clean_text(name, 200))
    joined = ", ".join(unique(names))
    return joined or None


def _authors(item: Mapping[str, Any], feed: Mapping[str, Any]) -> str | None:
    """Item authors; JSON Feed 1.1 says they default to the feed's authors."""
    return _names(item) or _names(feed)


def _attachment_link(raw: Mapping[str, Any], base: str) -> str | None:
    """An item with only attachments (a podcast episode) links to the first."""
    attachments = raw.get("attachments")
    if not isinstance(attachments, list):
        return None
    urls = (web_link(a.get("url"), base) for a in attachments if isinstance(a, Mapping))
    return next((url for url in urls if url), None)


def _item(raw: Mapping[str, Any], feed: Mapping[str, Any], base: str) -> Item:
    raw_id = raw.get("id")
    guid: str | None = None
    if isinstance(raw_id, str):
        guid = clean_text(raw_id, 2000) or None
    elif isinstance(raw_id, int) and not isinstance(raw_id, bool):
        guid = str(raw_id)
    link = (
        web_link(raw.get("url"), base)
        or web_link(raw.get("external_url"), base)
        or _attachment_link(raw, base)
    )
    # Searched fields are plain text without markup or URLs, as for RSS/Atom.
    title = searchable_text(_str(raw, "title") or "", is_html=False, max_len=TITLE_MAX) or UNTITLED
    candidates = [
        searchable_text(_str(raw, "content_html") or "", is_html=True),
        searchable_text(_str(raw, "content_text") or "", is_html=False),
        searchable_text(_str(raw, "summary") or "", is_html=False),
    ]
    summary = clean_text(max(candidates, key=len), SUMMARY_MAX)
    tags: tuple[str, ...] = ()
    raw_tags = raw.get("tags")
    if isinstance(raw_tags, list):
        tags = unique(
            searchable_text(t, is_html=False, max_len=200) for t in raw_tags if isinstance(t, str)
        )
    published = parse_date(raw.get("date_published"))
    if published is None:
        published = parse_date(raw.get("date_modified"))
    return Item(
        title=title,
        link=link,
        guid=guid,
        summary=summary,
        tags=tags,
        published=published,
        author=_authors(raw, feed),
    )


def parse_json_feed(body: bytes, *, url: str, max_items: int = 500) -> ParsedFeed:
    """Parse a JSON Feed document; raises FeedError("parse", ...)."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise FeedError("parse", "invalid JSON Feed: nested too deeply") from None
    except (ValueError, UnicodeError) as exc:
        detail = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise FeedError("parse", f"invalid JSON Feed: not valid JSON{detail}") from None
    if not isinstance(doc, dict):
        raise FeedError("parse", "invalid JSON Feed: top level is not an object")
    version = doc.get("version")
    if not isinstance(version, str) or not version.startswith(_VERSION_PREFIXES):
        raise FeedError("parse", "not a feed: JSON without a JSON Feed version")
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise FeedError("parse", "invalid JSON Feed: no items list")
    items = [_item(raw, doc, url) for raw in raw_items if isinstance(raw, dict)]
    title = clean_text(_str(doc, "title") or "", TITLE_MAX) or None
    return ParsedFeed(title=title, items=keep_newest(items, max_items))
