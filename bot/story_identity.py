"""Story identity (SPEC §4): which stored story an incoming item is.

A story's primary key is its canonical link, else its GUID, else a hash of
title + summary. It also keeps aliases (GUID, content hash, publisher + title),
so a changed GUID, an edited title, a rotated aggregator link or the same
story in another feed still resolve to the one story.

An item's keys are stored with its story; its lookups are the keys under
which an earlier story would be this one. They differ in two places: a
publisher's headline key is stored but not looked up (two items of one site
never merge on a shared headline alone; only an aggregator's copy finds it),
and the key an older release stored for the same link is looked up but never
stored again.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from bot.models import Item

# GUIDs shorter than this ("1", "42") are feed-local counters, not identities.
MIN_GLOBAL_GUID = 8

_DEFAULT_PORTS = {"http": 80, "https": 443}
_WS = re.compile(r"\s+")

# Query parameters that say who sent the reader, never what the page is.
# A documented table rather than a dependency: the small PyPI strippers are
# young one-person projects; courlan (well kept) strips by a broad pattern in
# strict mode (any name containing "source", "ref", "session", ...), which
# would merge distinct pages; url-normalize rewrites much more than
# parameters, changing every stored key. Drawn from the ClearURLs global
# rules (github.com/ClearURLs/Rules) and the share parameters news sites put
# in their links. Exact names; they compare case-insensitively.
TRACKING_PARAMS = frozenset(
    {
        # click identifiers of ad and social networks
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "li_fat_id", "igshid", "igsh", "epik", "rb_clickid", "wickedid",
        # newsletters and marketing automation
        "mc_cid", "mc_eid", "mc_tc", "mkt_tok", "_hsenc", "_hsmi", "__hstc", "__hssc",
        "__hsfp", "hsctatracking", "ml_subscriber", "ml_subscriber_hash", "oly_anon_id",
        "oly_enc_id", "vero_conv", "vero_id", "s_cid", "cmpid", "cmp", "wt.mc_id", "wt_mc",
        "wtrid", "icid", "ocid", "smid", "smtyp", "sr_share", "spm", "xtor", "ito",
        "_ga", "_gl", "__twitter_impression", "ref", "ref_src", "ref_url", "referrer",
        "fb_action_ids", "fb_action_types", "fb_source", "fb_ref", "gs_l",
        "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee",
        "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4",
        "guccounter", "guce_referrer", "guce_referrer_sig", "soc_src", "soc_trk",
        "tracking_source", "traffic_source",
        # share links of news sites' social posts (Reuters/Bloomberg on X, Conde Nast)
        "taid", "mbid",
        # Matomo / Piwik
        "pk_campaign", "pk_kwd", "pk_keyword", "pk_source", "pk_medium", "pk_content",
        "pk_cid",
    }
)  # fmt: skip
# Families: utm_source, itm_campaign, mtm_kwd (Matomo), hmb_medium, ...
TRACKING_PREFIXES = ("utm_", "itm_", "mtm_", "hmb_", "ga_", "otm_")

# AMP forms of a page: the same article in another wrapper.
_AMP_CACHE = re.compile(r"\.cdn\.ampproject\.org$")
_AMP_CACHE_PATH = re.compile(r"^/[cv]/(s/)?(?P<rest>[^/].*)$")
_AMP_SUFFIX = re.compile(r"\.amp(\.html?)?$", re.IGNORECASE)  # story.amp, story.amp.html
_AMP_PARAMS = {"amp": {"", "1", "true"}, "outputtype": {"amp"}}

# Hosts whose item links are redirects to a publisher's article, not the article.
AGGREGATOR_HOSTS = frozenset({"news.google.com"})


def _param_name(pair: str) -> str:
    return unquote(pair.split("=", 1)[0]).strip().lower()


def _is_tracking(name: str) -> bool:
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def _is_amp_param(pair: str) -> bool:
    values = _AMP_PARAMS.get(_param_name(pair))
    if values is None:
        return False
    value = pair.split("=", 1)[1] if "=" in pair else ""
    return unquote(value).strip().lower() in values


def _unwrap_amp_cache(url: str) -> str:
    """`https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a` ->
    `https://www.example.com/a` (Google's AMP cache: /c/ is a page, /v/ the
    viewer, /s/ means the origin is https)."""
    if "ampproject" not in url.lower():
        return url  # asked of every link: most never name the AMP cache
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return url
    if not _AMP_CACHE.search(host):
        return url
    match = _AMP_CACHE_PATH.match(parts.path)
    if not match:
        return url
    scheme = "https" if match.group(1) else "http"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{match.group('rest')}{query}"


_Split = tuple[str, str, int | None, str, str, str]

# Most links: a lower-case http(s) scheme and a plain host without port or
# user info. urlsplit ends the host at the first "/", "?" or "#", cuts the
# fragment at the first "#", then the query at the first "?" before it;
# the groups cut the same places (line breaks are refused before), at a
# fifth of urlsplit's cost.
_PLAIN_HOST_URL = re.compile(r"(https?)://([A-Za-z0-9.-]+)((?:/[^?#]*)?)(?:\?([^#]*))?(?:#(.*))?")


# Every item's link is split three times (its site, its canonical link and
# the one earlier releases stored): once is enough.
@lru_cache(maxsize=1024)
def _split_host(url: str) -> _Split | None:
    """(scheme, host, port, path, query, fragment) of an http(s) URL, or None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or "\r" in url or "\n" in url or "\t" in url:
        return None
    plain = _PLAIN_HOST_URL.fullmatch(url)
    if plain is not None:
        scheme, host, path, query, fragment = plain.groups()
        return _checked_host(scheme, host.lower(), None, path, query or "", fragment or "")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return _checked_host(scheme, host, port, parts.path, parts.query, parts.fragment)


