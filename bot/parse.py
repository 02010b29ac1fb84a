"""Feed bytes -> `ParsedFeed` (RSS/Atom through `bot.fastparse` with feedparser
as the safety net, JSON Feed through `bot.jsonfeed`). Any input whatsoever
either parses or raises `FeedError("parse")`.
"""

from __future__ import annotations

import calendar
import io
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from bot.aggregators import reddit_article, without_publisher
from bot.models import FeedError, Item, ParsedFeed
from bot.story_identity import is_aggregated
from bot.text import clean_text, plain_text, searchable_text, truncate

SUMMARY_MAX = 4000
TITLE_MAX = 500
UNTITLED = "(untitled)"
_JSON_TYPES = frozenset({"application/feed+json", "application/json"})
_ENCODINGS = ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")


def _any_case(word: str) -> tuple[bytes, ...]:
    """`word` in lower case, encoded in ASCII (first) and UTF-16/32: what
    `_contains` looks for in lower-cased bytes."""
    return tuple(word.lower().encode(enc) for enc in _ENCODINGS)


def _contains(lowered: bytes, forms: tuple[bytes, ...]) -> bool:
    """Whether bytes, lower-cased by `bytes.lower` (ASCII letters only; every
    other byte is kept), hold one of `forms`: the same as a case-insensitive
    pattern over the original bytes, at the speed of a substring search."""
    if b"\x00" not in lowered:
        # Most documents: every form but the ASCII one (UTF-16 and UTF-32)
        # holds a zero byte, so one search instead of five.
        return forms[0] in lowered
    return any(form in lowered for form in forms)


_DOCTYPE = _any_case("<!DOCTYPE")
_ENTITY = _any_case("<!ENTITY")
_ENTITY_REFUSED = "feed declares XML entities; refused (entity expansion attack?)"


class FeedParser(Protocol):
    """What the poller calls to parse: `parse_feed` itself (in-process, for
    tests) or `bot.parsepool.ParsePool.parse` (in a worker, with a time limit)."""

    def __call__(
        self, body: bytes, *, url: str, content_type: str | None = ..., max_items: int = ...
    ) -> ParsedFeed: ...


# Which XML reader runs: "auto" (the fast one, feedparser when it declines),
# "fast" (the fast one only: a decline is a parse error; for tests) or
# "feedparser" (feedparser only).
ENGINES = ("auto", "fast", "feedparser")


# --- helpers shared with bot.jsonfeed -----------------------------------------


# "&amp;" left in a link by a feed that escaped it twice ("?a=1&amp;amp;b=2" in
# an Atom href). Only the ampersand: html.unescape would also turn "&para=" or
# "&copy=" query parameters into symbols.
_ESCAPED_AMPERSAND = re.compile(r"&(?:amp|#0*38|#x0*26);", re.IGNORECASE)


def web_link(link: Any, base: str) -> str | None:
    """`link` resolved against `base` when it is a usable http(s) URL, else None.
    With an empty `base` only an absolute http(s) URL is usable."""
    if not isinstance(link, str):
        return None
    link = link.strip()
    if "&" in link:
        link = _ESCAPED_AMPERSAND.sub("&", link)
    if not link or len(link) > 4096:
        return None
    if base and _ABSOLUTE_HTTP.match(link) and link.isprintable():
        base_scheme = _http_scheme(base)
        if base_scheme is not None:
            return _absolute_web_link(base_scheme, link)
    return _resolved_web_link(base, link)


# An http(s) link with a host, holding no tab or line break (urlsplit deletes
# those, which could empty the host). Resolving such a link looks only at the
# base's scheme (urljoin returns it unchanged for another scheme, normalised
# for the same one), so every item's link is resolved once per scheme and not
# again for the second base `_entry_to_item` tries.
_ABSOLUTE_HTTP = re.compile(r"https?://[^/?#\\]", re.IGNORECASE)


@lru_cache(maxsize=256)
def _http_scheme(base: str) -> str | None:
    """The base's scheme when it is http or https (as urljoin reads it)."""
    try:
        scheme = urlsplit(base).scheme
    except ValueError:
        return None
    return scheme if scheme in ("http", "https") else None


