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
- ``s``: the word, its plural (`bot.query.plural_forms`: +s, and +es or
  y->ies where English uses them) or possessive ('s, s') — the last word of
  an unquoted phrase.

A word with two plain spellings (`bot.query.spellings`: "đ" is "d" or "dj")
is both: on the text side its labels are those of every spelling, on the
term side each spelling is a path of its own in the trie.

Acronyms: a text word written in capitals keeps them (``US``, ``NGOs``, see
`bot.query.capitals_form`) and has the labels of its lower-case self plus its
own, so a lower-case term still meets it while an acronym term (whose word is
in capitals) meets nothing else. Korean particles are de-inflected like the
possessive (반도체가 -> 반도체). Other spellings of hyphenated and closed words
(`bot.query.WordForm`) are further trie paths to the same phrase; a gap that
must be a hyphen in the text is checked when such a path completes.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from bot.models import Item
from bot.query import (
    HYPHENS,
    IRREGULAR_SINGULARS,
    Phrase,
    Query,
    Token,
    WordForm,
    ascii_words,
    capitals_form,
    is_capitals,
    plural_forms,
    spellings,
    tokenize,
)

__all__ = ["FIELDS", "TAG_SEPARATOR", "Matcher", "Span", "document_fields", "highlight"]

FIELDS = ("title", "summary", "tags")
TAG_SEPARATOR = " · "

K = TypeVar("K", bound=Hashable)

_EXACT = "x"
_POSSESSIVE = "p"
_PLURAL = "s"

_Label = tuple[str, str]
_WordSpan = tuple[str, int, int]  # (field, first word, last word) of a phrase match


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


# Korean particles (josa) written onto the word before them: 반도체가,
# 반도체를, 서울에서. Longest first, so 에서는 is tried before 는.
_PARTICLES = tuple(
    sorted(
        {
            *("이", "가", "은", "는", "을", "를", "의", "에", "와", "과", "도", "로", "만", "께"),
            *("에서", "에게", "으로", "까지", "부터", "보다", "처럼", "이나", "한테", "께서"),
            *("이라", "이랑", "랑", "에는", "에도", "에서는", "에서도", "으로는", "로는", "과의"),
            *("와의", "들", "들이", "들은", "들을", "들의", "들도", "이다", "이며", "라는"),
        },
        key=len,
        reverse=True,
    )
)


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"


@lru_cache(maxsize=1 << 16)
def _labels(word: str) -> tuple[_Label, ...]:
    """Every (base word, rule) that a text word satisfies."""
    if is_capitals(word):
        return (*_capitals_labels(word), *_labels(word.lower()))
    forms = spellings(word)
    if len(forms) == 1:
        return tuple(_spelling_labels(word))
    return tuple(dict.fromkeys(label for form in forms for label in _spelling_labels(form)))


def _spelling_labels(word: str) -> list[_Label]:
    labels: list[_Label] = [(word, _EXACT), (word, _POSSESSIVE), (word, _PLURAL)]
    if word.endswith("+") and not word.endswith("++") and len(word) > 2:
        labels += _spelling_labels(word[:-1])  # Disney+ is also Disney; C++ is not C
    if word.endswith("'s") and len(word) > 2:
        labels += [(word[:-2], _POSSESSIVE), (word[:-2], _PLURAL)]
        labels += [(base, _PLURAL) for base in _irregular_bases(word[:-2])]  # women's
    elif word.endswith("s") and len(word) > 1:
        # The bases this could be a plural of (tariffs, taxes, quizzes,
        # companies), each kept only if its plural forms really include it:
        # "rates" is a plural of "rate", never of "rat".
        candidates = [word[:-1], word[:-2], word[:-3]]
        if word.endswith("ies"):
            candidates.append(word[:-3] + "y")
        labels += [(base, _PLURAL) for base in candidates if base and word in plural_forms(base)]
    elif _is_hangul(word[-1]):
        for particle in _PARTICLES:
            if word.endswith(particle) and len(word) > len(particle):
                stem = word[: -len(particle)]
                labels += [(stem, _POSSESSIVE), (stem, _PLURAL)]
    labels += [(base, _PLURAL) for base in _irregular_bases(word)]
    return labels


def _irregular_bases(word: str) -> list[str]:
    """The words `word` is an irregular plural of: crises -> crisis, men -> man."""
    bases = [IRREGULAR_SINGULARS[word]] if word in IRREGULAR_SINGULARS else []
    if word.endswith("men"):
        bases.append(word[:-3] + "man")  # women, spokesmen
    return [base for base in bases if word in plural_forms(base)]


