"""Turning feed HTML and strings into short, safe plain text."""

from __future__ import annotations

import html
import re

from bot.boilerplate import strip_boilerplate

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

# Double-escaped HTML ("&amp;lt;b&amp;gt;") still holds tags after one round of
# decoding. Only complete tags with a real HTML element name count, so plain
# text such as "a <b and c" or "Vector<int>" is left alone.
_HTML_TAG = re.compile(
    r"</?(?:a|abbr|article|aside|audio|b|big|blockquote|body|br|button|caption|center|cite|"
    r"code|dd|del|details|div|dl|dt|em|embed|figcaption|figure|font|footer|form|h[1-6]|"
    r"head|header|hr|html|i|iframe|img|input|ins|kbd|li|link|main|mark|meta|nav|noscript|"
    r"object|ol|p|picture|pre|q|s|script|section|small|source|span|strike|strong|style|"
    r"sub|summary|sup|table|tbody|td|template|tfoot|th|thead|time|tr|tt|u|ul|video|wbr)"
    r"(?=[\s/>])(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_MARKUP_ROUNDS = 2  # extra rounds for double- and triple-escaped HTML

# URLs written out as text: a scheme followed by "//", or a "www." host, up to
# whitespace, a quote or an angle bracket; punctuation after it ("see
# https://x.org/a.") is not part of it. Schemes are at most 16 characters, so
# a long run of letters costs linear time. A URL alone in brackets takes the
# brackets with it: "(https://x.org)".
_URL_BODY = (
    r"(?:(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,15}://|(?<![\w@/.\-])www\d{0,3}\.(?=\w))"
    r"(?:[^\s<>\"]*[^\s<>\".,;:!?'’”»)\]}])?"
)
_URL = re.compile(
    rf"\s?(?:\(\s*{_URL_BODY}\s*\)|\[\s*{_URL_BODY}\s*\]|<\s*{_URL_BODY}\s*>|{_URL_BODY})",
    re.IGNORECASE,
)
_CLOSING_PUNCTUATION = frozenset(".,;:!?")


def _collapse(s: str) -> str:
    # The hottest function of a poll cycle: str.split() is the regex
    # `\s+` (both use str.isspace) at a fraction of the cost, and text with
    # only printable characters holds none of the _CONTROL ones (all are
    # categories Cc/Cf), so the common case never runs a regex.
    # Text is collapsed several times on its way (plain, searchable, stored):
    # printable text holds no whitespace but " ", so without a double, leading
    # or trailing space it is already collapsed.
    if s.isprintable():
        if "  " not in s and s[:1] != " " and s[-1:] != " ":
            return s
    else:
        s = _CONTROL.sub("", s)
    return " ".join(s.split())


def html_to_text(html_text: str) -> str:
    """Plain text of an HTML fragment: tags removed (script/style content
    dropped), entities decoded, control characters removed and all whitespace
    collapsed to single spaces."""
    if not html_text:
        return ""
    if "<" not in html_text and "&" not in html_text:
        return _collapse(html_text)  # plain text already (most titles)
    s = _DROP_BLOCKS.sub(" ", html_text)
    if "<![CDATA[" in s:  # rare: a scan for it costs a tenth of the regex's
        s = _CDATA.sub(r"\1", s)
    s = _BLOCK_TAG.sub(" ", s)
    s = _TAG.sub("", s)
    s = html.unescape(s)
    return _collapse(strip_leftover_markup(s))


def strip_leftover_markup(text: str) -> str:
    """`text` without the HTML tags it still holds after entity decoding (a
    double-escaped description decodes to "<a href=...>Story</a>"); when there
    were some, their entities are decoded once more too. Text without complete
    tags of real HTML elements is returned unchanged."""
    for _ in range(_MARKUP_ROUNDS):
        if "<" not in text or not _HTML_TAG.search(text):
            break
        text = _DROP_BLOCKS.sub(" ", text)
        text = _BLOCK_TAG.sub(" ", text)
        text = html.unescape(_HTML_TAG.sub("", text))
    return text


def remove_urls(text: str) -> str:
    """`text` without the URLs written in it ("read more at https://x.org/a
    today" -> "read more at today"), whitespace collapsed. Links are never
    searched, neither as link fields nor as visible text."""
    if not text or ("://" not in text and "www" not in text.lower()):
        return text

    def gap(match: re.Match[str]) -> str:
        # "see https://x.org/a." -> "see.": no space left before punctuation.
        after = text[match.end() : match.end() + 1]
        return "" if after in _CLOSING_PUNCTUATION else " "

    out = _URL.sub(gap, text)
    return text if out == text else _collapse(out)


def plain_text(value: str, *, is_html: bool, max_len: int | None = None) -> str:
    """Plain text of a feed string: HTML (when `is_html`) and leftover markup
    removed, entities decoded, control characters dropped, whitespace
    collapsed, optionally truncated."""
    if not value:
        return ""
    text = html_to_text(value) if is_html else _collapse(strip_leftover_markup(value))
    return _shortened(text, max_len)


def searchable_text(value: str, *, is_html: bool, max_len: int | None = None) -> str:
    """`plain_text` without the URLs written in it and without feed
    boilerplate (`bot.boilerplate`): the text that is searched and shown as
    a snippet (SPEC §3: never URLs, markup or platform furniture)."""
    # Each step keeps collapsed text collapsed.
    text = strip_boilerplate(remove_urls(plain_text(value, is_html=is_html)))
    return _shortened(text, max_len)


def _shortened(collapsed: str, max_len: int | None) -> str:
    """`clean_text(collapsed, max_len)` for text that is collapsed already:
    collapsing it again would change nothing."""
    return collapsed if max_len is None else truncate(collapsed, max_len)


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