# A link urljoin and urlsplit return unchanged whatever the http(s) base:
# lower-case scheme, a plain host and port, no ";params", no empty "?" or "#"
# (urlunparse drops those) and only URL characters. Most feeds' links are
# like this, and the check costs a tenth of resolving them.
_PLAIN_HTTP_URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?"
    r"(?:/[A-Za-z0-9\-._~/%!$&'()*+,=:@]*)?"
    r"(?:\?[A-Za-z0-9\-._~/%!$&'()*+,=:@?]+)?"
    r"(?:#[A-Za-z0-9\-._~/%!$&'()*+,=:@?#]+)?"
)


def _absolute_web_link(base_scheme: str, link: str) -> str | None:
    if _PLAIN_HTTP_URL.fullmatch(link):
        return link
    return _resolved_absolute_link(base_scheme, link)


@lru_cache(maxsize=1024)
def _resolved_absolute_link(base_scheme: str, link: str) -> str | None:
    # Any base of this scheme gives the same result (see _ABSOLUTE_HTTP).
    return _resolved_web_link(f"{base_scheme}://base.invalid/", link)


def _resolved_web_link(base: str, link: str) -> str | None:
    try:
        absolute = urljoin(base, link) if base else link
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return absolute


def plain_title(value: str) -> str:
    return clean_text(value, TITLE_MAX) or UNTITLED


def keep_newest(items: Sequence[Item], max_items: int) -> tuple[Item, ...]:
    """At most `max_items` items: the newest dated ones first, then undated ones
    in document order; the survivors keep their document order."""
    if max_items <= 0:
        return ()
    if len(items) <= max_items:
        return tuple(items)
    order = sorted(
        range(len(items)),
        key=lambda i: (items[i].published is None, -(items[i].published or 0.0), i),
    )
    keep = sorted(order[:max_items])
    return tuple(items[i] for i in keep)


def unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


# --- entry point ----------------------------------------------------------------


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _looks_like_json(body: bytes, content_type: str | None) -> bool:
    try:
        encoding = json.detect_encoding(body[:4])
        head = body[:256].decode(encoding, errors="ignore")
    except (LookupError, ValueError):
        head = ""
    head = head.lstrip("\ufeff \t\r\n")
    if head.startswith("{"):
        return True
    if head.startswith("<"):
        return False
    return _mime(content_type) in _JSON_TYPES


def parse_feed(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    max_items: int = 500,
    engine: str = "auto",
) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0, Atom or JSON Feed 1.0/1.1 into plain-text items.

    Raises FeedError("parse", ...) for anything that is not a usable feed.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown parser engine {engine!r}")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise FeedError("parse", "feed body is not bytes")
    body = bytes(body)
    if not body.strip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"):
        raise FeedError("parse", "not a feed: empty document")
    try:
        if _looks_like_json(body, content_type):
            from bot.jsonfeed import parse_json_feed

            return parse_json_feed(body, url=url, max_items=max_items)
        return _parse_xml(
            body, url=url, content_type=content_type, max_items=max_items, engine=engine
        )
    except FeedError:
        raise
    except RecursionError:
        raise FeedError("parse", "feed is nested too deeply") from None
    except MemoryError:
        raise FeedError("parse", "feed too large to parse") from None
    except Exception as exc:
        raise FeedError("parse", f"could not parse feed ({type(exc).__name__})") from None


# --- XML (feedparser) -------------------------------------------------------------


def _declares_entities(body: bytes, headers: Mapping[str, str]) -> bool:
    lowered = body.lower()
    if _contains(lowered, _DOCTYPE) and _contains(lowered, _ENTITY):
        return True
    # Also look at the document the way feedparser will see it: it transcodes
    # to UTF-8 first, honouring declared encodings (UTF-7, EBCDIC, ...) that
    # could hide the declaration from the byte scan above.
    try:
        from feedparser.encodings import convert_to_utf8

        scratch: dict[str, Any] = {}
        data = convert_to_utf8(dict(headers), body, scratch)
    except Exception:
        return False
    if not isinstance(data, bytes) or data == body:
        return False
    lowered = data.lower()
    return _contains(lowered, _DOCTYPE) and _contains(lowered, _ENTITY)


def _is_html(detail: Any) -> bool:
    return isinstance(detail, Mapping) and "html" in str(detail.get("type") or "")


def _text(value: Any, detail: Any = None, max_len: int | None = None) -> str:
    """Searchable plain text of a feedparser string field (HTML only when typed
    as such; URLs written in it removed)."""
    if not isinstance(value, str) or not value:
        return ""
    return searchable_text(value, is_html=_is_html(detail), max_len=max_len)


