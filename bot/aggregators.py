"""What aggregators wrap around an article, taken off again (pure).

Reddit and Google News entries stand for another publisher's article: a
Reddit link post names it in its content, a Google News entry names its
publisher and appends it to the title. `bot.parse` applies these to every
entry; `bot.story_identity` then treats the entry as the article.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

# Reddit's listing feeds link each entry to its comments thread; a link post
# names the article in its content: `<a href="https://article">[link]</a>`.
# Found from the end without backtracking over the content: the last
# "[link]</a>", then the <a> tag just before it.
_LINK_TEXT = re.compile(r"\[link\]\s{0,50}</a>", re.IGNORECASE)
_ANCHOR_TAG = re.compile(
    r"""<a\s[^>]*?\bhref\s*=\s*["']([^"'<>]{1,4096})["'][^>]*>\s{0,50}$""", re.IGNORECASE
)
_TAG_WINDOW = 6000  # characters before "[link]" in which its <a> tag must start
_TITLE_DASHES = (" - ", " – ", " — ", " | ")


# Reddit's own hosts: its threads, and the images and videos it hosts (a post
# of those is Reddit's own story, best read in its thread).
_REDDIT_SITES = ("reddit.com", "redd.it")


def _is_reddit(url: str | None) -> bool:
    if not url or "redd" not in url.lower():
        return False  # every item's link is asked: most never name Reddit
    try:
        host = (urlsplit(url).hostname or "") if url else ""
    except ValueError:
        return False
    return any(host == site or host.endswith("." + site) for site in _REDDIT_SITES)


def reddit_article(content_html: str, link: str | None) -> str | None:
    """The absolute http(s) URL of the article a Reddit link post points at;
    None for self posts (their `[link]` is the thread itself), for images and
    videos Reddit hosts, and for entries that are not Reddit's."""
    if not _is_reddit(link):
        return None
    # Reddit's footer comes last; a "[link]" an author wrote in a self post's
    # text comes before it.
    last = None
    for last in _LINK_TEXT.finditer(content_html):  # noqa: B007 - the last one
        pass
    if last is None:
        return None
    window = (max(0, last.start() - _TAG_WINDOW), last.start())
    start = max(content_html.rfind("<a", *window), content_html.rfind("<A", *window))
    tag = _ANCHOR_TAG.match(content_html, start, last.start()) if start >= 0 else None
    if tag is None:
        return None
    article = html.unescape(tag.group(1)).strip()
    try:
        parts = urlsplit(article)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return None if _is_reddit(article) else article


def without_publisher(title: str, publisher: str | None) -> str:
    """Drop the publisher an aggregator appended to a headline:
    ("Lumber duties rise - Reuters", "Reuters") -> "Lumber duties rise"."""
    if not publisher:
        return title
    for dash in _TITLE_DASHES:
        suffix = dash + publisher
        if title.endswith(suffix) and len(title) > len(suffix):
            return title[: -len(suffix)].rstrip()
    return title
