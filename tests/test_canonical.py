from __future__ import annotations

import hashlib

import pytest

from bot.models import Item
from bot.story_identity import (
    canonical_link,
    identify,
    identify_feed,
    legacy_canonical_link,
    story_key,
)


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
        # www. and http/https are the same page
        ("https://www.example.org/a", "example.org/a"),
        ("http://WWW.Example.org/a", "example.org/a"),
        ("https://www.example.org", "example.org"),
        ("https://www.co/a", "www.co/a"),  # a host that is only "www." + a TLD keeps it
        ("https://www2.example.org/a", "www2.example.org/a"),  # another host
        ("https://news.example.org/a", "news.example.org/a"),
        # paths are case-sensitive
        ("https://example.org/News/Story-ABC", "example.org/News/Story-ABC"),
        ("https://example.org/a?Q=Case", "example.org/a?Q=Case"),
        # AMP forms
        ("https://www.example.org/news/story-1/amp/", "example.org/news/story-1"),
        ("https://www.example.org/news/story-1/amp", "example.org/news/story-1"),
        ("https://www.example.org/amp/news/story-1", "example.org/news/story-1"),
        ("https://www.nbcnews.example/news/amp/ncna1234", "nbcnews.example/news/ncna1234"),
        ("https://www.example.org/news/world-1234.amp", "example.org/news/world-1234"),
        ("https://example.org/news/story.amp.html", "example.org/news/story.html"),
        ("https://amp.example.org/world/2026/dec/04/story", "example.org/world/2026/dec/04/story"),
        ("https://www.example.org/world/x?outputType=amp", "example.org/world/x"),
        ("https://www.example.org/world/x?outputtype=AMP&id=2", "example.org/world/x?id=2"),
        ("https://example.org/x?amp=1", "example.org/x"),
        ("https://example.org/x?amp", "example.org/x"),
        ("https://example.org/x?amp=true&p=2", "example.org/x?p=2"),
        ("https://example.org/x?amp=section", "example.org/x?amp=section"),  # not a switch
        ("https://example.org/x?outputType=json", "example.org/x?outputType=json"),
        ("https://example.org/ampersand/amplify", "example.org/ampersand/amplify"),
        (
            "https://www-example-org.cdn.ampproject.org/c/s/www.example.org/news/story-1/amp/",
            "example.org/news/story-1",
        ),
        (
            "https://www-example-org.cdn.ampproject.org/v/s/www.example.org/a?amp_js_v=0.1",
            "example.org/a?amp_js_v=0.1",
        ),
        ("https://example-org.cdn.ampproject.org/c/example.org/plain", "example.org/plain"),
        ("https://cdn.ampproject.org/v0.js", "cdn.ampproject.org/v0.js"),
        # tracking parameters of news sites, newsletters and social networks
        ("https://www.theguardian.example/a?CMP=share_btn_tw", "theguardian.example/a"),
        (
            "https://www.nytimes.example/2026/12/04/a.html?smid=nytcore-ios-share&smtyp=cur",
            "nytimes.example/2026/12/04/a.html",
        ),
        ("https://example.org/a?ref=rss&id=3", "example.org/a?id=3"),
        ("https://www.msn.example/a?ocid=BingNewsSearch", "msn.example/a"),
        ("https://example.org/a?cmpid=rss&CMPID=x", "example.org/a"),
        ("https://example.org/a?mc_cid=1&mc_eid=2", "example.org/a"),
        ("https://example.org/a?igshid=MzRlODBiNWFlZA==", "example.org/a"),
        ("https://example.org/a?_ga=2.1.2.3&_gl=1*abc", "example.org/a"),
        ("https://example.org/a?spm=a2.b.c&id=9", "example.org/a?id=9"),
        ("https://news.sky.example/story/a-123?sr_share=twitter", "news.sky.example/story/a-123"),
        ("https://example.org/a?msclkid=1&twclid=2&ttclid=3&dclid=4", "example.org/a"),
        ("https://example.org/a?itm_source=x&pk_campaign=y&mtm_kwd=z", "example.org/a"),
        ("https://example.org/a?xtor=RSS-1&ns_source=x&at_medium=y", "example.org/a"),
        ("https://example.org/a?guccounter=1&_hsenc=p2&__hstc=1", "example.org/a"),
        ("https://example.org/a?WT.mc_id=x&icid=y", "example.org/a"),
        ("https://example.org/a?%75tm_source=x", "example.org/a"),  # percent-encoded name
        (
            "https://www.reuters.example/world/a-2026-12-06/?taid=6751c0ffee",
            "reuters.example/world/a-2026-12-06",
        ),
        ("https://www.wired.example/story/a/?mbid=social_twitter", "wired.example/story/a"),
        # look-alikes that are real parameters stay
        ("https://example.org/search?q=ref&page=2", "example.org/search?q=ref&page=2"),
        ("https://example.org/a?reference=7", "example.org/a?reference=7"),
        ("https://example.org/a?pk_id=7&pk_campaign=x", "example.org/a?pk_id=7"),
        ("https://example.org/a?source=wire&session=2", "example.org/a?source=wire&session=2"),
        ("https://example.org/a?id=utm_source", "example.org/a?id=utm_source"),
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


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # The form stored before AMP folding and the longer tracking table.
        ("https://www.Example.org/a/amp/?utm_source=x&CMP=y", "www.example.org/a/amp?CMP=y"),
        ("http://example.org:80/a/?fbclid=1#f", "example.org/a"),
        ("mailto:x@example.org", None),
    ],
)
def test_legacy_canonical_link(url: str, expected: str | None) -> None:
    assert legacy_canonical_link(url) == expected


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


