"""Match items against every watch term at once (SPEC §3). Pure, no I/O.

`Matcher` compiles all terms into one word trie. Matching an item tokenises
its fields once and walks the trie from each word, so the cost is about
O(words in the item + matches) whether there are 10 terms or 10,000; terms
are never looped over and no per-term regex exists.

Plural and possessive forms are handled on the text side: each word of the
text is "de-inflected" into the few (base word, rule) pairs it could satisfy
(``taxes`` -> taxes/exact, tax/plural, taxe/plural, ...), and those pairs are
the trie's edge labels. A phrase's words are edges labelled with the rule
that applies to them:

- ``x``: exact form only (quoted phrases);
- ``p``: the word or its possessive (``deal``, ``deal's``) — inner words;
- ``s``: the word, its plural or possessive (+s, +es, y->ies, 's, s') — the
  last word of an unquoted phrase.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.models import Item
from bot.query import Phrase, Query, Token, tokenize

__all__ = ["FIELDS", "TAG_SEPARATOR", "Matcher", "Span", "document_fields", "highlight"]

FIELDS = ("title", "summary", "tags")
TAG_SEPARATOR = " · "

K = TypeVar("K", bound=Hashable)

_EXACT = "x"
_POSSESSIVE = "p"
_PLURAL = "s"

_Label = tuple[str, str]


@dataclass(frozen=True)
class Span:
    """Where an include phrase matched: offsets into `document_fields(item)[field]`."""

    field: str
    start: int
    end: int


def document_fields(item: Item) -> dict[str, str]:
    """The texts a term is matched against. Never the link, GUID or any URL."""
    return {
        "title": item.title,
        "summary": item.summary,
        "tags": TAG_SEPARATOR.join(tag.strip() for tag in item.tags if tag.strip()),
    }


def _labels(word: str) -> tuple[_Label, ...]:
    """Every (base word, rule) that a text word satisfies."""
    labels: list[_Label] = [(word, _EXACT), (word, _POSSESSIVE), (word, _PLURAL)]
    if word.endswith("'s") and len(word) > 2:
        labels += [(word[:-2], _POSSESSIVE), (word[:-2], _PLURAL)]
    elif word.endswith("s") and len(word) > 1:
        labels.append((word[:-1], _PLURAL))
        if word.endswith("es") and len(word) > 2:
            labels.append((word[:-2], _PLURAL))
            if word.endswith("ies") and len(word) > 3:
                labels.append((word[:-3] + "y", _PLURAL))
    return tuple(labels)


def _phrase_labels(phrase: Phrase) -> list[_Label]:
    if phrase.exact:
        return [(word, _EXACT) for word in phrase.words]
    *inner, last = phrase.words
    return [(word, _POSSESSIVE) for word in inner] + [(last, _PLURAL)]


class _Node:
    __slots__ = ("children", "phrases")

    def __init__(self) -> None:
        self.children: dict[_Label, _Node] = {}
        self.phrases: list[int] = []  # ids of the phrases that end here


class Matcher(Generic[K]):
    """All terms compiled together. Build once, rebuild when terms change.

    `terms` are (key, query) pairs; a key may appear more than once (its
    queries then act as alternatives and their spans are merged).
    """

    def __init__(self, terms: Iterable[tuple[K, Query]]) -> None:
        self._root = _Node()
        self._keys: list[K] = []
        self._phrase_ids: dict[Phrase, int] = {}
        self._includers: list[list[int]] = []  # phrase id -> terms that include it
        self._excludes: list[tuple[int, ...]] = []  # term -> phrase ids it excludes
        for key, query in terms:
            term = len(self._keys)
            self._keys.append(key)
            for pid in dict.fromkeys(self._add_phrase(p) for p in query.include):
                self._includers[pid].append(term)
            self._excludes.append(tuple({self._add_phrase(p) for p in query.exclude}))

    def _add_phrase(self, phrase: Phrase) -> int:
        pid = self._phrase_ids.get(phrase)
        if pid is not None:
            return pid
        pid = len(self._includers)
        self._phrase_ids[phrase] = pid
        self._includers.append([])
        node = self._root
        for label in _phrase_labels(phrase):
            node = node.children.setdefault(label, _Node())
        node.phrases.append(pid)
        return pid

    def __len__(self) -> int:
        return len(self._keys)

    def match(self, item: Item) -> dict[K, list[Span]]:
        """Keys of every term that matches the item, each with the spans of
        its matched include phrases (ordered by field, then position)."""
        return self.match_fields(document_fields(item))

    def match_fields(self, fields: dict[str, str]) -> dict[K, list[Span]]:
        """Like `match`, over already extracted field texts."""
        found: dict[int, list[Span]] = {}
        for name, text in fields.items():
            if text:
                self._scan(name, text, found)
        if not found:
            return {}

        spans_by_term: dict[int, list[Span]] = {}
        for pid, spans in found.items():
            for term in self._includers[pid]:
                spans_by_term.setdefault(term, []).extend(spans)

        order = {name: index for index, name in enumerate(fields)}
        result: dict[K, list[Span]] = {}
        for term in sorted(spans_by_term):
            if any(pid in found for pid in self._excludes[term]):
                continue
            result.setdefault(self._keys[term], []).extend(spans_by_term[term])
        for key, spans in result.items():
            result[key] = sorted(set(spans), key=lambda s: (order[s.field], s.start, s.end))
        return result

    def _scan(self, name: str, text: str, found: dict[int, list[Span]]) -> None:
        """Record every phrase occurrence in one field's text into `found`."""
        tokens = tokenize(text)
        breaks = _tag_breaks(text, tokens) if name == "tags" else frozenset()
        cache: dict[str, tuple[_Label, ...]] = {}
        labels = [cache.get(t.word) or cache.setdefault(t.word, _labels(t.word)) for t in tokens]
        root = self._root
        for first in range(len(tokens)):
            nodes = [root]
            last = first
            while nodes and last < len(tokens):
                if last > first and last in breaks:
                    break
                following: list[_Node] = []
                for node in nodes:
                    for label in labels[last]:
                        child = node.children.get(label)
                        if child is None:
                            continue
                        if child.phrases:
                            span = Span(name, tokens[first].start, tokens[last].end)
                            for pid in child.phrases:
                                found.setdefault(pid, []).append(span)
                        if child.children:
                            following.append(child)
                nodes = following
                last += 1


