"""Turning feed HTML and strings into short, safe plain text."""

from __future__ import annotations

import html
import re

# Script/style bodies, comments and CDATA wrappers go first. An unterminated one
# (or an unterminated tag) swallows the rest of the input (matching `\Z`), which
# keeps this linear: a pattern that can fail after scanning to the end of the
# input would rescan it from every "<".
_DROP_BLOCKS = re.compile(
    r"<(script|style|template|noscript)\b[^>]*(?:>|\Z).*?(?:</\1\s*>|\Z)"
    r"|<!--.*?(?:-->|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|\Z)", re.DOTALL)
# Tags that separate words when rendered; replaced by a space. Other (inline)
# tags vanish so "fo<b>o</b>" stays one word.
_BLOCK_TAG = re.compile(
    r"</?(?:address|article|aside|blockquote|br|dd|div|dl|dt|figcaption|figure|footer|"
    r"h[1-6]|header|hr|img|li|main|nav|ol|p|pre|section|table|tbody|td|tfoot|th|thead|"
    r"tr|ul)\b[^>]*(?:>|\Z)",
    re.IGNORECASE,
)
# A tag starts with "<" followed by a letter, "/", "!" or "?"; "a < b" is text.
_TAG = re.compile(r"<[A-Za-z/!?][^>]*(?:>|\Z)")
# C0/C1 controls, DEL, and zero-width/bidi format characters that only confuse.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_SPACE = re.compile(r"\s+")


def _collapse(s: str) -> str:
    return _SPACE.sub(" ", _CONTROL.sub("", s)).strip()


def html_to_text(html_text: str) -> str:
    """Plain text of an HTML fragment: tags removed (script/style content
    dropped), entities decoded, control characters removed and all whitespace
    collapsed to single spaces."""
    if not html_text:
        return ""
    if "<" not in html_text and "&" not in html_text:
        return _collapse(html_text)  # plain text already (most titles)
    s = _DROP_BLOCKS.sub(" ", html_text)
    s = _CDATA.sub(r"\1", s)
    s = _BLOCK_TAG.sub(" ", s)
    s = _TAG.sub("", s)
    s = html.unescape(s)
    return _collapse(s)


def truncate(s: str, max_len: int) -> str:
    """Cut `s` to at most `max_len` characters, ending in "…" when cut."""
    if max_len <= 0:
        return ""
    if len(s) <= max_len:
        return s
    cut = s[: max_len - 1]
    # Prefer a word boundary when one is close to the end.
    space = cut.rfind(" ")
    if space >= max_len - 40 and space > 0:
        cut = cut[:space]
    return cut.rstrip() + "…"


def clean_text(s: str, max_len: int | None = None) -> str:
    """Control characters removed, whitespace collapsed, optionally truncated
    to `max_len` characters (the last one then being "…")."""
    out = _collapse(s) if s else ""
    if max_len is not None:
        out = truncate(out, max_len)
    return out


def inline_text(s: str) -> str:
    """Like `clean_text` but keeps a leading/trailing space, for pieces of a
    sentence (snippet segments) that are joined back together."""
    return _SPACE.sub(" ", _CONTROL.sub("", s)) if s else ""