def _capitals_labels(word: str) -> list[_Label]:
    """The acronym labels of a text word written in capitals: itself, and
    the base of a plural or possessive ending (NGOs, NGO's -> NGO)."""
    labels: list[_Label] = [(word, _EXACT), (word, _POSSESSIVE), (word, _PLURAL)]
    if word.endswith("+") and not word.endswith("++") and len(word) > 2:
        labels += _capitals_labels(word[:-1])  # OPEC+ is also OPEC
    if word.endswith("'s"):
        labels += [(word[:-2], _POSSESSIVE), (word[:-2], _PLURAL)]
    elif word.endswith("s") and is_capitals(word[:-1]):
        labels.append((word[:-1], _PLURAL))
    return labels


@lru_cache(maxsize=1 << 16)
def _surface_forms(label: _Label) -> frozenset[str]:
    """The text words whose `_labels` include `label` (its inverse), for a
    label whose base is one spelling (no "đ")."""
    base, rule = label
    if is_capitals(base):  # an acronym: NGO, NGO's, NGOs
        if rule == _EXACT:
            return frozenset((base, base + "+"))
        acronym = frozenset((base, base + "+", base + "'s"))
        return acronym if rule == _POSSESSIVE else acronym | {base + "s"}
    if rule == _EXACT:
        forms = {base}
    else:
        forms = {base, base + "'s"}
        if rule == _PLURAL:
            plurals = plural_forms(base)
            forms.update(plurals)
            forms.update(plural + "'s" for plural in plurals if not plural.endswith("s"))
        forms.add(base + "+")  # Disney+
        if base and _is_hangul(base[-1]):
            forms.update(base + particle for particle in _PARTICLES)
    # The same words written in capitals (DEAL, DEALs, DEAL's) are text words
    # too; a capitals word has at most 5 letters, an "&" and an ending.
    for form in [form for form in forms if len(form) <= 8]:
        if _never_capitals(form):
            continue
        forms.add(capitals_form(form.upper(), form))
        for ending in ("'s", "s"):
            if form.endswith(ending) and len(form) > len(ending):
                stem = form[: -len(ending)]
                forms.add(capitals_form(stem.upper() + ending, form))
    return frozenset(forms)


def _never_capitals(form: str) -> bool:
    """Whether no capitals spelling of `form` (with or without an "s"/"'s"
    ending) can be an acronym: `capitals_form` keeps a stem of 2-5 letters
    only, and stripping an ending removes at most one letter. Skipping these
    saves most of a matcher build's time on ordinary words and names."""
    letters = len(form) if form.isalpha() else sum(map(str.isalpha, form))
    return letters >= 7 or (letters >= 6 and not form.endswith("s"))


def _phrase_paths(phrase: Phrase) -> list[tuple[list[_Label], tuple[int, ...]]]:
    """The trie paths of a phrase, each with the gaps that must be hyphens:
    one per written form (`Phrase.forms`) and combination of spellings."""
    paths: list[tuple[list[_Label], tuple[int, ...]]] = []
    for form in (WordForm(phrase.words), *phrase.forms):
        if phrase.exact:
            rules = [_EXACT] * len(form.words)
        else:
            rules = [_POSSESSIVE] * (len(form.words) - 1) + [_PLURAL]
        labels: list[list[_Label]] = [[]]
        for word, rule in zip(form.words, rules, strict=True):
            labels = [[*path, (spelling, rule)] for path in labels for spelling in spellings(word)]
        paths.extend((path, form.hyphen_gaps) for path in labels)
    return paths


class _Node:
    __slots__ = ("children", "phrases")

    def __init__(self) -> None:
        self.children: dict[_Label, _Node] = {}
        # (phrase id, gaps that must be hyphens) of the phrases that end here
        self.phrases: list[tuple[int, tuple[int, ...]]] = []


