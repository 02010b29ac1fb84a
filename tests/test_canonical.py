from __future__ import annotations

import hashlib

import pytest

from bot.canonical import canonical_link, story_key
from bot.models import Item


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a/b?x=1", "example.org/a/b?x=1"),
        ("http://example.org/a/b?x=1", "example.org/a/b?x=1"),
        ("HTTPS://Example.ORG/Path/Case", "example.org/Path/Case"),
        ("https://example.org/a/b/", "example.org/a/b"),
        ("https://example.org/", "example.org"),
        ("https://example.org", "example.org"),
        ("https://example.org//", "example.org"),
        ("https://example.org:443/a", "example.org/a"),
        ("http://example.org:80/a", "example.org/a"),
        ("http://example.org:443/a", "example.org:443/a"),
        ("https://example.org:8443/a", "example.org:8443/a"),
        ("https://example.org/a#section-2", "example.org/a"),
        ("https://example.org/a?utm_source=rss&utm_medium=feed", "example.org/a"),
        ("https://example.org/a?id=7&utm_source=rss&page=2", "example.org/a?id=7&page=2"),
        ("https://example.org/a?b=2&a=1", "example.org/a?b=2&a=1"),  # order kept
        ("https://example.org/a?fbclid=abc&gclid=def", "example.org/a"),
        ("https://example.org/a?mc_cid=1&mc_eid=2&ref_src=twsrc&x=", "example.org/a?x="),
        ("https://example.org/a?UTM_Campaign=x&q=1", "example.org/a?q=1"),
        ("https://example.org/a/?utm_source=x#frag", "example.org/a"),
        ("https://example.org/a?", "example.org/a"),
        ("https://example.org/a?x=1&&y=2", "example.org/a?x=1&y=2"),
        ("https://user:pw@example.org/a", "example.org/a"),
        ("https://example.org./a", "example.org/a"),
        ("http://[2001:DB8::1]:8080/a", "[2001:db8::1]:8080/a"),
        ("  https://example.org/a  ", "example.org/a"),
        ("ftp://example.org/a", None),
        ("mailto:someone@example.org", None),
        ("javascript:alert(1)", None),
        ("/relative/path", None),
        ("example.org/a", None),
        ("", None),
        ("https://", None),
        ("https://example.org:99999/a", None),
        ("https://exa mple.org/a", None),
        ("http://[::1/a", None),
    ],
)
def test_canonical_link(url: str, expected: str | None) -> None:
    assert canonical_link(url) == expected


def test_http_and_https_and_tracking_variants_are_one_story() -> None:
    a = Item(title="A", link="https://News.example/2026/story/?utm_source=rss#top", guid="1")
    b = Item(title="A (updated)", link="http://news.example/2026/story", guid="2")
    assert story_key(a) == story_key(b) == "link:news.example/2026/story"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (Item(title="t", link="https://example.org/x/", guid="g"), "link:example.org/x"),
        (Item(title="t", link="ftp://example.org/x", guid="g-1"), "guid:g-1"),
        (Item(title="t", link=None, guid="  urn:x:1 "), "guid:urn:x:1"),
        (Item(title="t", link="not a url", guid="urn:x:2"), "guid:urn:x:2"),
    ],
)
def test_story_key_precedence(item: Item, expected: str) -> None:
    assert story_key(item) == expected


def test_story_key_hash_fallback_is_normalised() -> None:
    a = Item(title="Trade  Deal\nSigned", summary="Details  here")
    b = Item(title="trade deal signed", summary="DETAILS HERE", guid="  ")
    expected = hashlib.sha256(b"trade deal signed\ndetails here").hexdigest()
    assert story_key(a) == story_key(b) == "hash:" + expected


def test_story_key_hash_distinguishes_summary() -> None:
    a = Item(title="Same title", summary="one")
    b = Item(title="Same title", summary="two")
    assert story_key(a) != story_key(b)
    assert story_key(a).startswith("hash:")
