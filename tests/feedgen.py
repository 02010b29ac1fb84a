"""Build small, valid RSS 2.0 / Atom 1.0 / JSON Feed 1.1 documents for tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr


@dataclass(frozen=True)
class FeedEntry:
    title: str
    link: str | None = None
    guid: str | None = None
    summary: str = ""  # may contain HTML; it is escaped into the document
    published: datetime | None = None  # naive datetimes are taken as UTC
    tags: tuple[str, ...] | list[str] = ()


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _rfc3339(dt: datetime) -> str:
    return _utc(dt).isoformat().replace("+00:00", "Z")


def _entry_id(entry: FeedEntry) -> str:
    if entry.guid:
        return entry.guid
    if entry.link:
        return entry.link
    return "urn:sha1:" + hashlib.sha1(entry.title.encode("utf-8")).hexdigest()


def rss(entries: Iterable[FeedEntry], title: str = "Test Feed", *, ttl: int | None = None) -> bytes:
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0">',
        "<channel>",
        f"<title>{escape(title)}</title>",
        "<link>https://feeds.example/</link>",
        "<description>Generated for tests</description>",
    ]
    if ttl is not None:
        lines.append(f"<ttl>{ttl}</ttl>")
    for e in entries:
        lines.append("<item>")
        lines.append(f"<title>{escape(e.title)}</title>")
        if e.link:
            lines.append(f"<link>{escape(e.link)}</link>")
        if e.guid:
            lines.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
        if e.summary:
            lines.append(f"<description>{escape(e.summary)}</description>")
        for tag in e.tags:
            lines.append(f"<category>{escape(tag)}</category>")
        if e.published is not None:
            lines.append(f"<pubDate>{format_datetime(_utc(e.published), usegmt=True)}</pubDate>")
        lines.append("</item>")
    lines += ["</channel>", "</rss>", ""]
    return "\n".join(lines).encode("utf-8")


def atom(entries: Iterable[FeedEntry], title: str = "Test Feed") -> bytes:
    """Atom 1.0. An entry without `published` also gets no <updated> (so it
    stays undated for the parser; strictly Atom requires <updated>)."""
    items = list(entries)
    dates = [_utc(e.published) for e in items if e.published is not None]
    updated = max(dates) if dates else datetime(2000, 1, 1, tzinfo=UTC)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title>",
        "<id>urn:newshound:test-feed</id>",
        f"<updated>{_rfc3339(updated)}</updated>",
        '<link rel="alternate" href="https://feeds.example/"/>',
    ]
    for e in items:
        lines.append("<entry>")
        lines.append(f'<title type="text">{escape(e.title)}</title>')
        lines.append(f"<id>{escape(_entry_id(e))}</id>")
        if e.link:
            lines.append(f'<link rel="alternate" href={quoteattr(e.link)}/>')
        if e.published is not None:
            stamp = _rfc3339(e.published)
            lines.append(f"<published>{stamp}</published>")
            lines.append(f"<updated>{stamp}</updated>")
        if e.summary:
            lines.append(f'<summary type="html">{escape(e.summary)}</summary>')
        for tag in e.tags:
            lines.append(f"<category term={quoteattr(tag)}/>")
        lines.append("</entry>")
    lines += ["</feed>", ""]
    return "\n".join(lines).encode("utf-8")


def json_feed(entries: Iterable[FeedEntry], title: str = "Test Feed") -> bytes:
    items = []
    for e in entries:
        item: dict[str, object] = {"id": _entry_id(e), "title": e.title}
        if e.link:
            item["url"] = e.link
        item["content_html"] = e.summary
        if e.published is not None:
            item["date_published"] = _rfc3339(e.published)
        if e.tags:
            item["tags"] = list(e.tags)
        items.append(item)
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": "https://feeds.example/",
        "items": items,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