class Matcher(Generic[K]):
    """All terms compiled together. Build once, rebuild when terms change.

    `terms` are (key, query) pairs; a key may appear more than once (its
    queries then act as alternatives and their spans are merged).
    """

    def __init__(self, terms: Iterable[tuple[K, Query]]) -> None:
        self._root = _Node()
        # Every text word that can start some phrase: one set lookup rejects
        # the vast majority of words before any trie walking.
        self._first_forms: set[str] = set()
        # The root's children that each start word leads to, kept as texts
        # meet them: most starts are the same few common words.
        self._first_nodes: dict[str, list[_Node]] = {}
        self._keys: list[K] = []
        # Keyed with the written forms too: `trade-deal` (also "tradedeal")
        # equals `trade deal` as a Phrase but has one more path.
        self._phrase_ids: dict[tuple[Phrase, tuple[WordForm, ...]], int] = {}
        self._includers: list[list[int]] = []  # phrase id -> terms that include it
        self._excludes: list[tuple[int, ...]] = []  # term -> phrase ids it excludes
        for key, query in terms:
            term = len(self._keys)
            self._keys.append(key)
            for pid in dict.fromkeys(self._add_phrase(p) for p in query.include):
                self._includers[pid].append(term)
            self._excludes.append(tuple({self._add_phrase(p) for p in query.exclude}))

    def _add_phrase(self, phrase: Phrase) -> int:
        pid = self._phrase_ids.get((phrase, phrase.forms))
        if pid is not None:
            return pid
        pid = len(self._includers)
        self._phrase_ids[(phrase, phrase.forms)] = pid
        self._includers.append([])
        for labels, hyphen_gaps in _phrase_paths(phrase):
            self._first_forms.update(_surface_forms(labels[0]))
            node = self._root
            for label in labels:
                node = node.children.setdefault(label, _Node())
            if (pid, hyphen_gaps) not in node.phrases:
                node.phrases.append((pid, hyphen_gaps))
        return pid

    def __len__(self) -> int:
        return len(self._keys)

    def match(self, item: Item) -> dict[K, list[Span]]:
        """Keys of every term that matches the item, each with the spans of
        its matched include phrases (ordered by field, then position)."""
        return self.match_fields(document_fields(item))

    def match_fields(self, fields: dict[str, str]) -> dict[K, list[Span]]:
        """Like `match`, over already extracted field texts."""
        found: dict[int, list[_WordSpan]] = {}
        tokens_of: dict[str, list[Token]] = {}
        for name, text in fields.items():
            if text:
                self._scan(name, text, found, tokens_of)
        if not found:
            return {}

        spans_by_term: dict[int, list[_WordSpan]] = {}
        for pid, spans in found.items():
            for term in self._includers[pid]:
                spans_by_term.setdefault(term, []).extend(spans)

        order = {name: index for index, name in enumerate(fields)}
        words_of: dict[K, list[_WordSpan]] = {}
        for term in sorted(spans_by_term):
            if any(pid in found for pid in self._excludes[term]):
                continue
            words_of.setdefault(self._keys[term], []).extend(spans_by_term[term])
        # Offsets only now, for the fields a surviving term matched in: most
        # phrase hits are exclusions or belong to no term that survives.
        result: dict[K, list[Span]] = {}
        for key, word_spans in words_of.items():
            unique_spans: set[Span] = set()
            for name, first, last in word_spans:
                tokens = tokens_of.get(name)
                if tokens is None:
                    tokens = tokens_of[name] = tokenize(fields[name])
                unique_spans.add(Span(name, tokens[first].start, tokens[last].end))
            result[key] = sorted(unique_spans, key=lambda s: (order[s.field], s.start, s.end))
        return result

    def _scan(
        self,
        name: str,
        text: str,
        found: dict[int, list[_WordSpan]],
        tokens_of: dict[str, list[Token]],
    ) -> None:
        """Record every phrase occurrence in one field's text into `found`, as
        word indexes; `tokens_of` gets the field's tokens if they were needed."""
        tokens: list[Token] | None = None
        # Words only (near C speed); offsets are computed just for texts that match.
        plain_words = ascii_words(text) if name != "tags" else None
        if plain_words is not None:
            words = plain_words
        else:
            tokens = tokens_of[name] = tokenize(text)
            words = [t.word for t in tokens]
        first_forms = self._first_forms
        # Rare: a word with two spellings ("đ"; only Đ and đ fold to one).
        if tokens is not None and ("đ" in text or "Đ" in text):
            starts = [
                i
                for i, word in enumerate(words)
                if any(form in first_forms for form in spellings(word))
            ]
        else:
            starts = [i for i, word in enumerate(words) if word in first_forms]
        if not starts:
            return
        breaks = _tag_breaks(text, tokens) if tokens is not None and name == "tags" else frozenset()
        first_nodes = self._first_nodes
        count = len(words)
        for first in starts:
            nodes = first_nodes.get(words[first])
            if nodes is None:
                nodes = first_nodes[words[first]] = self._children_of_root(words[first])
            last = first
            while nodes:
                for node in nodes:
                    if node.phrases:
                        span = (name, first, last)
                        for pid, hyphen_gaps in node.phrases:
                            if hyphen_gaps:
                                if tokens is None:  # rare: a hyphenated phrase
                                    tokens = tokens_of[name] = tokenize(text)
                                if not _hyphenated(text, tokens, first, hyphen_gaps):
                                    continue
                            found.setdefault(pid, []).append(span)
                last += 1
                if last >= count or last in breaks:
                    break
                labels = _labels(words[last])
                following: list[_Node] = []
                for node in nodes:
                    if node.children:
                        for label in labels:
                            child = node.children.get(label)
                            if child is not None:
                                following.append(child)
                nodes = following

    def _children_of_root(self, word: str) -> list[_Node]:
        children = self._root.children
        return [child for child in map(children.get, _labels(word)) if child is not None]