def _label(value: Any, detail: Any = None, max_len: int | None = None) -> str:
    """Like `_text` but keeps URLs: for names that are shown, never searched."""
    if not isinstance(value, str) or not value:
        return ""
    return plain_text(value, is_html=_is_html(detail), max_len=max_len)


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return float(calendar.timegm(value))
    except (OverflowError, ValueError, TypeError):
        return None


def _field(entry: Mapping[str, Any], key: str) -> Any:
    """Look `key` up without FeedParserDict's key aliasing (its fallback from
    updated_parsed to published_parsed emits a DeprecationWarning)."""
    if isinstance(entry, dict):
        return dict.get(entry, key)
    return entry.get(key)


def _entry_summary(entry: Mapping[str, Any]) -> str:
    """The longer of summary/description and content, as plain text."""
    candidates: list[str] = []
    content = entry.get("content")
    first = None
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        candidates.append(_text(first.get("value"), first))
    summary = entry.get("summary")
    detail = entry.get("summary_detail")
    if isinstance(detail, Mapping):
        candidates.append(_text(summary, detail))
    elif first is None or summary != first.get("value"):
        # Without a summary element feedparser copies the content into
        # `summary` and gives it no type: never take that raw markup as text.
        candidates.append(_text(summary, {"type": "text/html"}))
    # Searchable text is collapsed already: only the length is left to cap.
    return truncate(max(candidates, key=len, default=""), SUMMARY_MAX)


def _category(tag: Mapping[str, Any]) -> str:
    """A category's name: its human `label` (Atom), else its `term`. A term
    is often a URI ("https://ex.org/topics/x"): URLs are never searched, so a
    category that is only a URL has no name."""
    for key in ("label", "term"):
        value = tag.get(key)
        if isinstance(value, str):
            name = searchable_text(value, is_html=True, max_len=200)
            if name:
                return name
    return ""


def _entry_tags(entry: Mapping[str, Any]) -> tuple[str, ...]:
    tags = entry.get("tags")
    if not isinstance(tags, list):
        return ()
    return unique(_category(tag) for tag in tags if isinstance(tag, Mapping))


