"""Feed boilerplate that is not the story: removed from searched/shown text.

Shapes as the platforms publish them: Hacker News RSS (hnrss.org's "Article
URL / Comments URL / Points / # Comments" footer; news.ycombinator.com/rss a
bare "Comments" link to the thread), Reddit's .rss ("submitted by /u/NAME
[link] [comments]"), Substack's "Thanks for reading NAME! Subscribe for free
to receive new posts and support my work." call to action.
"""

from __future__ import annotations

import pytest
from feedgen import FeedEntry, rss

from bot.boilerplate import strip_boilerplate
from bot.parse import parse_feed

HN_FOOTER = (
    '<p>Article URL: <a href="https://example.org/a">https://example.org/a</a></p>'
    '<p>Comments URL: <a href="https://news.ycombinator.com/item?id=1">'
    "https://news.ycombinator.com/item?id=1</a></p><p>Points: 512</p><p># Comments: 230</p>"
)
REDDIT_FOOTER = (
    '&#32; submitted by &#32; <a href="https://www.reddit.com/user/eu_watcher"> /u/eu_watcher </a>'
    ' <br/> <span><a href="https://www.reuters.com/x">[link]</a></span> &#32; '
    '<span><a href="https://www.reddit.com/r/europe/comments/abc/">[comments]</a></span>'
)
SUBSTACK_FOOTER = (
    "<p>Thanks for reading The Open Letter! Subscribe for free to receive new posts "
    "and support my work.</p>"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("Plain story text.", "Plain story text."),
        # Hacker News (URLs are already gone when this runs)
        ("Article URL: Comments URL: Points: 512 # Comments: 230", ""),
        ("Article URL: Comments URL: Points: 1 # Comments: 0", ""),
        (
            "I want a simple reader. Comments URL: Points: 12 # Comments: 9",
            "I want a simple reader.",
        ),
        ("Comments URL: Points: 3", ""),
        ("Comments", ""),  # news.ycombinator.com/rss: the description is only that link
        ("Comments closed after abuse.", None),
        ("The comments section closed. Points: 3 were made.", None),  # no footer: unchanged
        ("Article URL: is what we call it", None),  # no "Comments URL:": unchanged
        # Reddit
        ("submitted by /u/eu_watcher [link] [comments]", ""),
        (
            "What happens to my order? submitted by /u/a-b [link] [comments]",
            "What happens to my order?",
        ),
        ("submitted by /u/x to r/europe [link] [comments]", ""),
        ("The bill was submitted by the committee.", None),
        # Substack
        (
            "Maintainers are burning out. Thanks for reading The Open Letter! "
            "Subscribe for free to receive new posts and support my work.",
            "Maintainers are burning out.",
        ),
        ("Thanks for reading Chip Notes! Subscribe now. More below.", "More below."),
        ("Thanks for reading! Subscribe for free to receive new posts.", ""),
        (
            "Mills cut output. Thanks for reading Timber Notes! This post is public so feel "
            "free to share it. Share",
            "Mills cut output.",
        ),
        ("Thanks for reading, everyone. Share your views.", None),
        ("Thanks for reading, everyone.", None),  # no "Subscribe": unchanged
        (
            "Notes. Chip Notes is a reader-supported publication. To receive new posts and "
            "support my work, consider becoming a free or paid subscriber.",
            "Notes.",
        ),
    ],
)
def test_strip_boilerplate(text: str, expected: str | None) -> None:
    assert strip_boilerplate(text) == (text if expected is None else expected)


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (HN_FOOTER, ""),
        # news.ycombinator.com/rss (the official feed; its shape as quoted in
        # feed-reader test suites, e.g. Chromium's DirectFeedFetcher tests)
        ('<a href="https://news.ycombinator.com/item?id=39585207">Comments</a>', ""),
        ("<p>I want a simple feed reader.</p><hr>" + HN_FOOTER, "I want a simple feed reader."),
        (REDDIT_FOOTER, ""),
        (
            '<div class="md"><p>What about my order?</p></div>' + REDDIT_FOOTER,
            "What about my order?",
        ),
        ("<p>TSMC raised prices.</p>" + SUBSTACK_FOOTER, "TSMC raised prices."),
        (
            "<p>TSMC raised prices.</p><p>Thanks for reading Chip Notes! This post is public so "
            'feel free to share it.</p><p class="button-wrapper"><a class="button primary" '
            'href="https://chipnotes.substack.com/p/prices?utm_source=substack&amp;'
            'utm_medium=email&amp;utm_content=share&amp;action=share"><span>Share</span></a></p>',
            "TSMC raised prices.",
        ),
    ],
)
def test_parsed_summaries_hold_no_boilerplate(summary: str, expected: str) -> None:
    """Through the real parser: what is searched and shown as the snippet."""
    body = rss([FeedEntry(title="Story", summary=summary, guid="g1")])
    (item,) = parse_feed(body, url="https://feeds.example/rss").items
    assert item.summary == expected