def _hyphenated(text: str, tokens: list[Token], first: int, gaps: tuple[int, ...]) -> bool:
    """Whether each gap (after word `first` + gap) is a hyphen in `text`."""
    return all(
        text[tokens[first + gap].end : tokens[first + gap + 1].start] in HYPHENS for gap in gaps
    )


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
# Whitespace and control characters separate the words of a snippet.
_NON_GAP = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]+")
_SNAP = 30  # how far a cut may move to land between words


def highlight(
    text: str, spans: list[tuple[int, int]], max_len: int = 280
) -> list[tuple[str, bool]]:
    """A short plain snippet of `text` as (segment, is_bold) pairs.

    Whitespace is collapsed; a text longer than `max_len` is cut (between
    words where possible) to a window around the first span, with "…" at
    each cut end. Spans index the original `text`; overlapping spans merge.
    No escaping happens here: sinks do that for their destination.

    Works on runs of non-space characters rather than on characters, so its
    cost is linear in the number of words (it runs once per alert).
    """
    spans = sorted((max(a, 0), min(b, len(text))) for a, b in spans if b > a and a < len(text))
    # Bound the work on huge texts: only a raw region around the first span matters.
    lo, hi = 0, len(text)
    limit = 4 * max_len + 64
    if hi > limit:
        anchor = spans[0][0] if spans else 0
        lo = max(0, min(anchor - limit // 2, hi - limit))
        hi = lo + limit
    runs = [(m.start(), m.end()) for m in _NON_GAP.finditer(text, lo, hi)]
    if not runs:
        return []
    # Collapsed text = runs joined by single spaces; offsets[i] = where run i starts in it.
    offsets: list[int] = []
    position = 0
    for run_start, run_end in runs:
        offsets.append(position)
        position += run_end - run_start + 1
    collapsed = " ".join(text[a:b] for a, b in runs)
    starts = [a for a, _ in runs]

    def to_collapsed(raw: int, is_end: bool) -> int:
        index = bisect_right(starts, raw) - 1
        if index < 0:
            return 0
        run_start, run_end = runs[index]
        if raw <= run_end:
            return offsets[index] + raw - run_start
        # In the gap after run `index`: an end stays after it, a start moves on.
        return offsets[index] + run_end - run_start + (0 if is_end else 1)

    bold: list[tuple[int, int]] = []
    for a, b in spans:
        if b <= lo or a >= hi:
            continue
        start, end = to_collapsed(max(a, lo), False), to_collapsed(min(b, hi), True)
        if end <= start:
            continue
        if bold and start <= bold[-1][1]:
            bold[-1] = (bold[-1][0], max(bold[-1][1], end))
        else:
            bold.append((start, end))

    window_start, window_end = _window(collapsed, bold, max_len - (lo > 0) - (hi < len(text)))
    segments: list[tuple[str, bool]] = []
    cursor = window_start
    for a, b in bold:
        a, b = max(a, window_start), min(b, window_end)
        if b <= a:
            continue
        if a > cursor:
            segments.append((collapsed[cursor:a], False))
        segments.append((collapsed[a:b], True))
        cursor = b
    if cursor < window_end:
        segments.append((collapsed[cursor:window_end], False))
    if window_start > 0 or lo > 0:
        if segments and not segments[0][1]:
            segments[0] = (_ELLIPSIS + segments[0][0], False)
        else:
            segments.insert(0, (_ELLIPSIS, False))
    if window_end < len(collapsed) or hi < len(text):
        if segments and not segments[-1][1]:
            segments[-1] = (segments[-1][0] + _ELLIPSIS, False)
        else:
            segments.append((_ELLIPSIS, False))
    return segments


def _window(text: str, bold: list[tuple[int, int]], max_len: int) -> tuple[int, int]:
    """[start, end) of the collapsed `text` to show: all of it if it fits,
    else about `max_len` characters (room left for the "…" marks) centred on
    the first bold range, moved to word boundaries when one is near."""
    total = len(text)
    if total <= max_len:
        return 0, total
    inner = max(max_len - 2, 1)
    if bold:
        first, stop = bold[0]
        start = max(0, min(first - max(0, (inner - (stop - first)) // 2), total - inner))
        keep_until = min(stop, start + inner)
    else:
        first, start, keep_until = total, 0, 0
    end = min(total, start + inner)
    if start > 0 and text[start - 1] != " ":  # cut mid-word: move to the next word
        space = text.find(" ", start, min(start + _SNAP, first, end))
        if space != -1:
            start = space + 1
    if end < total and text[end] != " ":  # same at the end, moving back
        space = text.rfind(" ", max(end - _SNAP, keep_until, start + 1), end)
        if space != -1:
            end = space
    while start < end and text[start] == " ":
        start += 1
    while end > start and text[end - 1] == " ":
        end -= 1
    return start, end
