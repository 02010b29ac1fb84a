"""Links of real-world feed shapes (SPEC §4): relative links, xml:base,
enclosures, Reddit link posts and Google News entries.

The fixtures copy the structure of the real documents: Google News search
RSS (`<source url>`, " - Publisher" titles, cluster lists in the
description), Reddit's Atom listing (`[link]` / `[comments]` anchors in the
content), a podcast RSS served from a hosting domain whose channel <link> is
the show's site, and an Atom feed with feed- and entry-level xml:base
(RFC 4287 §2, XML Base).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

from bot.models import ParsedFeed
from bot.parse import _ESCAPED_AMPERSAND, _resolved_web_link, parse_feed, web_link

FIXTURES = Path(__file__).parent / "fixtures"


def parse_fixture(name: str, url: str) -> ParsedFeed:
    return parse_feed((FIXTURES / name).read_bytes(), url=url)


def test_rss_relative_links_resolve_against_the_channel_link_not_the_feed_url() -> None:
    feed = parse_fixture("podcast_relative.xml", "https://feeds.hosting.example/tradetalk/rss.xml")
    assert [item.link for item in feed.items] == [
        "https://www.tradetalk.example/show/episodes/41-lumber-duties",
        "https://www.tradetalk.example/show/episodes/40-ports",
        # Only an enclosure: the episode's audio is its link.
        "https://www.tradetalk.example/show/media/bonus-7.mp3",
    ]


def test_rss_without_a_usable_channel_link_resolves_against_the_feed_url() -> None:
    body = (FIXTURES / "podcast_relative.xml").read_bytes()
    body = body.replace(b"<link>https://www.tradetalk.example/show/</link>", b"<link>  </link>")
    feed = parse_feed(body, url="https://feeds.hosting.example/tradetalk/rss.xml")
    assert feed.items[0].link == "https://feeds.hosting.example/tradetalk/episodes/41-lumber-duties"


def test_rss_relative_channel_link_resolves_against_the_feed_url_first() -> None:
    body = (FIXTURES / "podcast_relative.xml").read_bytes()
    body = body.replace(b"https://www.tradetalk.example/show/</link>", b"/show/</link>")
    feed = parse_feed(body, url="https://feeds.hosting.example/tradetalk/rss.xml")
    assert feed.items[1].link == "https://feeds.hosting.example/show/episodes/40-ports"


def test_atom_links_resolve_against_xml_base_and_enclosures_are_links() -> None:
    feed = parse_fixture("atom_xml_base.xml", "https://feeds.mirror.example/trade.atom")
    assert [item.link for item in feed.items] == [
        "https://blog.example.org/trade/2026/12/lumber-duties",
        "https://blog.example.org/archive/tariffs.html",
        "https://blog.example.org/trade/audio/minister.mp3",
    ]


def test_an_enclosure_never_replaces_a_real_link() -> None:
    feed = parse_fixture("podcast_relative.xml", "https://feeds.hosting.example/tradetalk/rss.xml")
    assert not any(item.link and item.link.endswith(".mp3") for item in feed.items[:2])


MEDIA_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Trade Video</title><link>https://video.example/trade/</link>
<item><title>Lumber duties explained</title><guid isPermaLink="false">vid-0001-lumber</guid>
<media:content url="clips/lumber-duties.mp4" type="video/mp4" medium="video"/></item>
<item><title>Ports at night</title><guid isPermaLink="false">vid-0002-ports</guid>
<link>https://video.example/trade/ports</link>
<media:content url="https://cdn.video.example/ports.mp4" type="video/mp4"/></item>
</channel></rss>"""