def _checked_host(
    scheme: str, host: str, port: int | None, path: str, query: str, fragment: str
) -> _Split | None:
    """The split URL with its host tidied, or None when no host is left."""
    host = host.rstrip(".")
    if not host or " " in host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return scheme, host, port, path, query, fragment


def _netloc(scheme: str, host: str, port: int | None) -> str:
    return host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"


def _site_host(host: str) -> str:
    for prefix in ("www.", "amp."):
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
    return host


# Pure functions of one string, called several times per item: cached (a
# small cache: links may be 4 KiB long, and a hit is within one item anyway).
@lru_cache(maxsize=1024)
def site_of(url: str | None) -> str | None:
    """The lower-case host of an http(s) URL without `www.`/`amp.`, e.g.
    ``https://www.Reuters.com/world`` -> ``reuters.com``."""
    split = _split_host(url) if url else None
    return _site_host(split[1]) if split else None


@lru_cache(maxsize=1024)
def canonical_link(url: str) -> str | None:
    """Scheme-less canonical form of an http(s) URL, e.g.
    ``HTTPS://www.Example.org:443/a/B/amp/?utm_source=x&x=1#top`` -> ``example.org/a/B?x=1``.

    Lower-case host without `www.` (or an AMP `amp.`) and without trailing dot,
    default port and user info dropped, AMP forms folded (Google's AMP cache
    URLs, an `amp` path segment, a `.amp` suffix, `?amp=1`, `?outputType=amp`),
    tracking parameters removed (the rest kept in their original order), no
    fragment, no trailing slash. The path keeps its case: paths are
    case-sensitive. None for anything that is not a usable http/https URL.
    """
    split = _split_host(_unwrap_amp_cache(url) if isinstance(url, str) else url)
    if split is None:
        return None
    scheme, host, port, path, query, _fragment = split
    path = _path_without_amp(path)
    pairs = [
        p
        for p in query.split("&")
        if p and not _is_tracking(_param_name(p)) and not _is_amp_param(p)
    ]
    return _netloc(scheme, _site_host(host), port) + path + ("?" + "&".join(pairs) if pairs else "")


def _path_without_amp(path: str) -> str:
    """`path` without `amp` segments, a `.amp` suffix and a trailing slash."""
    if "amp" not in path.lower():
        # Most paths. Only ASCII letters lower-case to (or match, ignoring
        # case) "a", "m" and "p": a path without "amp" has no AMP form.
        return path.rstrip("/")
    segments = [s for s in path.split("/") if s.lower() != "amp"]
    path = "/".join(segments).rstrip("/")
    return _AMP_SUFFIX.sub(lambda m: m.group(1) or "", path)


# The canonical form of releases before AMP folding and the longer tracking
# table: kept to find stories stored under it (`StoryIdentity.probes`), never
# to store new keys. Delete once no database from before then is upgraded.
_LEGACY_TRACKING = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ref_src"})


@lru_cache(maxsize=1024)
def legacy_canonical_link(url: str) -> str | None:
    split = _split_host(url)
    if split is None:
        return None
    scheme, host, port, path, query, _fragment = split
    pairs = [
        p
        for p in query.split("&")
        if p and not (_param_name(p).startswith("utm_") or _param_name(p) in _LEGACY_TRACKING)
    ]
    return _netloc(scheme, host, port) + path.rstrip("/") + ("?" + "&".join(pairs) if pairs else "")


def _normalise(s: str) -> str:
    return _WS.sub(" ", s.casefold()).strip()


