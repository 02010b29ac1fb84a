"""Story identity (SPEC §4): canonical links and story keys."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit

from bot.models import Item

# Tracking parameters that never change what a link points at.
_TRACKING_EXACT = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ref_src"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WS = re.compile(r"\s+")


def _is_tracking(name: str) -> bool:
    key = unquote(name).strip().lower()
    return key.startswith("utm_") or key in _TRACKING_EXACT


def canonical_link(url: str) -> str | None:
    """Scheme-less canonical form of an http(s) URL, e.g.
    ``HTTPS://Example.org:443/a/b/?utm_source=x&x=1#top`` -> ``example.org/a/b?x=1``.

    Lower-case host (no trailing dot), default port and user info dropped,
    tracking parameters removed (the rest kept in their original order), no
    fragment, no trailing slash. None for anything that is not a usable
    http/https URL.
    """
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or any(c in url for c in "\r\n\t"):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    host = host.rstrip(".")
    if not host or " " in host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p.split("=")[0]))
    return netloc + path + ("?" + query if query else "")


def _normalise(s: str) -> str:
    return _WS.sub(" ", s.casefold()).strip()


def story_key(item: Item) -> str:
    """Identity of the story behind `item`: ``link:<canonical link>``, else
    ``guid:<guid>``, else ``hash:<sha256 of normalised title + "\\n" + summary>``."""
    if item.link:
        canon = canonical_link(item.link)
        if canon:
            return "link:" + canon
    if item.guid and item.guid.strip():
        return "guid:" + item.guid.strip()
    material = _normalise(item.title) + "\n" + _normalise(item.summary)
    return "hash:" + hashlib.sha256(material.encode("utf-8")).hexdigest()
