"""Feed boilerplate that is not the story (SPEC §3 "Fields searched"). Pure.

Aggregators and newsletter platforms append the same furniture to every
item's summary: Hacker News its link/points/comments footer (hnrss.org) or a
bare "Comments" link (its own feed), Reddit its
"submitted by /u/… [link] [comments]" line, Substack its "Thanks for
reading … Subscribe" call. Those words are never searched (a `comments`
term would match every Hacker News item) and never shown in snippets.
`strip_boilerplate` works on plain text, after HTML and URLs are removed.
"""

from __future__ import annotations

import re

__all__ = ["strip_boilerplate"]

# Hacker News: "Article URL: <url> Comments URL: <url> Points: 12 # Comments: 3"
# (URLs already removed). "Ask HN" items keep their own text before the footer.
_HACKER_NEWS = re.compile(
    r"(?:\bArticle URL:\s*)?\bComments URL:\s*(?:Points:\s*\d+\s*)?(?:#\s*Comments:\s*\d+)?"
)
# Reddit: "submitted by /u/name [link] [comments]", sometimes "to r/sub" too.
_REDDIT = re.compile(
    r"\bsubmitted by\s+/?u/[\w-]+\s*(?:to\s+/?r/\w+\s*)?(?:\[link\]\s*)?(?:\[comments\])?"
)
# Substack: "Thanks for reading Name! Subscribe for free to receive new posts
# and support my work." (also "Subscribe now", a nameless "Thanks for
# reading!", the share call "Thanks for reading Name! This post is public so
# feel free to share it. Share", "… is a reader-supported publication. To
# receive new posts …, consider becoming a … subscriber.")
_SUBSTACK = re.compile(
    r"\bThanks for reading\b[^.!?]{0,120}[.!?]\s*"
    r"(?:Subscribe\b[^.!?]{0,160}[.!?]?"
    r"|This post is public so feel free to share it\.(?:\s*Share\b)?)"
    r"|\b[^.!?]{1,120} is a reader-supported publication\.\s*To receive new posts"
    r"[^.!?]{0,200}subscriber\.?"
)


# news.ycombinator.com/rss itself: the whole description is a link to the
# thread, `<a href="https://news.ycombinator.com/item?id=N">Comments</a>`.
_HACKER_NEWS_LINK_ONLY = "Comments"


def strip_boilerplate(text: str) -> str:
    """`text` without the platform furniture described above; whitespace
    around a removed part collapses to one space. Other text is unchanged."""
    if text.strip() == _HACKER_NEWS_LINK_ONLY:
        return ""
    out = text
    if "Comments URL:" in out:
        out = _HACKER_NEWS.sub(" ", out)
    if "submitted by" in out:
        out = _REDDIT.sub(" ", out)
    if "Thanks for reading" in out or "reader-supported publication" in out:
        out = _SUBSTACK.sub(" ", out)
    if out is text:
        return text
    return " ".join(out.split())