def _tag_breaks(text: str, tokens: list[Token]) -> frozenset[int]:
    """Token indexes that start a new tag: a phrase never spans two tags."""
    return frozenset(
        index
        for index in range(1, len(tokens))
        if TAG_SEPARATOR in text[tokens[index - 1].end : tokens[index].start]
    )


# --------------------------------------------------------------------------
# Snippets
# --------------------------------------------------------------------------

_ELLIPSIS = "…"
_SNAP = 30  # how far a cut may move to land between words


def highlight(
    text: str, spans: list[tuple[int, int]], max_len: int = 280
) -> list[tuple[str, bool]]:
    """A short plain snippet of `text` as (segment, is_bold) pairs.

    Whitespace is collapsed; a text longer than `max_len` is cut (between
    words where possible) to a window around the first span, with "…" at
    each cut end. Spans index the original `text`; overlapping spans merge.
    No escaping happens here: sinks do that for their destination.
    """
    bold = [False] * len(text)
    for start, end in spans:
        for index in range(max(start, 0), min(end, len(text))):
            bold[index] = True

    chars: list[tuple[str, bool]] = []
    gap_start: int | None = None
    for index, ch in enumerate(text):
        if ch.isspace() or unicodedata.category(ch) == "Cc":
            if gap_start is None:
                gap_start = index
            continue
        if gap_start is not None and chars:
            chars.append((" ", bold[gap_start] and bold[index]))
        gap_start = None
        chars.append((ch, bold[index]))

    start, end = _window(chars, max_len)
    segments: list[tuple[str, bool]] = []
    if start > 0:
        segments.append((_ELLIPSIS, False))
    for ch, is_bold in chars[start:end]:
        if segments and segments[-1][1] == is_bold:
            segments[-1] = (segments[-1][0] + ch, is_bold)
        else:
            segments.append((ch, is_bold))
    if end < len(chars):
        if segments and not segments[-1][1]:
            segments[-1] = (segments[-1][0] + _ELLIPSIS, False)
        else:
            segments.append((_ELLIPSIS, False))
    return segments


def _window(chars: list[tuple[str, bool]], max_len: int) -> tuple[int, int]:
    """[start, end) of the part of `chars` to show."""
    total = len(chars)
    if total <= max_len:
        return 0, total
    inner = max(max_len - 2, 1)  # room for the two "…"
    first = next((i for i, (_, is_bold) in enumerate(chars) if is_bold), None)
    if first is None:
        start = 0
        keep_until = 0
    else:
        stop = first
        while stop < total and chars[stop][1]:
            stop += 1
        start = max(0, min(first - max(0, (inner - (stop - first)) // 2), total - inner))
        keep_until = min(stop, start + inner)
    end = min(total, start + inner)

    if start > 0 and chars[start - 1][0] != " ":  # cut mid-word: move to the next word
        limit = min(start + _SNAP, first if first is not None else end, end)
        space = next((i for i in range(start, limit) if chars[i][0] == " "), None)
        if space is not None:
            start = space + 1
    if end < total and chars[end][0] != " ":  # same at the end, moving back
        floor = max(end - _SNAP, keep_until, start + 1)
        space = next((i for i in range(end - 1, floor - 1, -1) if chars[i][0] == " "), None)
        if space is not None:
            end = space
    while start < end and chars[start][0] == " ":
        start += 1
    while end > start and chars[end - 1][0] == " ":
        end -= 1
    return start, end
