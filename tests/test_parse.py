from __future__ import annotations

import calendar
import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from feedgen import FeedEntry, atom, json_feed, rss

from bot.models import FeedError, ParsedFeed
from bot.parse import parse_feed
from bot.story_identity import canonical_link, content_key, identify
from bot.text import clean_text, html_to_text, remove_urls, searchable_text

URL = "https://feeds.example/news/rss.xml"
T0 = datetime(2025, 6, 10, 10, 0, tzinfo=UTC)
ENTRIES = [
    FeedEntry(
        title="Trade deal <signed> & sealed",
        link="https://news.example/a?utm_source=rss",
        guid="urn:a",
        summary="<p>Officials said the <b>trade&nbsp;deal</b> cuts tariffs.</p>"
        "<script>alert('x')</script>",
        published=T0,
        tags=("Trade", "India"),
    ),
    FeedEntry(
        title="Second story",
        link="https://news.example/b",
        guid="urn:b",
        summary="Plain text summary",
        published=T0 - timedelta(hours=1),
    ),
]


def parse(body: bytes, **kwargs: object) -> ParsedFeed:
    return parse_feed(body, url=URL, **kwargs)  # type: ignore[arg-type]


def parse_error(body: bytes, **kwargs: object) -> FeedError:
    with pytest.raises(FeedError) as info:
        parse(body, **kwargs)
    assert info.value.kind == "parse"
    return info.value


# --- text helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello <b>world</b></p>", "Hello world"),
        ("<p>one</p><p>two</p>", "one two"),
        ("line<br>break<br/>again", "line break again"),
        ("fo<b>o</b>bar", "foobar"),
        (
            "AT&amp;T &lt;tag&gt; &quot;q&quot; &#39;s&#39; &#x2014; &#8212; &eacute;",
            "AT&T <tag> \"q\" 's' — — é",
        ),
        ("<script>var x = '<p>no</p>';</script>visible", "visible"),
        ("<STYLE type='text/css'>p { color: red }</STYLE>shown", "shown"),
        ("<!-- hidden <b>comment</b> -->text", "text"),
        ("a < b and c > d", "a < b and c > d"),
        ("  lots \n\t of   \r\n whitespace\u00a0here ", "lots of whitespace here"),
        ("ctrl\x00\x07chars\x1b\u200bhere", "ctrlcharshere"),
        ("<img src='x.png' alt='pic'>caption", "caption"),
        ("<a href='https://x'>link</a> text", "link text"),
        ("unclosed <script>alert(1)", "unclosed"),
        ("broken <b", "broken"),
        ("", ""),
        # Double-escaped HTML: tags left after one round of decoding go too.
        ("&lt;a href=&quot;https://ex.org/x&quot;&gt;Story&lt;/a&gt;", "Story"),
        ("&lt;p&gt;Tom &amp;amp; Jerry&lt;/p&gt;&lt;p&gt;next&lt;/p&gt;", "Tom & Jerry next"),
        ("&lt;strong&gt;bold&lt;/strong&gt;er", "bolder"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;shown", "shown"),
        ("&lt;br/&gt;a&lt;BR&gt;b", "a b"),
        # ... but text that merely looks like a tag stays.
        ("a &lt;b and c", "a <b and c"),
        (
            "Vector&lt;int&gt; &amp;amp; Trade deal &lt;signed&gt;",
            "Vector<int> &amp; Trade deal <signed>",
        ),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    "nasty",
    [
        "<script>" * 20000 + "<!--" * 20000 + "<a " * 20000,
        "<script " * 20000,
        "<p " * 20000,
        "<div class=x " * 10000,
        "&lt;!--" * 30000 + "&lt;b&gt;",
        "&lt;p a" * 30000 + "&lt;b&gt;",
        "&lt;script " * 30000 + "&lt;b&gt;",
        "x" * 100000 + "://" + " " * 100000 + "https://" + "y" * 100000,
        "(" * 50000 + "[https://" * 30000 + "www." * 30000,
    ],
)
def test_text_helpers_are_fast_on_hostile_input(nasty: str) -> None:
    start = time.perf_counter()
    html_to_text(nasty)
    searchable_text(nasty, is_html=False)
    remove_urls(nasty)
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    ("text", "without"),
    [
        ("Read more at https://example.org/tariff-news today", "Read more at today"),
        ("see https://x.org/a. Next: www.x.org/b", "see. Next:"),
        ("HTTP://EX.ORG/TARIFF and WWW.EX.ORG too", "and too"),
        ("(https://x.org/a) [www.x.org] <http://a.b/c?d=e&f=g> end", "end"),
        ("ftp://files.example/x.zip or feed://x.example/rss", "or"),
        ("https://x.org/only", ""),
        ("bare https:// scheme", "bare scheme"),
        # Not URLs.
        ("AT&T, 3:30 p.m., a/b, e-mail me@www.x.org", "AT&T, 3:30 p.m., a/b, e-mail me@www.x.org"),
        ("www. and wwwhat", "www. and wwwhat"),
        ("", ""),
    ],
)
def test_remove_urls(text: str, without: str) -> None:
    assert remove_urls(text) == without