def content_key(item: Item) -> str:
    """``hash:<sha256 of normalised title + "\\n" + summary>``."""
    material = _normalise(item.title) + "\n" + _normalise(item.summary)
    return "hash:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def story_key(item: Item) -> str:
    """Identity of the story behind `item`: ``link:<canonical link>``, else
    ``guid:<guid>``, else the content key."""
    if item.link:
        canon = canonical_link(item.link)
        if canon:
            return "link:" + canon
    if item.guid and item.guid.strip():
        return "guid:" + item.guid.strip()
    return content_key(item)


_TITLE_WORDS = re.compile(r"\w+")


def _headline(site: str | None, item: Item) -> str | None:
    """`<site>|<UTC day>|<title words>`: one publisher's headline on one day,
    stored as `title:` and `via:` keys. The day keeps a headline a site
    reuses ("Morning briefing") apart."""
    if not site or item.published is None:
        return None
    words = " ".join(_TITLE_WORDS.findall(item.title.casefold()))
    if not words:
        return None
    try:
        day = time.strftime("%Y-%m-%d", time.gmtime(item.published))
    except (OverflowError, OSError, ValueError):
        return None
    return f"{site}|{day}|{words}"


def is_aggregated(item: Item) -> bool:
    """An aggregator's entry for another publisher's article (Google News)."""
    return bool(item.source_url) and site_of(item.link) in AGGREGATOR_HOSTS


@dataclass(frozen=True)
class StoryIdentity:
    keys: tuple[str, ...]  # stored with the story: primary first, then aliases
    lookups: tuple[str, ...]  # an earlier story under any of these is this one


def identify(
    item: Item,
    trustworthy_guid: bool = True,
    trustworthy_link: bool = True,
    feed_url: str = "",
) -> StoryIdentity:
    """Pass trustworthy_guid=False when the feed reuses this GUID for several
    entries (some feeds put the home page URL in every <guid>),
    trustworthy_link=False when several different entries share this link:
    then it identifies none of them."""
    basis = item if trustworthy_link else replace(item, link=None)
    primary = story_key(basis if trustworthy_guid else replace(basis, guid=None))
    guid = (item.guid or "").strip()
    if primary.startswith("guid:") and len(guid) < MIN_GLOBAL_GUID:
        # "1", "42": a counter of this feed's, which other feeds reuse for
        # other stories.
        primary = f"guid:{feed_url}#{guid}"
    keys = [primary]
    probes: list[str] = []  # looked up, not stored
    marks: list[str] = []  # stored, not looked up
    if trustworthy_guid and len(guid) >= MIN_GLOBAL_GUID and not primary.startswith("guid:"):
        keys.append("guid:" + guid)
    aggregated = is_aggregated(item)
    if not primary.startswith("link:") or aggregated:
        # Without a link of its own, the content is the identity left when a
        # GUID changes (or the aggregator rotates its link token).
        keys.append(content_key(item))
    if trustworthy_link:
        # Keys earlier releases stored: the old canonical form of this link,
        # and of the link they gave the item when it differed.
        probes += [
            "link:" + canon
            for canon in (
                legacy_canonical_link(item.link or ""),
                canonical_link(item.legacy_link or ""),
                legacy_canonical_link(item.legacy_link or ""),
            )
            if canon
        ]
    if primary.startswith("link:"):
        # A headline under its publisher: an aggregator's entry names the
        # publisher (<source url>), the publisher's own item is on its site.
        # The publisher's item stores `title:` and looks up `via:`; the
        # aggregator's entry stores `via:` and looks up both (the publisher's
        # item, or its own entry under a rotated link).
        if aggregated:
            headline = _headline(site_of(item.source_url), item)
            if headline:
                keys.append("via:" + headline)
                probes.append("title:" + headline)
        else:
            headline = _headline(site_of(basis.link), item)
            if headline:
                marks.append("title:" + headline)
                probes.append("via:" + headline)
    stored = tuple(dict.fromkeys([*keys, *marks]))
    return StoryIdentity(stored, tuple(dict.fromkeys([*keys, *probes])))


def _link_key(item: Item) -> str | None:
    """The `link:` key `story_key` gives the item when its GUID is ignored."""
    canon = canonical_link(item.link) if item.link else None
    return "link:" + canon if canon else None


def identify_feed(items: Sequence[Item], feed_url: str = "") -> list[StoryIdentity]:
    """The identity of each of one feed document's items, in order."""
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
        identify(
            item,
            trustworthy_guid=guid_counts[item.guid] <= 1 if item.guid else True,
            trustworthy_link=link not in shared,
            feed_url=feed_url,
        )
        for item, link in zip(items, links, strict=True)
    ]