def test_an_item_with_only_media_content_links_to_the_media() -> None:
    """Media RSS (https://www.rssboard.org/media-rss#media-content): video and
    photo feeds often carry <media:content url> and no <link>; the media is
    the story's page then, resolved like any other link. A real <link> wins."""
    feeds = [
        parse_feed(MEDIA_RSS, url="https://feeds.video.example/trade.xml", engine=engine)
        for engine in ("fast", "feedparser")
    ]
    for feed in feeds:
        assert [item.link for item in feed.items] == [
            "https://video.example/trade/clips/lumber-duties.mp4",
            "https://video.example/trade/ports",
        ]


def test_reddit_link_post_links_to_the_article_and_self_post_to_itself() -> None:
    feed = parse_fixture("reddit_worldnews.atom", "https://www.reddit.com/r/worldnews/.rss")
    link_post, self_post = feed.items
    assert link_post.link == (
        "https://www.reuters.com/markets/commodities/"
        "us-raises-duties-canadian-softwood-lumber-2026-12-04/"
        "?utm_source=reddit.com&utm_medium=social"
    )
    assert link_post.guid == "t3_1h5lmbr"
    assert self_post.link == (
        "https://www.reddit.com/r/worldnews/comments/1h5q000/lumber_duties_and_house_prices/"
    )


def test_a_link_anchor_outside_reddit_changes_nothing() -> None:
    body = (FIXTURES / "reddit_worldnews.atom").read_bytes()
    body = body.replace(
        b"https://www.reddit.com/r/worldnews/comments/", b"https://forum.example/t/"
    )
    feed = parse_feed(body, url="https://forum.example/.rss")
    assert feed.items[0].link == (
        "https://forum.example/t/1h5lmbr/us_raises_duties_on_canadian_softwood_lumber/"
    )


def test_google_news_names_the_publisher_and_drops_suffix_and_cluster_list() -> None:
    feed = parse_fixture("google_news.xml", "https://news.google.com/rss/search?q=lumber+duties")
    reuters, globe = feed.items
    assert reuters.title == "U.S. raises duties on Canadian softwood lumber"
    assert reuters.source_name == "Reuters"
    assert reuters.source_url == "https://www.reuters.com"
    # The cluster list (this headline and others' with their outlets) is
    # neither searched nor shown.
    assert reuters.summary == ""
    assert reuters.link is not None and reuters.link.startswith("https://news.google.com/rss/")
    assert globe.title == "Lumber prices jump after tariff news"
    assert globe.source_name == "The Globe and Mail"


def test_a_title_keeps_a_dash_that_is_not_the_publisher() -> None:
    body = (FIXTURES / "google_news.xml").read_bytes()
    body = body.replace(b"lumber - Reuters</title>", b"lumber - analysis</title>")
    reuters = parse_feed(body, url="https://news.google.com/rss/search?q=x").items[0]
    assert reuters.title == "U.S. raises duties on Canadian softwood lumber - analysis"