# --- identify: keys and probes ---------------------------------------------------

DAY = 1_796_392_800.0  # 2026-12-04 14:00 UTC
GN_LINK = "https://news.google.com/rss/articles/CBMiTOKEN{}?oc=5"


def reuters(**fields: object) -> Item:
    values: dict[str, object] = {
        "title": "U.S. raises duties on Canadian softwood lumber",
        "link": "https://www.reuters.com/markets/lumber-2026-12-04/",
        "guid": "reuters-lumber-2026-12-04",
        "summary": "Washington raised duties on Canadian softwood lumber on Friday.",
        "published": DAY,
    }
    values.update(fields)
    return Item(**values)  # type: ignore[arg-type]


def google_news(token: str = "A", **fields: object) -> Item:
    values: dict[str, object] = {
        "title": "U.S. raises duties on Canadian softwood lumber",
        "link": GN_LINK.format(token),
        "guid": "CBMiTOKEN" + token,
        "published": DAY + 60,
        "source_name": "Reuters",
        "source_url": "https://www.reuters.com",
    }
    values.update(fields)
    return Item(**values)  # type: ignore[arg-type]


def meet(a: Item, b: Item) -> bool:
    """Would `b`, arriving after `a` was stored, be found as the same story?"""
    return bool(set(identify(a).keys) & set(identify(b).lookups))


def test_publisher_item_and_its_google_news_entry_are_one_story_either_way() -> None:
    assert meet(reuters(), google_news())
    assert meet(google_news(), reuters())


def test_headline_key_shape() -> None:
    assert "title:reuters.com|2026-12-04|u s raises duties on canadian softwood lumber" in (
        identify(reuters()).keys
    )
    assert "via:reuters.com|2026-12-04|u s raises duties on canadian softwood lumber" in (
        identify(google_news()).keys
    )


def test_a_rotated_google_news_token_is_the_same_story() -> None:
    assert meet(google_news("A"), google_news("B"))
    # Undated: the content (title + summary) still names it.
    assert meet(google_news("A", published=None), google_news("B", published=None))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # Two items of one site sharing a headline are not merged on it.
        (reuters(), reuters(link="https://www.reuters.com/other", guid="reuters-other-1")),
        # Another publisher's identical headline is another story.
        (google_news(), reuters(link="https://apnews.com/article/x", guid="ap-lumber-1")),
        (google_news(source_url="https://apnews.com", source_name="AP"), reuters()),
        # The same headline on another day (a recurring column) is another story.
        (google_news(), reuters(published=DAY + 2 * 86400)),
        # A different headline from the same publisher.
        (google_news(title="Canada vows to fight lumber duties"), reuters()),
        # Google News entries of different stories.
        (google_news("A"), google_news("B", title="Lumber prices jump")),
        # An undated publisher item has no headline key to meet.
        (google_news(), reuters(published=None)),
    ],
)
def test_distinct_stories_stay_apart(first: Item, second: Item) -> None:
    assert not meet(first, second)