def test_clean_text() -> None:
    assert clean_text("  a\n\nb\tc\x00 ") == "a b c"
    # Text that is already clean comes back as it is (the shortcut), and
    # every other whitespace character is caught by the printable test.
    assert clean_text("a b c") == "a b c"
    assert clean_text("a  b") == "a b" and clean_text(" a") == "a" and clean_text("a ") == "a"
    for space in "\xa0\u2028\u3000\x85\x1f\u200b":
        assert clean_text(f"a{space}b") in ("a b", "ab")
    others = [chr(c) for c in range(0x110000) if chr(c).isspace() and chr(c) != " "]
    assert others and not any(ch.isprintable() for ch in others)
    assert clean_text("x" * 10, max_len=5) == "xxxx…"
    assert len(clean_text("word " * 100, max_len=50)) <= 50
    assert clean_text("short", max_len=50) == "short"
    assert clean_text("<b>kept</b>") == "<b>kept</b>"


def test_every_removed_control_character_is_unprintable() -> None:
    """clean_text skips the control-character regex for printable text: that
    is only right while no character it removes is printable."""
    from bot.text import _CONTROL

    removed = [c for c in map(chr, range(0x110000)) if _CONTROL.match(c)]
    assert removed and not any(c.isprintable() for c in removed)


def test_clean_text_equals_the_regex_definition() -> None:
    """clean_text's fast collapse gives exactly "controls removed, every
    run of whitespace one space, trimmed" on any mix of the tricky characters."""
    import random
    import re

    control = re.compile(
        "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
        "\u2060-\u2064\u2066-\u2069\ufeff]"
    )
    alphabet = "ab é\t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\u200b\u202e\ufeff\x00\x7f"
    rng = random.Random(7)
    for _ in range(3000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        expected = re.sub(r"\s+", " ", control.sub("", s)).strip()
        assert clean_text(s) == expected, repr(s)


def test_plain_and_searchable_text_come_out_collapsed() -> None:
    """plain_text and searchable_text collapse once and then only truncate:
    right while every step after the collapse (URL and boilerplate removal)
    leaves collapsed text collapsed, so clean_text changes none of their
    results (HTML or not, unprintable characters, URLs, platform footers)."""
    import random

    from bot.text import plain_text

    pieces = [*"ab é<>&;.!\t\n\x00\x1c\x85\xa0\xad\u2028\u200b\ufeff\U000e0001", "<p>", "</b>"]
    pieces += ["&amp;lt;i&amp;gt;", "&nbsp;", "https://x.org/a.", "(www.x.org)", "Comments", "  "]
    pieces += ["Comments URL:", "Points: 3", "submitted by /u/x [link] [comments]", "\ufffe"]
    pieces += ["Thanks for reading X! Subscribe now.", "is a reader-supported publication."]
    rng = random.Random(9)
    for _ in range(5000):
        s = "".join(rng.choice(pieces) for _ in range(rng.randrange(10)))
        for is_html in (False, True):
            for text in (plain_text(s, is_html=is_html), searchable_text(s, is_html=is_html)):
                assert clean_text(text) == text, repr(s)
            long = plain_text(s, is_html=is_html)
            assert plain_text(s, is_html=is_html, max_len=7) == clean_text(long, 7), repr(s)


# --- RSS / Atom / JSON Feed ----------------------------------------------------------------


def check_first_two(feed: ParsedFeed) -> None:
    first, second = feed.items
    assert first.title == "Trade deal <signed> & sealed"
    assert first.link == "https://news.example/a?utm_source=rss"
    assert first.guid == "urn:a"
    assert first.summary == "Officials said the trade deal cuts tariffs."
    assert first.tags == ("Trade", "India")
    assert first.published == calendar.timegm(T0.utctimetuple())
    assert second.title == "Second story"
    assert second.summary == "Plain text summary"
    assert second.published == first.published - 3600


def test_rss20() -> None:
    feed = parse(rss(ENTRIES, title="World & More", ttl=15))
    assert feed.title == "World & More"
    assert feed.ttl_seconds == 15 * 60
    check_first_two(feed)


def test_atom() -> None:
    feed = parse(atom(ENTRIES, title="Atom News"), content_type="application/atom+xml")
    assert feed.title == "Atom News"
    assert feed.ttl_seconds is None
    check_first_two(feed)


def test_json_feed() -> None:
    feed = parse(json_feed(ENTRIES, title="JSON News"), content_type="application/feed+json")
    assert feed.title == "JSON News"
    check_first_two(feed)


def test_json_feed_sniffed_without_content_type() -> None:
    body = b"\xef\xbb\xbf  \n" + json_feed(ENTRIES)
    assert len(parse(body, content_type="text/plain").items) == 2


def test_rss_details() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Site</title><ttl>bogus</ttl>
<item>
  <title>Short &lt;em&gt;HTML&lt;/em&gt; title</title>
  <link>/2025/06/story.html</link>
  <description>Teaser</description>
  <content:encoded><![CDATA[<p>The <i>full</i> story, much longer than the teaser.</p>]]>
  </content:encoded>
  <dc:creator>Jane Doe</dc:creator>
  <category>Economy</category><category>Economy</category>
</item>
<item><title></title><link>javascript:alert(1)</link><guid>  </guid></item>
</channel></rss>"""
    feed = parse(body)
    assert feed.ttl_seconds is None
    story, empty = feed.items
    assert story.title == "Short HTML title"
    assert story.link == "https://feeds.example/2025/06/story.html"
    assert story.summary == "The full story, much longer than the teaser."
    assert story.author == "Jane Doe"
    assert story.tags == ("Economy",)
    assert story.published is None
    assert empty.title == "(untitled)"
    assert empty.link is None
    assert empty.guid is None


def test_relative_links_of_atom_without_xml_base_and_json_feed_resolve_against_feed_url() -> None:
    entries = [
        FeedEntry(title="rel", link="story-1.html"),
        FeedEntry(title="root", link="/top/story-2"),
        FeedEntry(title="abs", link="https://other.example/x"),
    ]
    want = [
        "https://feeds.example/news/story-1.html",
        "https://feeds.example/top/story-2",
        "https://other.example/x",
    ]
    for body in (atom(entries), json_feed(entries)):
        assert [i.link for i in parse(body).items] == want


def test_summary_capped() -> None:
    entry = FeedEntry(title="long", summary="<p>" + "word " * 5000 + "</p>")
    for body in (rss([entry]), json_feed([entry])):
        summary = parse(body).items[0].summary
        assert 3900 <= len(summary) <= 4000
        assert summary.endswith("…")


def test_future_dates_kept() -> None:
    future = datetime.now(UTC) + timedelta(days=30)
    item = parse(rss([FeedEntry(title="f", published=future)])).items[0]
    assert item.published == pytest.approx(future.timestamp(), abs=1)


def test_updated_used_when_no_published() -> None:
    body = atom([FeedEntry(title="a", published=T0)]).replace(b"<published>", b"<!-- ")
    body = body.replace(b"</published>", b" -->")
    assert parse(body).items[0].published == T0.timestamp()


def test_empty_feed_is_fine() -> None:
    feed = parse(rss([], title="Nothing yet"))
    assert feed.items == () and feed.title == "Nothing yet"


# --- max_items -----------------------------------------------------------------------------


def test_max_items_keeps_newest_in_document_order() -> None:
    dates = [T0 - timedelta(hours=h) for h in (5, 1, 3, 0, 4, 2)]
    entries = [FeedEntry(title=f"e{i}", published=d) for i, d in enumerate(dates)]
    entries.insert(2, FeedEntry(title="undated"))
    for body in (rss(entries), atom(entries), json_feed(entries)):
        items = parse(body, max_items=3).items
        assert [i.title for i in items] == ["e1", "e3", "e5"]
        assert len(parse(body, max_items=500).items) == 7


def test_max_items_undated_keeps_first() -> None:
    entries = [FeedEntry(title=f"u{i}") for i in range(10)]
    assert [i.title for i in parse(rss(entries), max_items=4).items] == ["u0", "u1", "u2", "u3"]


# --- hostile and broken input ------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title></item></channel></rss>"""


def test_billion_laughs_refused() -> None:
    err = parse_error(BILLION_LAUGHS)
    assert "entities" in err.message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_entities_refused_in_other_encodings(encoding: str) -> None:
    text = BILLION_LAUGHS.decode().replace(
        'version="1.0"?>', f'version="1.0" encoding="{encoding}"?>'
    )
    assert "entities" in parse_error(text.encode(encoding)).message


def test_entity_scan_without_zero_bytes_looks_for_the_ascii_form_only() -> None:
    """`_contains` searches only the ASCII form in bytes without a zero byte:
    right while every UTF-16/32 form holds one. Same answer as searching
    every form, for bytes in every encoding, with and without zero bytes."""
    import random

    from bot.parse import _DOCTYPE, _ENTITY, _contains

    assert all(b"\x00" in form for form in (*_DOCTYPE[1:], *_ENTITY[1:]))
    rng = random.Random(11)
    pieces = [b"<!doctype", b"<!entity", b"<!", b"x", b"\x00", b"<", b"!", *_DOCTYPE, *_ENTITY]
    for _ in range(5000):
        lowered = b"".join(rng.choice(pieces) for _ in range(rng.randrange(8)))
        for forms in (_DOCTYPE, _ENTITY):
            assert _contains(lowered, forms) == any(f in lowered for f in forms), lowered


def test_external_entity_refused() -> None:
    body = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&xxe;</title></channel></rss>"""
    assert "entities" in parse_error(body).message


def test_plain_doctype_without_entities_accepted() -> None:
    body = rss(ENTRIES).replace(
        b"<rss",
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss',
        1,
    )
    assert len(parse(body).items) == 2


def test_html_page_rejected() -> None:
    page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><p>Hi</p></body></html>"
    assert "not a feed" in parse_error(page, content_type="text/html; charset=utf-8").message
    assert "not a feed" in parse_error(page).message


@pytest.mark.parametrize(
    "body",
    [b"", b"   \n\t ", b"\xef\xbb\xbf", b"\x00\x00\x00", b"plain text, not a feed"],
)
def test_empty_or_junk_rejected(body: bytes) -> None:
    assert "not a feed" in parse_error(body).message


def test_invalid_utf8_accepted() -> None:
    body = rss([FeedEntry(title="caf\u00e9 story", link="https://x.example/1")])
    body = body.replace("caf\u00e9".encode(), b"caf\xe9 \xff\xfe")
    feed = parse(body)
    assert len(feed.items) == 1
    assert feed.items[0].title.startswith("caf")
    assert feed.items[0].link == "https://x.example/1"


def test_truncated_xml_keeps_complete_items() -> None:
    body = rss(ENTRIES)
    cut = body[: body.index(b"Second story") + 3]
    feed = parse(cut)
    assert feed.items[0].title == "Trade deal <signed> & sealed"


def test_control_characters_removed() -> None:
    body = rss([FeedEntry(title="bell\x07 and\x1b escape")])
    # Raw control characters are not allowed in XML at all; feedparser falls
    # back to its loose parser and we still strip them.
    assert parse(body).items[0].title == "bell and escape"


def test_binary_garbage_only_raises_feed_error() -> None:
    rng = random.Random(1234)
    seeds = [rss(ENTRIES), atom(ENTRIES), json_feed(ENTRIES), BILLION_LAUGHS]
    for n in range(300):
        if n % 3 == 0:
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 400)))
        else:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            body = bytes(data[: rng.randrange(1, len(data) + 1)])
        try:
            parse(body, content_type=rng.choice([None, "application/json", "text/html"]))
        except FeedError as exc:
            assert exc.kind == "parse"


# --- JSON Feed robustness ---------------------------------------------------------------------


def test_json_feed_wrong_types_tolerated() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1",
        "title": ["not", "a", "string"],
        "author": {"name": "Feed Author"},
        "items": [
            "not an object",
            None,
            42,
            {
                "id": 17,
                "url": {"no": "dict"},
                "external_url": "https://elsewhere.example/x",
                "title": 3.14,
                "content_html": ["x"],
                "content_text": "Text body",
                "summary": None,
                "tags": ["ok", 5, None, "also ok"],
                "date_published": 1234,
                "date_modified": "2025-06-10T10:00:00Z",
                "authors": "nobody",
            },
            {
                "id": True,
                "title": "Second",
                "url": "relative/path",
                "date_published": "not a date",
                "tags": "not-a-list",
                "author": {"name": "Old Style"},
            },
            {"id": None, "title": None, "content_html": "<p>Only <b>HTML</b></p>"},
        ],
    }
    feed = parse(json.dumps(doc).encode(), content_type="application/feed+json")
    assert feed.title is None
    first, second, third = feed.items
    assert first.guid == "17"
    assert first.link == "https://elsewhere.example/x"
    assert first.title == "(untitled)"
    assert first.summary == "Text body"
    assert first.tags == ("ok", "also ok")
    assert first.published == T0.timestamp()
    assert first.author == "Feed Author"
    assert second.guid is None
    assert second.link == "https://feeds.example/news/relative/path"
    assert second.published is None
    assert second.tags == ()
    assert second.author == "Old Style"
    assert third.summary == "Only HTML"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "not valid JSON"),
        (b"[1, 2, 3]", "not an object"),
        (b'{"title": "no version", "items": []}', "not a feed"),
        (b'{"version": "https://example.org/v1", "items": []}', "not a feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {"a": 1}}', "no items"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "no items"),
        (b"{" + b'"a":[' * 50000, "JSON"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}\xff', "JSON"),
    ],
)
def test_json_feed_errors(body: bytes, message: str) -> None:
    assert message in parse_error(body, content_type="application/feed+json").message


def test_json_feed_dates() -> None:
    items = [
        {"id": "1", "date_published": "2025-06-10T12:00:00+02:00"},
        {"id": "2", "date_published": "2025-06-10T10:00:00"},
        {"id": "3", "date_published": "2025-06-10T10:00:00.123456z"},
    ]
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": items}
    feed = parse(json.dumps(doc).encode())
    assert [i.published for i in feed.items] == [
        T0.timestamp(),
        T0.timestamp(),
        T0.timestamp() + 0.123456,
    ]


# --- searched fields: plain text, never URLs or markup (SPEC §3) ----------------------------

CONTENT_ONLY_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>
<updated>2025-06-10T10:00:00Z</updated>
<entry><title>html</title><id>urn:a:1</id><link href="https://ex.org/1"/>
<content type="html">&lt;p&gt;Stocks rose &amp;nbsp;today. &lt;a href="https://ex.org/tags/tariff"&gt;More&lt;/a&gt;&lt;/p&gt;</content>
</entry>
<entry><title>xhtml</title><id>urn:a:2</id><link href="https://ex.org/2"/>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Body <strong>x</strong>
<a href="https://ex.org/tariff">y</a>&#160;z</p></div></content>
</entry>
<entry><title>text</title><id>urn:a:3</id><link href="https://ex.org/3"/>
<content type="text">Plain &lt;b&gt;mislabelled&lt;/b&gt; text, a &lt; b</content>
</entry>
<entry><title>both</title><id>urn:a:4</id><link href="https://ex.org/4"/>
<summary>Teaser</summary>
<content type="html">&lt;p&gt;The &lt;i&gt;longer&lt;/i&gt; body&lt;/p&gt;</content>
</entry>
</feed>"""


def test_content_only_entries_give_plain_text_summaries() -> None:
    # Without <summary>, feedparser copies the raw content markup into `summary`.
    summaries = [i.summary for i in parse(CONTENT_ONLY_ATOM).items]
    assert summaries == [
        "Stocks rose today. More",
        "Body x y z",
        "Plain mislabelled text, a < b",
        "The longer body",
    ]


@pytest.mark.parametrize("description", ["", "<description>Short</description>"])
def test_rss_content_encoded_gives_plain_text(description: str) -> None:
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>W</title>
<item><title>c</title><link>https://ex.org/u3</link>{description}
<content:encoded><![CDATA[<p>Body <strong>x</strong> <a href="https://ex.org/tariff">y</a>&nbsp;z</p>]]></content:encoded>
</item></channel></rss>""".encode()
    assert parse(body).items[0].summary == "Body x y z"


def test_double_escaped_html_description_gives_plain_text() -> None:
    body = rss([FeedEntry(title="d", summary='&lt;a href="https://ex.org/x"&gt;Story&lt;/a&gt;')])
    assert b"&amp;lt;a href=" in body
    assert parse(body).items[0].summary == "Story"


def test_urls_written_in_text_are_not_searched() -> None:
    entry = FeedEntry(
        title="Tariffs www.ex.org/tariff-watch",
        summary="<p>Read more at https://example.org/tariff-news today.</p>",
        tags=("https://ex.org/topics/tariff", "Trade"),
    )
    for body in (rss([entry]), atom([entry]), json_feed([entry])):
        item = parse(body).items[0]
        assert item.title == "Tariffs"
        assert item.summary == "Read more at today."
        assert item.tags == ("Trade",)
    url_only = FeedEntry(title="https://ex.org/2025/06/story", link="https://ex.org/2025/06/story")
    for body in (rss([url_only]), atom([url_only]), json_feed([url_only])):
        item = parse(body).items[0]
        assert item.title == "(untitled)"
        assert item.link == "https://ex.org/2025/06/story"


def test_feed_title_and_author_keep_urls() -> None:
    # Shown, never searched: a feed called "example.org/news" keeps its name.
    body = rss([FeedEntry(title="t")], title="https://example.org/news")
    assert parse(body).title == "https://example.org/news"


def test_atom_category_label_wins_and_url_terms_are_dropped() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Q</title><id>urn:q</id>
<entry><title>c</title><id>urn:q:1</id>
<category term="https://ex.org/topics/tariff" label="Economy"/>
<category term="https://ex.org/topics/x" label="Trade"/>
<category term="chips" label="Semiconductors"/>
<category term="https://ex.org/topics/unlabelled"/>
<category term="India"/>
<category term="india" label="  "/>
</entry></feed>"""
    assert parse(body).items[0].tags == ("Economy", "Trade", "Semiconductors", "India", "india")


GUID_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>No links</title><link>https://ex.org/</link>
<item><title>1</title><guid>story-000123</guid></item>
<item><title>2</title><guid>https://ex.org/perma/2</guid></item>
<item><title>3</title><guid isPermaLink="false">https://ex.org/not-a-link</guid></item>
<item><title>4</title><guid>/relative/perma</guid></item>
<item><title>5</title><guid>www.ex.org/5</guid></item>
<item><title>6</title><guid>story-6</guid><link>/real/6</link></item>
<item><title>7</title><link>/real/7</link><guid>story-7</guid></item>
</channel></rss>"""

ID_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Ids</title><id>urn:ids</id>
<entry><title>a</title><id>1</id></entry>
<entry><title>b</title><id>https://ex.org/b</id><link rel="enclosure" href="https://ex.org/b.mp3"/></entry>
<entry><title>c</title><id>urn:c</id><link href="c.html"/></entry>
</feed>"""


def test_only_link_elements_and_absolute_urls_become_links() -> None:
    # feedparser copies a permalink <guid> (or an Atom <id>) into `link`: a
    # value that is not an absolute URL must not become one against the feed URL.
    items = parse(GUID_FEED).items
    assert [(i.link, i.guid) for i in items] == [
        (None, "story-000123"),
        ("https://ex.org/perma/2", "https://ex.org/perma/2"),
        (None, "https://ex.org/not-a-link"),
        (None, "/relative/perma"),
        (None, "www.ex.org/5"),
        ("https://ex.org/real/6", "story-6"),  # against the channel's <link>
        ("https://ex.org/real/7", "story-7"),
    ]
    assert [(i.link, i.guid) for i in parse(ID_FEED).items] == [
        (None, "1"),
        ("https://ex.org/b", "https://ex.org/b"),
        ("https://feeds.example/news/c.html", "urn:c"),
    ]


def test_item_without_link_is_keyed_by_guid_with_a_content_alias() -> None:
    # What bot.story_identity makes of it: no made-up link, so a changed GUID still
    # finds the story through the content hash.
    item = parse(GUID_FEED).items[0]
    keys = identify(item).keys
    assert keys[0] == "guid:story-000123"
    assert content_key(item) in keys


def test_double_escaped_ampersand_in_links_decoded_once() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>
<entry><title>a</title><id>urn:a:1</id><link href="https://ex.org/s?id=1&amp;amp;utm_source=atom"/></entry>
<entry><title>b</title><id>urn:a:2</id><link href="https://ex.org/s?a=1&amp;#38;b=2&amp;amp;amp;c=3"/></entry>
<entry><title>c</title><id>urn:a:3</id><link href="https://ex.org/s?x=1&amp;para=2&amp;copy=3"/></entry>
</feed>"""
    links = [i.link for i in parse(body).items]
    assert links == [
        "https://ex.org/s?id=1&utm_source=atom",
        "https://ex.org/s?a=1&b=2&amp;c=3",
        "https://ex.org/s?x=1&para=2&copy=3",
    ]
    assert canonical_link(links[0]) == "ex.org/s?id=1"
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [{"url": links[0] + "&amp;x=1"}]}
    assert parse(json.dumps(doc).encode()).items[0].link == links[0] + "&x=1"