def _link_rows(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    links = entry.get("links")
    return [one for one in links if isinstance(one, Mapping)] if isinstance(links, list) else []


def _own_links(entry: Mapping[str, Any], base: str, feed_url: str) -> tuple[str | None, str | None]:
    """The entry's web link resolved against `base`, and against `feed_url`
    (as earlier releases resolved it). feedparser also copies a permalink
    <guid> (RSS guid without isPermaLink="false") or an Atom <id> into `link`
    when there is no link element; such a value is a link only when it is an
    absolute http(s) URL already, never "story-123" resolved against a base."""
    link = entry.get("link")
    rows = _link_rows(entry)
    hrefs = [one.get("href") for one in rows if one.get("rel", "alternate") != "enclosure"]
    if link not in hrefs:
        own = web_link(link, "")
        return own, own
    own = web_link(link, base)
    return own, (web_link(link, feed_url) if feed_url != base else own)


def _enclosure_link(entry: Mapping[str, Any], base: str) -> str | None:
    """The first usable enclosure (a podcast episode's audio), else the first
    Media RSS <media:content url="…"> (video and photo feeds carry only that)."""
    enclosures = [one.get("href") for one in _link_rows(entry) if one.get("rel") == "enclosure"]
    raw = entry.get("enclosures")
    if isinstance(raw, list):
        enclosures += [one.get("href") for one in raw if isinstance(one, Mapping)]
    media = entry.get("media_content")
    if isinstance(media, list):
        enclosures += [one.get("url") for one in media if isinstance(one, Mapping)]
    return next((url for url in (web_link(e, base) for e in enclosures) if url), None)


def _raw_content(entry: Mapping[str, Any]) -> str:
    """The entry's content (else summary) as the feed wrote it, markup and all."""
    content = entry.get("content")
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        value = content[0].get("value")
        if isinstance(value, str):
            return value
    summary = entry.get("summary")
    return summary if isinstance(summary, str) else ""


def _publisher(entry: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """RSS <source url="…">Name</source>: the publisher an aggregator's entry
    copies (Google News names the outlet behind every headline this way)."""
    source = entry.get("source")
    if not isinstance(source, Mapping):
        return None, None
    name = _label(source.get("title"), None, 200) or None
    return name, web_link(source.get("href"), "")


def _entry_to_item(entry: Mapping[str, Any], base: str, feed_url: str) -> Item:
    title = _text(entry.get("title"), entry.get("title_detail"), TITLE_MAX) or UNTITLED
    guid = entry.get("id")
    guid = clean_text(guid, 2000) if isinstance(guid, str) else ""
    published = _timestamp(_field(entry, "published_parsed"))
    if published is None:
        published = _timestamp(_field(entry, "updated_parsed"))
    author = _label(entry.get("author"), entry.get("author_detail"), 200)
    # `before`: the link earlier releases gave the item (resolved against the
    # feed URL, a Reddit thread kept).
    own, before = _own_links(entry, base, feed_url)
    link = own or _enclosure_link(entry, base)
    link = reddit_article(_raw_content(entry), link) or link
    publisher, publisher_url = _publisher(entry)
    item = Item(
        title=without_publisher(title, publisher),
        link=link,
        guid=guid or None,
        summary=_entry_summary(entry),
        tags=_entry_tags(entry),
        published=published,
        author=author or None,
        source_name=publisher,
        source_url=publisher_url,
        legacy_link=before if before != link else None,
    )
    if is_aggregated(item):
        # Google News descriptions only list the cluster's headlines and
        # outlets (the first is this one): nothing to search or show.
        item = replace(item, summary="")
    return item


def _link_base(doc: Mapping[str, Any], url: str) -> str:
    """What a relative item link is relative to: in RSS the channel's <link>
    (the site the feed describes; RSS has no xml:base), else the feed's URL.
    Atom links arrive already resolved against their xml:base."""
    feed = doc.get("feed") or {}
    if str(doc.get("version") or "").startswith("rss") and isinstance(feed, Mapping):
        home = web_link(feed.get("link"), url)
        if home:
            return home
    return url


def _ttl_seconds(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 7:
        return None
    minutes = int(value)
    return minutes * 60 if minutes > 0 else None


def _read_document(body: bytes, content_type: str | None, engine: str) -> Mapping[str, Any]:
    """The feedparser-shaped result for an XML feed: the fast reader's when it
    is sure of it, else feedparser's (the whole document, never a mix)."""
    # No content-location: feedparser would urljoin every link against it (a
    # tenth of its run time); `web_link` resolves the one link we use instead.
    headers: dict[str, str] = {}
    if content_type:
        headers["content-type"] = content_type
    # Refused before any parser sees the document.
    if _declares_entities(body, headers):
        raise FeedError("parse", _ENTITY_REFUSED)
    # The readers are imported on first use (in the parser workers): lxml and
    # feedparser are a tenth of a second of start-up that a process which
    # never parses (the poller itself, a `poll --once` of unchanged feeds)
    # need not pay.
    import feedparser

    from bot.fastparse import Declined, read_feed

    if engine != "feedparser":
        try:
            return read_feed(body, content_type)
        except Declined as declined:
            if engine == "fast":
                raise FeedError("parse", f"fast parser declined: {declined}") from None
    # Sanitising and rewriting URLs inside HTML content is most of feedparser's
    # run time and pointless here: html_to_text reduces all of it to plain text
    # (dropping <script>/<style> bodies) and nothing ever renders feed HTML.
    result: Mapping[str, Any] = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    return result


def _parse_xml(
    body: bytes, *, url: str, content_type: str | None, max_items: int, engine: str = "auto"
) -> ParsedFeed:
    doc = _read_document(body, content_type, engine)
    entries = doc.get("entries") or []
    feed = doc.get("feed") or {}
    version = doc.get("version") or ""
    if not entries and not version:
        reason = "no RSS, Atom or JSON Feed document found"
        if _mime(content_type) in ("text/html", "application/xhtml+xml"):
            reason = "got an HTML page, not a feed"
        elif doc.get("bozo"):
            exc = doc.get("bozo_exception")
            if exc is not None and "SAX" in type(exc).__name__:
                reason = "malformed XML"
        raise FeedError("parse", f"not a feed: {reason}")
    base = _link_base(doc, url)
    items = [_entry_to_item(e, base, url) for e in entries if isinstance(e, Mapping)]
    title = _label(feed.get("title"), feed.get("title_detail"), TITLE_MAX) or None
    return ParsedFeed(
        title=title,
        items=keep_newest(items, max_items),
        ttl_seconds=_ttl_seconds(feed.get("ttl")),
    )