def test_reddit_link_post_is_the_article() -> None:
    # bot.parse gives a Reddit link post the article's link; it keeps its GUID.
    post = reuters(
        title="US raises duties on Canadian lumber",
        link="https://reuters.com/markets/lumber-2026-12-04?utm_source=reddit.com",
        guid="t3_1h5lmbr",
    )
    assert identify(post).keys[0] == identify(reuters()).keys[0]


def test_old_key_forms_are_probed_never_stored() -> None:
    item = reuters(link="https://www.reuters.com/markets/lumber/amp/?CMP=share")
    identity = identify(item)
    assert identity.keys[0] == "link:reuters.com/markets/lumber"
    old = "link:www.reuters.com/markets/lumber/amp?CMP=share"
    assert old in identity.lookups
    assert old not in identity.keys
    # Nothing extra to look up when the old form was the same.
    plain = identify(reuters(link="https://reuters.com/markets/lumber"))
    assert [k for k in plain.lookups if k.startswith("link:")] == [plain.keys[0]]


def test_home_page_links_name_no_story_and_give_no_headline_key() -> None:
    items = [
        reuters(link="https://news.example/", guid=f"https://news.example/?p={n}", title=f"T{n}")
        for n in (1, 2)
    ]
    for identity in identify_feed(items):
        assert identity.keys[0].startswith("guid:")
        assert not [k for k in (*identity.keys, *identity.lookups) if k.startswith("title:")]


def _tricky_http_urls(seed: int, count: int) -> list[str]:
    """http(s) URLs built from the characters URL splitting treats specially."""
    import random

    rng = random.Random(seed)
    hosts = ["example.org", "WWW.Ex-ample.ORG", "amp.x.org", "a..b", "-", ".", "x.org.", "1.2.3.4"]
    hosts += ["example.org:8080", "example.org:443", "u@example.org", "[::1]", "[::1", "ä.org", ""]
    tail = [*"aAmMpP/?#&=.;:%@ \\[]\x0b\x1c\x85\u2028\u00e4\u0130", "amp", ".amp", ".html"]
    tail += ["AMP", "%2F", "utm_source=x", "amp=1"]
    return [
        rng.choice(["http", "https", "HTTP", "Https", "ftp"])
        + rng.choice(["://", ":/", "://"])
        + rng.choice(hosts)
        + "".join(rng.choice(tail) for _ in range(rng.randrange(0, 16)))
        for _ in range(count)
    ]


def test_plain_host_links_split_as_urlsplit_splits_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """`_split_host` splits links with a plain host by a pattern instead of
    urlsplit: the same parts (or None) as urlsplit gives for every link,
    whatever stands in its path, query and fragment."""
    import re

    from bot import story_identity

    urls = _tricky_http_urls(19, 20000)
    split = story_identity._split_host.__wrapped__
    fast = [split(url) for url in urls]
    monkeypatch.setattr(story_identity, "_PLAIN_HOST_URL", re.compile(r"(?!)"))
    assert [split(url) for url in urls] == fast


def test_paths_without_amp_skip_the_amp_folding() -> None:
    """`_path_without_amp` returns a path that does not spell "amp" with
    only its trailing slash removed: the same as folding its AMP forms."""
    from bot.story_identity import _AMP_SUFFIX, _path_without_amp

    for url in _tricky_http_urls(23, 20000):
        path = url.partition("://")[2].partition("/")[2]
        segments = [s for s in path.split("/") if s.lower() != "amp"]
        folded = _AMP_SUFFIX.sub(lambda m: m.group(1) or "", "/".join(segments).rstrip("/"))
        assert _path_without_amp(path) == folded, path
