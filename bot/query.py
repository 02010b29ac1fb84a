"""The watch-term language (SPEC §3): parse a term typed in Slack into a `Query`.

Pure functions, no I/O. The same `tokenize`/`fold` pair is used for the terms
and for the feed text they are matched against (see `bot.match`), so both
sides always agree on what a "word" is.

Grammar, informally::

    term        := element (element)*
    element     := WORD | "quoted phrase" | OR | -WORD | -"quoted phrase"

Words side by side form one phrase, upper-case ``OR`` (a word on its own)
separates alternatives, a quoted phrase is exact (no plural/possessive forms),
and exclusions (``-word``, ``-"a phrase"``) apply to the whole term wherever
they stand.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from bot.unicode_marks import mark_ranges

__all__ = [
    "ACRONYM_LETTERS",
    "HYPHENS",
    "IRREGULAR_PLURALS",
    "IRREGULAR_SINGULARS",
    "MAX_TERM_LENGTH",
    "Phrase",
    "Query",
    "QueryError",
    "Token",
    "WordForm",
    "ascii_words",
    "capitals_form",
    "fold",
    "is_capitals",
    "parse_query",
    "plural_forms",
    "spellings",
    "tokenize",
    "word_forms",
]

MAX_TERM_LENGTH = 200


class QueryError(ValueError):
    """A term that cannot be used. `str(error)` is a short sentence for users."""


# --------------------------------------------------------------------------
# Normalisation and tokenisation
# --------------------------------------------------------------------------

# Apostrophes that may sit inside a word: ASCII, ’ (the usual typographic one),
# ‘ (mis-typed), ʼ (modifier letter) and the full-width one. All fold to "'".
_APOSTROPHES = "'\u2019\u2018\u02bc\uff07"
_APOSTROPHE_TABLE = str.maketrans(dict.fromkeys(_APOSTROPHES[1:], "'"))

# Double quotes that delimit an exact phrase. Slack clients often turn " into
# “ ” (smart quotes), so all of these count, and any one closes any other.
_QUOTES = '"\u201c\u201d\u201e\u201f\uff02'

# Combining marks that are "accents" and are dropped by `fold`: the generic
# diacritic blocks plus Hebrew points and Arabic vowel marks. Script-specific
# marks that change a letter (kana voicing, Indic virama/nukta, Thai vowels)
# are kept, so folding never merges genuinely different words there.
_DIACRITIC_BLOCKS = (
    (0x0300, 0x036F),  # Combining Diacritical Marks
    (0x0591, 0x05C7),  # Hebrew points and cantillation
    (0x0610, 0x061A),  # Arabic marks
    (0x064B, 0x065F),  # Arabic harakat
    (0x0670, 0x0670),  # Arabic superscript alef
    (0x06D6, 0x06ED),  # Arabic Quranic marks
    (0x1AB0, 0x1AFF),  # Combining Diacritical Marks Extended
    (0x1DC0, 0x1DFF),  # Combining Diacritical Marks Supplement
    (0x20D0, 0x20FF),  # Combining Diacritical Marks for Symbols
    (0xFE20, 0xFE2F),  # Combining Half Marks
)
_DIACRITICS = frozenset(
    chr(cp)
    for lo, hi in _DIACRITIC_BLOCKS
    for cp in range(lo, hi + 1)
    if unicodedata.combining(chr(cp))
)


# Invisible format characters that may sit inside a word without splitting it:
# soft hyphen (a hyphenation hint), zero-width space/non-joiner/joiner (ZWNJ is
# ordinary spelling in Persian and Indic scripts), direction marks and
# embeddings, word joiner and invisible operators, BOM. `tokenize` keeps them
# inside the word around them and `fold` deletes them, for terms and feed text
# alike, so "ta\u00adriff" is the word "tariff" and "می\u200cخواهد" is one word
# whether or not the text it came from was cleaned first (bot.text strips
# these, except the soft hyphen, from feed text; the result is the same word).
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x200B, 0x200F),  # ZWSP, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x2069),  # bidi isolates
    (0xFEFF, 0xFEFF),  # BOM / zero-width no-break space
)
_IGNORABLE = "".join(chr(cp) for lo, hi in _IGNORABLE_RANGES for cp in range(lo, hi + 1))

# Latin letters that are "accented" to readers but have no Unicode
# decomposition, so NFKD leaves them alone. Lower case only: `fold` applies
# this after casefold. (ß needs no entry: casefold turns it into "ss".) "đ" is
# kept: it has two usual plain spellings, see `spellings`. The same table
# deletes the invisible characters above.
_FOLD_TABLE = str.maketrans(
    {
        "ł": "l",  # Łódź
        "ø": "o",  # København
        "ð": "d",  # Icelandic eth: Guðmundsson
        "ı": "i",  # Turkish dotless i: Diyarbakır
        "ȷ": "j",  # dotless j
        "ħ": "h",  # Maltese
        "ŧ": "t",  # Sámi
        "œ": "oe",  # Œuvre
        "æ": "ae",  # Æsir
        "þ": "th",  # Þingvellir
        **dict.fromkeys(_IGNORABLE),
    }
)


def fold(text: str) -> str:
    """Normalise text for comparison: NFKD (full-width and compatibility forms
    become plain ones), accents dropped, case folded, letters without a
    decomposition mapped to plain Latin (Ł -> l, Ø -> o, ð -> d, ı -> i,
    Œ -> oe, Æ -> ae, Þ -> th; Đ -> đ, see `spellings`), invisible format
    characters (soft hyphen, ZWSP/ZWNJ/ZWJ, ...) deleted and typographic
    apostrophes turned into ``'``. ``fold("Café") == "cafe"``,
    ``fold("ＴＡＲＩＦＦ") == "tariff"``, ``fold("Łódź") == "lodz"``.
    """
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHE_TABLE))
    # casefold can produce new decomposable or upper-case-looking sequences
    # (e.g. "İ" -> "i̇", "ℌ" decomposes to "H"), so normalise once more.
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if ch not in _DIACRITICS)
    # After the marks are gone, so that "ǿ" (ø + acute) also becomes "o".
    return unicodedata.normalize("NFC", text.translate(_FOLD_TABLE))


def spellings(word: str) -> tuple[str, ...]:
    """The plain spellings of a folded word: itself, or for a word with "đ"
    (the one letter `fold` keeps) both usual transliterations, "d" as in
    Vietnamese (Đà Nẵng -> da nang) and "dj" as in Serbo-Croatian
    (Đoković -> djokovic). The matcher compares spellings, so `djokovic`,
    `dokovic` and `Đoković` all match "Đoković" and "Djokovic" matches `Đoković`."""
    if "đ" not in word:
        return (word,)
    return (word.replace("đ", "d"), word.replace("đ", "dj"))


class Token(NamedTuple):
    """One word of a text: `start`/`end` index the ORIGINAL text, `word` is folded."""

    start: int
    end: int
    word: str


def _mark_class() -> str:
    """A regex character class body with every combining mark (category M).

    Python's ``\\w`` covers letters and digits but not combining marks, which
    belong to the word they follow ("e" + U+0301). The marks are written as
    themselves, not as ``\\U`` escapes: the regex parser reads a literal
    character in one step and an escape in ten, which was most of the cost
    of compiling the word patterns at every start.
    """
    return "".join(chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}" for lo, hi in mark_ranges())


# Scripts written without spaces between words: ideographs and kana, and the
# Thai, Lao, Khmer and Myanmar letters. Each character (with the marks that
# follow it) is a word of its own, so a term like 東京 becomes the two-word
# phrase 東 京 and ภาษี matches inside "ขึ้นภาษีนำเข้า". No word segmenter is
# used (see README, "Scripts without spaces").
_CJK = (
    "\u3005-\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0002fa1f\U00030000-\U0003134f"
    "\u0e01-\u0e5b\u0e81-\u0edf\u1000-\u109f\u1780-\u17dd"  # Thai, Lao, Myanmar, Khmer
)
# Combining marks and ignorable format characters belong to the word they
# follow: "e" + U+0301 is one letter, "ta" + soft hyphen + "riff" one word.
_M = f"[{_mark_class()}{_IGNORABLE}]"
_A = f"[{_APOSTROPHES}]"
_W = r"[^\W_]"  # a letter or digit: \w without the underscore
_LETTER = r"[^\W\d_]"
# Capitals with dots between them are one word: U.S., E.U., A.I., U.S (an
# abbreviation's last dot is optional; "U.S.-China" is U.S. and China).
_DOTTED = r"(?:[A-Z]\.){2,}(?![^\W_])|(?:[A-Z]\.)+[A-Z](?![^\W_])"
# Symbols that belong to a name: "&" between letters (AT&T, R&D, S&P) and a
# trailing "++", "+" or "#" after a letter (C++, C#, F#, Disney+).
_AMPERSAND = f"(?<={_LETTER})&(?={_LETTER})"
_SUFFIX = f"(?:(?<={_LETTER})(?:\\+\\+|[+#])(?![^\\W_]))?"
# A word: a letter/digit, then letters/digits/marks, with single apostrophes,
# underscores (eu_watcher is one word) and name ampersands allowed between
# them (don't, tariff's, AT&T). Leading/trailing apostrophes are not part of
# the word (tariffs' -> tariffs).
_WORD_RE = re.compile(
    f"{_DOTTED}|{_W}(?:{_W}|{_M})*(?:(?:{_A}|_+|{_AMPERSAND}){_W}(?:{_W}|{_M})*)*{_SUFFIX}"
)
_CJK_RE = re.compile(f"[{_CJK}]")
# Words of pure-ASCII text (the common case): same rules, no folding beyond lower().
_ASCII_WORD_RE = re.compile(
    f"{_DOTTED}|[A-Za-z0-9]+(?:(?:'|_+|(?<=[A-Za-z])&(?=[A-Za-z]))[A-Za-z0-9]+)*"
    r"(?:(?<=[A-Za-z])(?:\+\+|[+#])(?![A-Za-z0-9]))?"
)
# The same for lower-case ASCII text, where no capital (hence no dotted
# capitals word) can occur: a quarter faster, and most text goes through it.
_LOWER_WORD_RE = re.compile(
    r"[a-z0-9]+(?:(?:'|_+|(?<=[a-z])&(?=[a-z]))[a-z0-9]+)*"
    r"(?:(?<=[a-z])(?:\+\+|[+#])(?![a-z0-9]))?"
)
# The same for such text without the characters of its optional parts (see
# `_joins_words`): twice as fast.
_PLAIN_WORD_RE = re.compile("[a-z0-9]+")
# Text where every word is lower case or capitalised ("Trade Deal"): no
# capitals word (US, NGOs, AT&T) and no dotted one (U.S.), so the words of its
# lower-cased copy are its words.
_CAPITALS_RE = re.compile(r"[A-Z][.&]?[A-Z]")
# The same, for the rare run that contains ideographs or kana: those split off.
_WL = f"(?![{_CJK}]){_W}"
_SPLIT_PATTERN = (
    f"[{_CJK}]{_M}*|{_WL}(?:{_WL}|{_M})*(?:(?:{_A}|_+|{_AMPERSAND}){_WL}(?:{_WL}|{_M})*)*{_SUFFIX}"
)


@lru_cache(maxsize=1)
def _split_re() -> re.Pattern[str]:
    """Compiled on first use: most runs never meet an ideograph or kana."""
    return re.compile(_SPLIT_PATTERN)


# Hyphens that join the parts of one word written two ways (G-7 / G7).
HYPHENS = frozenset("-\u2010\u2011")

# French and Italian elided articles and prepositions: "l’Ukraine" is the two
# words "l" and "ukraine", so `Ukraine` matches it (and `l'Ukraine` still
# matches the same text, as the phrase "l ukraine"). Only at the start of a
# word and never before a lone "s", which is a possessive ("Nell's", "UN's").
# The single letters are the ones French and Italian elide: no "i", "o" or
# "y", so "I'm", "O'Brien", "o'clock" and "y'all" stay whole words.
_ELIDED = frozenset(
    {
        *("c", "d", "j", "l", "m", "n", "s", "t"),  # French; Italian l', d', c'
        *("qu", "jusqu", "lorsqu", "puisqu"),  # French
        *("dell", "dall", "all", "nell", "sull", "coll", "quell", "quest", "un"),  # Italian
    }
)


# Typographic punctuation of otherwise ASCII news text, each mapped to one
# ASCII character with the same role, so that such text (most English feeds)
# takes the ASCII paths below with unchanged offsets: ’ ‘ ʼ are apostrophes,
# the rest separate words as they would anyway.
_ASCII_STAND_INS = str.maketrans(
    {
        **dict.fromkeys(_APOSTROPHES[1:], "'"),
        **dict.fromkeys("\u00a0\u2002\u2003\u2009\u202f", " "),
        **dict.fromkeys("\u201c\u201d\u201e\u00ab\u00bb", '"'),
        **dict.fromkeys("\u2012\u2013\u2014\u2015\u2212", "~"),  # dashes: not "-" (HYPHENS)
        "\u2026": ".",
        "\u00b7": ";",
        "\u2022": ";",
    }
)


def _as_ascii(text: str) -> str | None:
    """`text` with typographic punctuation replaced one-for-one by ASCII, if
    that makes it ASCII; else None (letters that need folding, CJK, ...)."""
    if text.isascii():
        return text
    probe = text.translate(_ASCII_STAND_INS)
    return probe if probe.isascii() else None


def tokenize(text: str) -> list[Token]:
    """Split text into words: runs of letters and digits (with their combining
    marks, inner apostrophes, underscores and invisible format characters,
    and the symbols of names: AT&T, C++, C#). Everything else, including
    ``-``, separates words: ``"Trade-Deal"`` -> trade, deal; ``"tariff’s"``
    -> tariff's; an elided article is a word of its own: ``"l’Ukraine"`` ->
    l, ukraine. Dotted capitals are one word (``"U.S."`` -> US) and a word
    written in capitals keeps them (see `capitals_form`): ``"US"`` -> US,
    ``"us"`` -> us.
    """
    tokens: list[Token] = []
    plain = _as_ascii(text)
    if plain is not None and "'" not in plain and _CAPITALS_RE.search(plain) is None:
        # Most texts: no capitals word (hence no dotted one either) and no
        # apostrophe, so every word is its match in the lower-cased copy.
        pattern = _LOWER_WORD_RE if _joins_words(plain) else _PLAIN_WORD_RE
        return [Token(m.start(), m.end(), m.group()) for m in pattern.finditer(plain.lower())]
    if plain is not None:
        # Fast path for the common case: same words, no folding beyond lower().
        for m in _ASCII_WORD_RE.finditer(plain):
            word = m.group().lower()
            if "." in word:
                word = word.replace(".", "")
            if "'" in word:
                tokens.extend(_split_word(m.start(), m.end(), word, word))
            else:
                tokens.append(Token(m.start(), m.end(), word))
        if _CAPITALS_RE.search(plain) is None:
            return tokens
    else:
        for m in _WORD_RE.finditer(text):
            if _CJK_RE.search(m.group()) is None:
                _add_token(tokens, m.start(), m.end(), m.group())
            else:
                for sub in _split_re().finditer(text, m.start(), m.end()):
                    _add_token(tokens, sub.start(), sub.end(), sub.group())
    for index, token in enumerate(tokens):
        # Cheap test first: a capitals word starts with two characters that
        # are not lower case (US, U.S., AT&T, Q&A); "Trade" does not.
        if text[token.start].isupper() and not text[token.start + 1 : token.start + 2].islower():
            word = capitals_form(text[token.start : token.end], token.word)
            if word is not token.word:
                tokens[index] = token._replace(word=word)
    return tokens


# A word written in capitals with this many letters is an acronym (SPEC §3).
ACRONYM_LETTERS = range(2, 6)


def capitals_form(raw: str, word: str) -> str:
    """The word for `raw` (whose fold is `word`): `word` itself, or, when
    `raw` is written in capitals with 2–5 letters, `word` in capitals
    (``"US"``, ``"U.S."`` -> US, ``"AT&T"`` -> AT&T), keeping a lower-case
    plural or possessive ending (``"NGOs"`` -> NGOs, ``"EU’s"`` -> EU's).
    Folded text is otherwise lower case, so capitals in a word mean "written
    in capitals" and an acronym term only meets words written that way."""
    stem, suffix = raw, ""
    if len(raw) > 2 and raw[-1] == "s" and raw[-2] in _APOSTROPHES:
        stem, suffix = raw[:-2], "'s"
    elif raw[-1:] == "s":
        stem, suffix = raw[:-1], "s"
    if len(stem) < 2 or not stem.isupper():
        return word
    letters = len(stem) if stem.isalpha() else sum(map(str.isalpha, stem))
    if letters not in ACRONYM_LETTERS:
        return word
    return fold(stem.replace(".", "")).upper() + suffix


def is_capitals(word: str) -> bool:
    """Whether a folded word is an acronym written in capitals (see `capitals_form`)."""
    return word != word.lower()


def ascii_words(text: str) -> list[str] | None:
    """``[t.word for t in tokenize(text)]`` at near C speed, for text that is
    ASCII apart from typographic punctuation; None for other text. The
    matcher's way to reject most texts before it needs any offsets."""
    plain = _as_ascii(text)
    if plain is None:
        return None
    if _CAPITALS_RE.search(plain) is None:
        return _lower_words(plain.lower())
    words: list[str] = []
    for raw in _ASCII_WORD_RE.findall(plain):
        if raw.islower() or raw.isdigit() or raw[1:2].islower():
            words.append(raw.lower())  # "tariff", "2024", "Trade": no capitals word
        else:  # US, U.S., NGOs, AT&T, L'OTAN: the rare words that need the full rules
            words.extend(token.word for token in tokenize(raw))
    if "'" not in plain:
        return words
    out: list[str] = []
    for word in words:
        if "'" in word and word.partition("'")[0] in _ELIDED:
            out.extend(token.word for token in _split_word(0, len(word), word))
        else:
            out.append(word)
    return out


def _joins_words(text: str) -> bool:
    """Whether `text` holds a character that joins or extends a
    `_LOWER_WORD_RE` word (it's, eu_watcher, r&d, c++, c#). In lower-case
    ASCII text without one, the words are the runs of [a-z0-9]."""
    return "'" in text or "_" in text or "&" in text or "+" in text or "#" in text


# Every byte but [a-z0-9] as a space: what only separates words in ASCII
# text that `_joins_words` finds nothing in.
_SEPARATORS_TO_SPACE = bytes(
    code if re.fullmatch(b"[a-z0-9]", bytes([code])) else ord(" ") for code in range(256)
)


def _lower_words(text: str) -> list[str]:
    """The words of a lower-case ASCII text (also: of one such word)."""
    if text.isascii() and not _joins_words(text):
        # Translating the bytes (a table lookup each) and splitting finds
        # them at a sixth of the regex's cost.
        return text.encode("ascii").translate(_SEPARATORS_TO_SPACE).decode("ascii").split()
    words = _LOWER_WORD_RE.findall(text)
    if "'" not in text:
        return words
    if not any(word.partition("'")[0] in _ELIDED for word in words if "'" in word):
        return words  # apostrophes, but no elided article (it's, don't, tariff's)
    out: list[str] = []
    for word in words:
        if "'" in word:
            out.extend(token.word for token in _split_word(0, len(word), word))
        else:
            out.append(word)
    return out


def _add_token(tokens: list[Token], start: int, end: int, raw: str) -> None:
    """Append the word `raw` (= text[start:end]), split after an elided article."""
    word = fold(raw)
    if "." in word:  # dotted capitals: U.S.
        word = word.replace(".", "")
    if "'" in word:
        tokens.extend(_split_word(start, end, raw, word))
    elif word:
        tokens.append(Token(start, end, word))


def _split_word(start: int, end: int, raw: str, word: str | None = None) -> list[Token]:
    """The tokens of one word `raw` (= text[start:end]; `word` is its fold):
    itself, or an elided article ("l’", "qu’") and the rest, recursively."""
    if word is None:
        word = fold(raw)
    tokens: list[Token] = []
    while True:
        head, _, rest = word.partition("'")
        if head not in _ELIDED or not rest or rest.partition("'")[0] == "s":
            break
        # `fold` maps apostrophes, and only them, to "'" and never merges
        # characters across one, so raw's first apostrophe ends `head`.
        cut = next(i for i, ch in enumerate(raw) if ch in _APOSTROPHES)
        tokens.append(Token(start, start + cut, head))
        start, raw, word = start + cut + 1, raw[cut + 1 :], rest
    word = word.strip("'")
    if word:
        tokens.append(Token(start, end, word))
    return tokens


# --------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WordForm:
    """Another way to write a phrase's words: `words`, where each gap listed
    in `hyphen_gaps` (gap i lies between words i and i+1) must be a hyphen
    in the text. ``nonprofit`` is also ``non``-``profit`` (gap 0 a hyphen),
    ``e-commerce`` also ``ecommerce`` (no gaps)."""

    words: tuple[str, ...]
    hyphen_gaps: tuple[int, ...] = ()


@dataclass(frozen=True)
class Phrase:
    """Consecutive words to find. `words` are folded (an acronym in capitals,
    see `capitals_form`); `exact` means it was written in double quotes, so
    the last word gets no plural/possessive forms. `forms` are the other
    spellings of hyphenated and closed words (`word_forms`); they follow
    from how the term was typed, so they take no part in equality."""

    words: tuple[str, ...]
    exact: bool = False
    forms: tuple[WordForm, ...] = field(default=(), compare=False)

    def describe(self, *, show_forms: bool = True) -> str:
        shown = _join_words(self.words)
        if self.exact:
            kind = "exact phrase" if len(self.words) > 1 else "exact word"
            return f'{kind} *"{shown}"*' if show_forms else f'*"{shown}"*'
        if not show_forms:
            return f"*{shown}*"
        head = f"phrase *{shown}*" if len(self.words) > 1 else f"*{shown}*"
        plurals = _example_plurals(self.words[-1])
        if not plurals:
            return head
        also = ", ".join(_join_words((*self.words[:-1], plural)) for plural in plurals)
        return f"{head} (also: {also})"


@dataclass(frozen=True)
class Query:
    """A parsed watch term: it matches an item when any `include` phrase occurs
    and no `exclude` phrase does. `text` is the term as typed (stripped)."""

    text: str
    include: tuple[Phrase, ...]
    exclude: tuple[Phrase, ...] = ()

    @property
    def acronyms(self) -> tuple[str, ...]:
        """The words of the term taken as acronyms (written in capitals, so
        matched only where the text writes them in capitals), e.g. ("US",)."""
        words = (word for phrase in (*self.include, *self.exclude) for word in phrase.words)
        return tuple(dict.fromkeys(_acronym_stem(word) for word in words if is_capitals(word)))

    def describe(self) -> str:
        """The query in words, Slack mrkdwn, e.g.
        ``*tariff* (also: tariffs) or exact phrase *"pax silica"*, excluding *rumor*``.
        Words contain letters, digits, apostrophes and the symbols of names
        (``&``, ``+``, ``#``, ``_``): no mrkdwn markup, but an ``&`` (AT&T) is
        one of the characters Slack asks senders to escape."""
        text = " or ".join(p.describe() for p in self.include)
        if self.exclude:
            text += ", excluding " + " or ".join(p.describe(show_forms=False) for p in self.exclude)
        return text


_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxz")

# English plurals no rule produces. Words ending in "man" also take "men"
# (chairman, spokeswoman; see `plural_forms`).
IRREGULAR_PLURALS = {
    "analysis": "analyses",
    "axis": "axes",
    "basis": "bases",
    "bacterium": "bacteria",
    "calf": "calves",
    "child": "children",
    "crisis": "crises",
    "criterion": "criteria",
    "diagnosis": "diagnoses",
    "foot": "feet",
    "goose": "geese",
    "half": "halves",
    "hypothesis": "hypotheses",
    "index": "indices",
    "knife": "knives",
    "leaf": "leaves",
    "life": "lives",
    "loaf": "loaves",
    "louse": "lice",
    "matrix": "matrices",
    "medium": "media",
    "mouse": "mice",
    "nucleus": "nuclei",
    "ox": "oxen",
    "person": "people",
    "phenomenon": "phenomena",
    "shelf": "shelves",
    "stimulus": "stimuli",
    "thesis": "theses",
    "thief": "thieves",
    "tooth": "teeth",
    "wife": "wives",
    "wolf": "wolves",
}
# text word -> the bases it may be an irregular plural of
IRREGULAR_SINGULARS = {plural: base for base, plural in IRREGULAR_PLURALS.items()}


def plural_forms(word: str) -> tuple[str, ...]:
    """The plural forms of a folded word that the plural rule accepts.

    English rules, so that a term never matches a different word that merely
    starts with it (`rat` is not "rates", `US` is not "uses"):

    - +s, always: tariffs, rats, photos, days, 35s;
    - +es after x, z, ss, ch, sh (taxes, waltzes, bosses, watches, crashes;
      a z after a vowel may also double: quizzes);
    - +es after a single s in words of four letters or more (biases, viruses,
      lenses) and in the three-letter nouns "bus" and "gas" (buses, gases;
      other short words would meet "uses", "cases", "doses");
    - +es after a consonant + o in words of three letters or more (heroes,
      vetoes, embargoes, tomatoes; not "does", "goes", "toes");
    - y -> ies after a consonant: companies, policies (not "daies");
    - irregular plurals from a table (crises, children, people, indices) and
      man -> men at the end of a word (women, spokesmen).
    """
    forms = [word + "s"]
    if _takes_es(word):
        forms.append(word + "es")
        if word[-1] == "z" and word[-2] in "aeiou":
            forms.append(word + "zes")  # quizzes, fezzes
    if len(word) >= 2 and word[-1] == "y" and word[-2] in _CONSONANTS:
        forms.append(word[:-1] + "ies")
    irregular = IRREGULAR_PLURALS.get(word)
    if irregular is not None:
        forms.append(irregular)
    elif word == "man" or (len(word) > 4 and word.endswith("man")):
        forms.append(word[:-3] + "men")  # not Oman -> "omen"
    return tuple(forms)


def _takes_es(word: str) -> bool:
    if len(word) < 2:
        return False
    if word.endswith(("x", "z")):
        return True
    if len(word) < 3:  # "ss", "ch", "sh" and "us", "do", "go", "to" are no bases
        return False
    if word.endswith(("ss", "ch", "sh")):
        return True
    if word.endswith("s"):
        return len(word) >= 4 or word in ("bus", "gas")
    return word[-1] == "o" and word[-2] in _CONSONANTS


def _example_plurals(word: str) -> tuple[str, ...]:
    """The plural forms to show users (matching accepts the same), or none
    when a hint would only look odd: non-Latin words, single letters (`x` ->
    "xes") and words that already end in a single s (`chips` -> "chipses").
    A word that ends in a consonant + o shows both forms (vetos, vetoes);
    an acronym its "s" form (NGOs)."""
    if is_capitals(word):
        return (word + "s",) if word[-1].isalpha() and word[-1] != "S" else ()
    if len(word) < 2 or not ("a" <= word[-1] <= "z"):
        return ()
    forms = plural_forms(word)
    if word.endswith("s") and not word.endswith("ss"):
        return ()
    if forms[-1].endswith("zzes"):
        return forms[-1:]  # quizzes, not "quizes"
    if len(forms) > 1 and not word.endswith("o"):
        return forms[1:]  # taxes, bosses, companies: the +s form would look wrong
    return forms


def _join_words(words: tuple[str, ...]) -> str:
    out = ""
    previous = ""
    for word in words:
        if out and not (_CJK_RE.match(previous) and _CJK_RE.match(word)):
            out += " "
        out += word
        previous = word
    return out


def _acronym_stem(word: str) -> str:
    """An acronym word without its plural/possessive ending: NGOs -> NGO."""
    for ending in ("'s", "s"):
        if word.endswith(ending) and is_capitals(word[: -len(ending)]):
            return word[: -len(ending)]
    return word


# Prefixes that English writes both closed and hyphenated (nonprofit /
# non-profit, email / e-mail, cyberattack / cyber-attack, kpop / K-pop,
# midterm / mid-term).
_CLOSED_PREFIX_RE = re.compile(
    r"(anti|co|cyber|e|ex|inter|k|mid|multi|non|post|pre|re|semi|sub)([^\W\d_]{3,})"
)
_LETTERS_DIGITS = re.compile(r"([^\W\d_]+)(\d+)|(\d+)([^\W\d_]+)")


def _closed_parts(word: str) -> tuple[str, ...]:
    """The parts a closed word is written with when hyphenated, or ()
    when it has none: g7 -> g, 7; COVID19 -> COVID, 19; nonprofit -> non,
    profit. The hyphenated spelling must really have a hyphen in the text."""
    m = _LETTERS_DIGITS.fullmatch(word)
    if m is not None:
        return tuple(part for part in m.groups() if part)
    m = _CLOSED_PREFIX_RE.fullmatch(word)  # lower case only: no acronym
    return (m[1], m[2]) if m is not None else ()


def word_forms(words: tuple[str, ...], joins: frozenset[int]) -> tuple[WordForm, ...]:
    """The other spellings of a phrase whose words `words` were typed with a
    hyphen at the gaps in `joins`: those gaps closed (G-7 -> G7, e-commerce
    -> ecommerce), and its closed words hyphenated (G7 -> G-7, nonprofit ->
    non-profit)."""
    forms: list[WordForm] = []
    if joins:
        closed = [words[0]]
        for index in range(1, len(words)):
            if index - 1 in joins:
                joined = closed[-1] + words[index]
                # "COVID"+"19" stays in capitals; "EU"+"wide" is no acronym.
                closed[-1] = joined if joined.isupper() else joined.lower()
            else:
                closed.append(words[index])
        forms.append(WordForm(tuple(closed)))
    split: list[str] = []
    gaps: list[int] = []
    for index, word in enumerate(words):
        # A word typed as part of a hyphenated one is no closed word.
        parts = () if {index - 1, index} & joins else _closed_parts(word)
        if parts:
            gaps.extend(range(len(split), len(split) + len(parts) - 1))
            split.extend(parts)
        else:
            split.append(word)
    if gaps:
        forms.append(WordForm(tuple(split), tuple(gaps)))
    return tuple(forms)


class _Or:
    pass


_OR = _Or()


@dataclass(frozen=True)
class _Words:
    words: tuple[str, ...]
    quoted: bool
    joins: frozenset[int] = frozenset()  # gaps typed as a hyphen


@dataclass(frozen=True)
class _Exclude:
    phrase: Phrase


# Letters with dots typed in lower case (u.s., e.u): still an abbreviation.
_LOWER_DOTTED = re.compile(r"(?<![^\W_])(?:(?:[a-z]\.){2,}|(?:[a-z]\.)+[a-z])(?![^\W_])")


def _chunk_words(chunk: str) -> tuple[tuple[str, ...], frozenset[int]]:
    """The words of a chunk of a term and the gaps between them that are a hyphen.
    Dotted letters are an acronym however they are typed: `u.s.` is US (as
    "U.S." in a text is), never the two one-letter words "u s"."""
    chunk = _LOWER_DOTTED.sub(lambda m: m.group().upper(), chunk)
    tokens = tokenize(chunk)
    joins = frozenset(
        index
        for index in range(len(tokens) - 1)
        if chunk[tokens[index].end : tokens[index + 1].start] in HYPHENS
    )
    return tuple(t.word for t in tokens), joins


def _phrase(words: tuple[str, ...], joins: frozenset[int], *, exact: bool) -> Phrase:
    return Phrase(words, exact=exact, forms=word_forms(words, joins))


_Element = _Words | _Exclude | _Or


# A dash a keyboard or autocorrect put where "-" was typed (U+2010 hyphen,
# U+2011 non-breaking hyphen, figure/en/em dash, minus sign) still starts an
# exclusion when it begins a word: "‑rumor" means "-rumor", never "rumor".
_WORD_START_DASH = re.compile(r"(?:^|(?<=\s))[\u2010-\u2014\u2212](?=\S)")


def _lex(text: str) -> list[_Element]:
    text = _WORD_START_DASH.sub("-", text)
    elements: list[_Element] = []
    chunk_start: int | None = None
    i = 0

    def flush(end: int) -> None:
        nonlocal chunk_start
        if chunk_start is None:
            return
        chunk = text[chunk_start:end]
        chunk_start = None
        if chunk == "OR":
            elements.append(_OR)
        elif chunk.startswith("-"):
            words, joins = _chunk_words(chunk.lstrip("-"))
            if words:  # a lone "-" (as in "trade - deal") is just punctuation
                elements.append(_Exclude(_phrase(words, joins, exact=False)))
        else:
            words, joins = _chunk_words(chunk)
            if words:
                elements.append(_Words(words, quoted=False, joins=joins))

    while i < len(text):
        ch = text[i]
        if ch.isspace():
            flush(i)
        elif ch in _QUOTES:
            prefix = text[chunk_start:i] if chunk_start is not None else ""
            negate = bool(prefix) and not prefix.strip("-")
            if negate:
                chunk_start = None
            else:
                flush(i)
            close = next((j for j in range(i + 1, len(text)) if text[j] in _QUOTES), -1)
            if close < 0:
                raise QueryError('unbalanced quote: every " needs a closing "')
            words, joins = _chunk_words(text[i + 1 : close])
            if not words:
                raise QueryError("a quoted phrase has no letters or digits")
            if negate:
                elements.append(_Exclude(_phrase(words, joins, exact=True)))
            else:
                elements.append(_Words(words, quoted=True, joins=joins))
            i = close
        elif chunk_start is None:
            chunk_start = i
        i += 1
    flush(len(text))
    return elements


def _is_single_letter(word: str) -> bool:
    """A lone letter of a cased alphabet (Latin, Greek, Cyrillic, ...): a
    single ideograph or Hangul syllable is a word."""
    return len(word) == 1 and word.isalpha() and word.lower() != word.upper()


def _single_letter(word: str) -> QueryError:
    return QueryError(
        f"“{word}” is a single letter, which would match almost every story: "
        "add the words around it (e.g. “vitamin c”) or write the name in full"
    )


# Config validation, the watch list and every reload parse the same terms in
# one process: each is parsed once (a Query is immutable; errors are not cached).
@lru_cache(maxsize=20_000)
def parse_query(text: str) -> Query:
    """Parse a watch term; raises `QueryError` with a user-facing reason."""
    stripped = text.strip()
    if not stripped:
        raise QueryError("term is empty")
    if len(stripped) > MAX_TERM_LENGTH:
        raise QueryError(f"term is longer than {MAX_TERM_LENGTH} characters")

    if _SIMPLE_TERM_RE.fullmatch(stripped) is not None and "OR" not in stripped.split():
        return _simple_query(stripped)
    elements = _lex(stripped)
    exclude = tuple(dict.fromkeys(e.phrase for e in elements if isinstance(e, _Exclude)))
    sequence = [e for e in elements if not isinstance(e, _Exclude)]
    if not any(isinstance(e, _Words) for e in sequence):
        if exclude:
            raise QueryError("a term can't be only exclusions: add a word to look for")
        if sequence:
            raise QueryError("OR needs a phrase on both sides")
        raise QueryError("term has no letters or digits")

    groups: list[list[_Words]] = [[]]
    for element in sequence:
        if isinstance(element, _Words):
            groups[-1].append(element)
        else:
            groups.append([])

    include: list[Phrase] = []
    for group in groups:
        if not group:
            raise QueryError("OR needs a phrase on both sides")
        if len(group) > 1 and any(part.quoted for part in group):
            raise QueryError(
                "a quoted phrase can't stand next to other words: "
                "quote the whole phrase, or put OR between them"
            )
        words: tuple[str, ...] = ()
        joins: set[int] = set()
        for part in group:
            joins.update(len(words) + gap for gap in part.joins)
            words += part.words
        if len(words) == 1 and _is_single_letter(words[0]):
            raise _single_letter(words[0])
        include.append(_phrase(words, frozenset(joins), exact=group[0].quoted))

    unique = tuple(dict.fromkeys(include))
    both = [p for p in unique if p in exclude]
    if both:
        shown = _join_words(both[0].words)
        raise QueryError(f"“{shown}” is both looked for and excluded, so nothing could match")
    return Query(text=stripped, include=unique, exclude=exclude)


# The common term: plain ASCII words between spaces, no quotes, hyphens,
# exclusions or OR. `_lex` would make one `_Words` per word and one phrase of
# them all; tokenizing the whole term at once gives the same words (a capitals
# word depends on its own letters only) at a fraction of the cost, which
# counts with 10,000 terms.
_SIMPLE_TERM_RE = re.compile(r"[A-Za-z0-9]+(?:[ \t]+[A-Za-z0-9]+)*")


def _simple_query(stripped: str) -> Query:
    words = tuple(token.word for token in tokenize(stripped))
    if len(words) == 1 and _is_single_letter(words[0]):
        raise _single_letter(words[0])
    return Query(text=stripped, include=(_phrase(words, frozenset(), exact=False),), exclude=())


@lru_cache(maxsize=20_000)  # config validation and the store key the same terms
def term_key(text: str) -> str:
    """The identity of a watch term: two terms with the same key match the
    same stories, so a channel holds only one of them. Built from the parsed
    query (folded words, the same normalisation matching uses), so `trade
    deal`, `trade-deal` and `Trade, Deal` are one term; OR alternatives and
    exclusions are sets, so their order does not matter either. Text that is
    no valid query keys by its words and case alone."""
    try:
        query = parse_query(text)
    except QueryError:
        return " ".join(text.split()).casefold()
    key = " OR ".join(sorted(_phrase_key(p) for p in query.include))
    return key + "".join(" -" + _phrase_key(p) for p in sorted(query.exclude, key=_phrase_key))


def _phrase_key(phrase: Phrase) -> str:
    words = _join_words(phrase.words)
    return f'"{words}"' if phrase.exact else words
