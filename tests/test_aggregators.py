"""bot/aggregators.py: the article behind a Reddit post, the headline behind
a Google News title (table tests; whole documents in test_parse_links.py)."""

from __future__ import annotations

import pytest

from bot.aggregators import reddit_article, without_publisher

THREAD = "https://www.reddit.com/r/worldnews/comments/1h5lmbr/us_lumber/"


def footer(href: str, text: str = "[link]") -> str:
    """The shape of Reddit's content footer (its Atom listing feeds)."""
    return (
        ' &#32; submitted by &#32; <a href="https://www.reddit.com/user/x"> /u/x </a> <br/>'
        f' <span><a href="{href}">{text}</a></span> &#32;'
        f' <span><a href="{THREAD}">[comments]</a></span>'
    )


@pytest.mark.parametrize(
    ("content", "link", "expected"),
    [
        (
            footer("https://www.reuters.com/a?x=1&amp;y=2"),
            THREAD,
            "https://www.reuters.com/a?x=1&y=2",
        ),
        (
            footer("https://www.reuters.com/a"),
            "https://old.reddit.com/r/x/comments/1/",
            "https://www.reuters.com/a",
        ),
        (
            footer("https://www.reuters.com/a"),
            "https://reddit.com/r/x/comments/1/",
            "https://www.reuters.com/a",
        ),
        # Spaces around an attribute value are dropped, as browsers do.
        (footer(" https://www.reuters.com/a "), THREAD, "https://www.reuters.com/a"),
        (footer(THREAD), THREAD, None),  # a self post links to itself
        (footer("https://i.redd.it/abc123.jpeg"), THREAD, None),  # Reddit-hosted image
        (footer("https://v.redd.it/abc123"), THREAD, None),  # Reddit-hosted video
        (footer("javascript:alert(1)"), THREAD, None),
        (footer("/r/worldnews/comments/1/"), THREAD, None),  # relative: not an article
        (footer("https://www.reuters.com/a", text="[comments]"), THREAD, None),
        (footer("https://www.reuters.com/a"), "https://forum.example/t/1", None),  # not Reddit
        (footer("https://www.reuters.com/a"), None, None),
        ("<p>no footer</p>", THREAD, None),
        ("", THREAD, None),
        # An author's own "[link]" in a self post comes before Reddit's footer.
        ('<p><a href="https://blog.example/x">[link]</a></p>' + footer(THREAD), THREAD, None),
        (
            "<A HREF='https://apnews.com/article/x'> [link] </A>",
            THREAD,
            "https://apnews.com/article/x",
        ),
    ],
)
def test_reddit_article(content: str, link: str | None, expected: str | None) -> None:
    assert reddit_article(content, link) == expected


def test_reddit_article_is_linear_on_hostile_content() -> None:
    hostile = "<a " + "href='x' " * 50_000 + ">" + "<a href=" * 50_000
    assert reddit_article(hostile, THREAD) is None
    assert reddit_article("<a href='x " * 50_000 + "[link]</a>" * 50_000, THREAD) is None
    far = '<a href="https://www.reuters.com/a" ' + " " * 10_000 + ">[link]</a>"
    assert reddit_article(far, THREAD) is None  # a tag that long is not Reddit's


@pytest.mark.parametrize(
    ("title", "publisher", "expected"),
    [
        ("U.S. raises lumber duties - Reuters", "Reuters", "U.S. raises lumber duties"),
        ("Stocks slide - CNBC.com", "CNBC.com", "Stocks slide"),
        ("Fed holds - The Wall Street Journal", "The Wall Street Journal", "Fed holds"),
        ("A - B - The Hill", "The Hill", "A - B"),
        ("Quake hits – BBC News", "BBC News", "Quake hits"),
        ("Quake hits | BBC News", "BBC News", "Quake hits"),
        ("Reuters", "Reuters", "Reuters"),  # nothing left: keep it
        (" - Reuters", "Reuters", " - Reuters"),
        ("Lumber duties rise - analysis", "Reuters", "Lumber duties rise - analysis"),
        ("Lumber duties rise-Reuters", "Reuters", "Lumber duties rise-Reuters"),
        ("Lumber duties rise - Reuters", None, "Lumber duties rise - Reuters"),
        ("Reuters - Lumber", "Reuters", "Reuters - Lumber"),  # only a suffix
    ],
)
def test_without_publisher(title: str, publisher: str | None, expected: str) -> None:
    assert without_publisher(title, publisher) == expected