def test_json_feed_item_with_only_an_attachment_links_to_it() -> None:
    # JSON Feed 1.1 `attachments` (https://jsonfeed.org/version/1.1): a podcast.
    body = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "Trade Talk",
    "home_page_url": "https://www.tradetalk.example/show/",
    "items": [
      {"id": "ep-42", "title": "Episode 42", "content_text": "Duties.",
       "attachments": [{"url": "media/ep42.mp3", "mime_type": "audio/mpeg"}]},
      {"id": "ep-43", "title": "Episode 43", "content_text": "Quotas.",
       "url": "https://www.tradetalk.example/show/43",
       "attachments": [{"url": "https://media.example/ep43.mp3", "mime_type": "audio/mpeg"}]},
      {"id": "ep-44", "title": "Episode 44", "content_text": "Nothing to link.",
       "attachments": [{"url": "mailto:show@example.org"}, "junk"]}
    ]}"""
    feed = parse_feed(body, url="https://feeds.hosting.example/tradetalk/feed.json")
    assert [item.link for item in feed.items] == [
        "https://feeds.hosting.example/tradetalk/media/ep42.mp3",
        "https://www.tradetalk.example/show/43",
        None,
    ]


def test_reddit_self_post_with_a_link_written_in_its_text_keeps_its_thread() -> None:
    body = (FIXTURES / "reddit_worldnews.atom").read_bytes()
    written = (
        b"&lt;p&gt;Does anyone know how the new lumber duties affect house prices? "
        b"&lt;a href=&quot;https://blog.example.org/lumber&quot;&gt;[link]&lt;/a&gt;&lt;/p&gt;"
    )
    body = body.replace(
        b"&lt;p&gt;Does anyone know how the new lumber duties affect house prices?&lt;/p&gt;",
        written,
    )
    assert b"blog.example.org" in body
    self_post = parse_feed(body, url="https://www.reddit.com/r/worldnews/.rss").items[1]
    assert self_post.link == (
        "https://www.reddit.com/r/worldnews/comments/1h5q000/lumber_duties_and_house_prices/"
    )


def test_the_link_earlier_releases_gave_an_item_is_kept_for_upgrades() -> None:
    feed = parse_fixture("podcast_relative.xml", "https://feeds.hosting.example/tradetalk/rss.xml")
    assert [item.legacy_link for item in feed.items] == [
        "https://feeds.hosting.example/tradetalk/episodes/41-lumber-duties",
        "https://feeds.hosting.example/show/episodes/40-ports",
        None,  # earlier releases gave an enclosure-only item no link at all
    ]
    reddit = parse_fixture("reddit_worldnews.atom", "https://www.reddit.com/r/worldnews/.rss")
    assert reddit.items[0].legacy_link == (
        "https://www.reddit.com/r/worldnews/comments/1h5lmbr/"
        "us_raises_duties_on_canadian_softwood_lumber/"
    )
    assert reddit.items[1].legacy_link is None  # a self post's link did not change


_LINKS = [
    "http://news.example/a?b=1&amp;c=2#top",
    "HTTPS://News.Example/a/../b;p?q",
    "https://news.example/a?",
    "https://news.example/a#",
    "http://news.example",
    "http://news.example:8080/x",
    "http://[::1]:80/x",
    "http://[::1/x",
    "http:///path",
    "http:path",
    "http://?q",
    "http://#f",
    "http://\\host/x",
    "http://h\tost/x",
    "http://h/x\ny",
    "https://user:pw@news.example/x",
    "//news.example/x",
    "/relative/x",
    "relative",
    "ftp://news.example/x",
    "mailto:a@news.example",
    "  https://news.example/padded  ",
    "https://news.example/" + "x" * 5000,
    "http://news.example/a/../b/./c",
    "http://news.example/a;b",
    "http://news.example/a?#",
    "http://news.example/a?q#",
    "http://news.example?q=1",
    "http://news.example#f",
    "http://news.example:/x",
    "http://news.example/%zz/~a_b-c.d/!$'()*+,=:@?x=/?&y#a#b",
    "http://news.example/caf\u00e9",
    "http://news.\u00e9xample/x",
    "http://n\uff0eexample/x",
    "http://news.example/a b",
    "http://news.example/a[b]",
    "http://news.example/a|b",
]
_BASES = [
    "",
    "http://site.example/feed",
    "https://site.example/dir/",
    "HTTPS://SITE.example",
    "http://[::1/broken",
    "//site.example/x",
    "ftp://site.example/",
    "site.example/feed",
]


def test_absolute_links_resolve_exactly_as_urljoin_against_any_base() -> None:
    """web_link resolves an absolute http(s) link once per base scheme (a
    cached shortcut); it must give what resolving against the base itself
    gives, for tricky links and bases alike."""
    for link in _LINKS:
        for base in _BASES:
            stripped = _ESCAPED_AMPERSAND.sub("&", link.strip())
            expected = _resolved_web_link(base, stripped) if len(stripped) <= 4096 else None
            assert web_link(link, base) == expected, (link, base)
            if expected is not None and base:
                assert expected == urljoin(base, stripped), (link, base)
