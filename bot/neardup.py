"""Near-duplicate stories (SPEC §8): is a new item a copy of one seen recently?

Pure, no I/O, no clock: callers pass the times. Three steps:

1. `normalise` — title and lead go through the matcher's own tokenizer and
   folding (`bot.query.tokenize`: case, accents, full-width forms; every
   ideograph or kana is a token of its own, so Chinese and Japanese get
   character shingles). Syndication decorations are stripped first:
   "UPDATE 2-", "EXCLUSIVE-", "AP: " and " - Reuters" / " | AP News" around
   a headline, "NEW DELHI (Reuters) -", "WASHINGTON (AP) —", "(CNN) —",
   "LONDON, Dec 5 —" and press-wire datelines before a lead, "…",
   "Read more" and "The post … appeared first on …" after it. A lead that
   repeats the headline loses that copy. Input is cut to `MAX_TITLE_CHARS` /
   `MAX_LEAD_CHARS` before any pattern runs, so a 1 MB lead costs what a
   1 kB one does.
2. `signature` — a `Signature` of plain bytes: the lead's word 3-shingles
   (first `MAX_LEAD_TOKENS` tokens, 32-bit CRC each, sorted), its "key
   words" (numbers by their leading digits, words with a digit, capitalised
   words inside a sentence; capitalised sentence starts kept apart) and the
   headline's words.
3. `compare` / `NearDupIndex.find` — an explainable verdict. Two leads merge
   when the shorter one's shingles are at least `LEAD_CONTAINMENT` contained
   in the other's (containment rather than Jaccard, so a truncated or an
   extended lead still matches), AND every key word of one lead occurs in
   the other (a same-template press release with other figures or another
   company, "Nvidia forecast …" against "AMD forecast …", never merges),
   AND, when the leads share fewer than `MIN_SHARED_KEYS` names and numbers
   and fewer than `MIN_SPECIFIC_SHINGLES` shingles (boilerplate such as
   "Good morning. Here are the stories you need to know"), the headlines
   agree too: identical, or outside recurring formats one's words all in the
   other's (so a recurring "Daily briefing" never merges). Items without a
   usable lead merge only on an identical headline of at least
   `MIN_TITLE_WORDS` words that is not a recurring format ("live",
   "briefing", ...). Empty, outlet-only and one-word headlines with no lead
   carry no evidence and never merge. `feed_signatures` signs a whole feed
   document and treats a lead that entries with different headlines share
   (the feed's tagline in every summary) as no lead.

The index (`NearDupIndex`) keeps only items seen within the merge window
(default 48h) and finds candidates through a bottom-k sketch: every item is
filed under the `SKETCH_SIZE` smallest of its shingle hashes whose bucket
holds fewer than `MAX_BUCKET` items (a shingle that dozens of recent items
share, "said on tuesday", is no evidence), and a new item looks up all of its
shingles. If the older lead is the longer one, each of its sketch hashes is
in the newer lead with probability (shorter / longer); if the older one is
shorter, its sketch hashes are all in the newer lead. At most
`MAX_CANDIDATES` candidates (most shared sketch hashes first) are then
compared exactly. So one lookup costs at most ~60 bucket reads of at most
`MAX_BUCKET` entries and `MAX_CANDIDATES` comparisons, however long the
history.

Rows (`SignatureRow`) are plain values — text, a float and bytes — so the
store can keep them and a restarted process rebuilds the same index with
`NearDupIndex.from_rows`.

Chosen after measuring (benchmarks/neardup.py prints the figures; README
"Stories, not links (merging)"). On the labelled set (tests/fixtures/
neardup_stories.yaml) this method merges with precision 1.0; the others:

- rejected ``datasketch`` MinHash LSH: it estimates Jaccard, not
  containment, so a truncated lead (Jaccard 0.3) needs a low threshold, and
  Jaccard >= 0.5 still merged same-template press releases and same-day
  reports (precision 0.66); it pulls in numpy and scipy, its 128-permutation
  MinHash is slower per item than this whole module, and a match still needs
  an exact check to be explained.
- rejected ``rapidfuzz`` ratios (token_set_ratio >= 80/90): good string
  scorers but no index, so each new item is compared with every item in the
  window (cost grows with the history), and they score same-topic different
  stories (shared names, shared templates) high: precision 0.56-0.66.
- containment alone, without the name/number veto and the headline rule:
  precision 0.80 — the veto is what keeps templates and recurring items apart.
- the naive all-pairs scan with the same `compare` is the baseline: same
  answers as the index on the labelled set, cost proportional to the window.

The one kind of copy knowingly left apart: an update whose lead changed its
figures ("killing at least 12" -> "at least 23"); it alerts again, which is
better than hiding a story.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import struct
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from bot.query import Token, is_capitals, tokenize

__all__ = [
    "LEAD_CONTAINMENT",
    "MERGE_WINDOW",
    "SIGNATURE_VERSION",
    "Match",
    "NearDupIndex",
    "Normalised",
    "Signature",
    "SignatureRow",
    "Verdict",
    "compare",
    "feed_signatures",
    "normalise",
    "signature",
    "some_feed_signatures",
    "strip_lead_decorations",
    "strip_title_decorations",
]

MERGE_WINDOW = 48 * 3600.0  # seconds; settings.merge_window's default
# Bumped whenever normalising or hashing changes: rows of another version
# are not comparable and are skipped on rebuild.
SIGNATURE_VERSION = 1

MAX_TITLE_CHARS = 400
MAX_LEAD_CHARS = 1200  # ~200 English words: more than the head needs
MAX_TITLE_WORDS = 32
MAX_LEAD_TOKENS = 60  # the lead's head: wire copies agree most at the start
CONTEXT_TOKENS = 120  # where the other lead's names/numbers may be found
SHINGLE = 3
MIN_LEAD_SHINGLES = 8  # a lead of ~10 words is the least that is evidence
LEAD_CONTAINMENT = 0.7
MIN_SHARED_KEYS = 3  # fewer shared names/numbers than this: boilerplate lead...
MIN_SPECIFIC_SHINGLES = 40  # ...unless this many shingles are shared
MIN_TITLE_WORDS = 7
MIN_CONTAINED_TITLE_WORDS = 5
SKETCH_SIZE = 8
MAX_BUCKET = 32  # items filed under one hash; a fuller one is a common phrase
MAX_CANDIDATES = 64

# --------------------------------------------------------------------------
# Decorations
# --------------------------------------------------------------------------

_WIRES = (
    r"Reuters|AP|AFP|Bloomberg|CNN|UPI|dpa|DPA|IANS|PTI|ANI|Xinhua|TASS|AAP|EFE|ANSA|Kyodo|"
    r"Yonhap|Bernama|Business\s+Wire|BUSINESS\s+WIRE|GLOBE\s+NEWSWIRE|Globe\s+Newswire|"
    r"PRNewswire|PR\s+Newswire|ACCESSWIRE|Newsfile|The\s+Canadian\s+Press|Associated\s+Press"
)
_LABELS = (
    r"UPDATE|UPDATED|WRAPUP|RPT|REFILE|CORRECTED|CORRECTION|EXCLUSIVE|BREAKING(?:\s+NEWS)?|"
    r"ANALYSIS|FACTBOX|INSIGHT|EXPLAINER|FOCUS|BRIEF|URGENT|FLASH|ALERT|WATCH|VIDEO|PHOTOS|"
    r"AP|AFP|REUTERS|UPI|DPA|BLOOMBERG"
)
# "UPDATE 2-", "EXCLUSIVE-", "AP: ", "Breaking News: " (repeated: "RPT-UPDATE 1-").
_TITLE_PREFIX = re.compile(rf"^\s*(?:(?:{_LABELS})(?:\s*\d{{1,2}})?\s*[-–—:|]\s*)+", re.IGNORECASE)
# "(AP)" or "(Reuters)" closing a headline.
_TITLE_WIRE_SUFFIX = re.compile(rf"\s*\((?:{_WIRES})\)\s*$")
# " - Reuters", " | AP News", " — The New York Times", " - nytimes.com": a last
# segment of at most five words that are capitalised (or a domain).
_TITLE_SUFFIX = re.compile(
    r"\s+(?:[-–—|]{1,2}|::)\s+"
    r"((?:[A-Z0-9][\w&.'’]*|of|the|and|de|la|le|du|del|der|die|am|on)"
    r"(?:\s+(?:[A-Z0-9][\w&.'’]*|of|the|and|de|la|le|du|del|der|die|am|on)){0,4}"
    r"|[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|co\.uk|co|news|info|de|fr|in|au|ca|uk))\s*$"
)
_OUTLET_ONLY = re.compile(
    rf"^\s*(?:(?:The\s+)?(?:{_WIRES})(?:\s+News)?|[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|co\.uk))\s*$",
    re.IGNORECASE,
)
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
# "NEW DELHI (Reuters) -", "NEW DELHI, Dec 5 (Reuters) -", "(CNN) —",
# "SAN JOSE, Calif., Dec. 5, 2026 (GLOBE NEWSWIRE) --".
_WIRE_DATELINE = re.compile(
    rf"^\s*(?:[A-Z][^()\n]{{0,80}}?)?\((?:{_WIRES})\)\s*(?:[-–—:]{{1,2}}\s*)?",
)
# "LONDON —", "NEW DELHI, Dec 5 -", "KYIV, Ukraine —": a city in capitals.
_CITY_DATELINE = re.compile(
    rf"^\s*[A-Z][A-Z.'’\-]+(?:\s[A-Z][A-Z.'’\-]+){{0,3}}"
    rf"(?:,\s*[A-Z][A-Za-z.]+(?:\s[A-Z][A-Za-z.]+)?)?"
    rf"(?:,?\s*{_MONTH}\s+\d{{1,2}}(?:,\s*\d{{4}})?)?"
    r"\s*[-–—]{1,2}\s+"
)
_LEAD_TAIL = re.compile(
    r"\s*(?:\((?:Reporting|Writing|Additional reporting) by[^)]*\)(?:\s*\.)?"
    r"|Read more\W*|Continue reading\W*|Read the full story\W*"
    r"|The post .{1,300}? appeared first on .{1,120}$)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ELLIPSIS_END = re.compile(r"\s*(?:…|\.\.\.|\[(?:…|\.\.\.)\])\s*$")


def strip_title_decorations(title: str) -> str:
    """The headline without wire labels and the outlet's name:
    ``"UPDATE 2-Fed holds rates - Reuters"`` -> ``"Fed holds rates"``. A
    headline that is only an outlet's name becomes ``""``."""
    text = " ".join(title[:MAX_TITLE_CHARS].split())
    if _OUTLET_ONLY.match(text):
        return ""
    text = _TITLE_PREFIX.sub("", text)
    for _ in range(2):  # "Story - Section - Outlet"
        stripped = _TITLE_WIRE_SUFFIX.sub("", text)
        stripped = _TITLE_SUFFIX.sub("", stripped)
        if stripped == text or not stripped.strip():
            break
        text = stripped
    return text.strip()


def strip_lead_decorations(lead: str) -> str:
    """The lead without its dateline and trailing "…" / "Read more" /
    reporting credits; a word cut off by "…" goes too."""
    text = " ".join(lead[:MAX_LEAD_CHARS].split())
    text = _WIRE_DATELINE.sub("", text, count=1)
    text = _CITY_DATELINE.sub("", text, count=1)
    for _ in range(3):
        before = text
        text = _LEAD_TAIL.sub("", text)
        cut = _ELLIPSIS_END.search(text)
        if cut:
            text = text[: cut.start()]
            if text and text[-1] not in ".!?" and " " in text:
                text = text.rsplit(" ", 1)[0]  # "said Prime Minister Nar…"
        if text == before:
            break
    return text.strip()


# --------------------------------------------------------------------------
# Normalising and signatures
# --------------------------------------------------------------------------

# Headlines with these words recur with other content (a daily live page, a
# newsletter): an identical headline alone never makes them one story.
_RECURRING = frozenset(
    {
        *("live", "latest", "updates", "update", "briefing", "newsletter", "roundup"),
        *("digest", "podcast", "quiz", "crossword", "horoscope", "weather", "forecast"),
        *("morning", "evening", "tonight", "today", "daily", "weekly", "week", "wordle"),
        *("sudoku", "recap", "highlights"),
    }
)
_SENTENCE_END = frozenset('.!?:;"“”«»')


@dataclass(frozen=True)
class Normalised:
    """Folded words of an item: what the signature is computed from."""

    title: tuple[str, ...]
    lead: tuple[str, ...]  # the head: at most MAX_LEAD_TOKENS
    keys: frozenset[str]  # names and numbers within `lead`
    initials: frozenset[str]  # capitalised words starting a sentence within `lead`
    context: frozenset[str]  # both kinds within the first CONTEXT_TOKENS tokens


_LEADING_DIGITS = re.compile(r"\d+")


def _key(text: str, start: int, word: str, first: bool) -> tuple[str, bool] | None:
    """`word` as a key word and whether it is a name, or None. A number is
    its leading digits (so "$400bn" and "400 billion" agree, as do "1,377th"
    and "1,377"); a word with a digit ("cop31", "g7") or a capitalised word
    inside a sentence is a name; a capitalised word starting a sentence
    ("Nvidia forecast ...", but also "The ...") is a key but not a name."""
    initial = text[start]
    if initial.isdigit():
        match = _LEADING_DIGITS.match(word)
        return (match.group() if match else word), True
    if not word.isalpha() and any(ch.isdigit() for ch in word):
        return word, True
    if not initial.isupper():
        return None
    before = text[max(0, start - 3) : start].rstrip()  # whitespace is collapsed
    return word, not (first or not before or before[-1] in _SENTENCE_END)


def _tokens(text: str) -> list[Token]:
    """The matcher's tokens, every word in lower case: the matcher keeps an
    acronym in capitals (US), but for telling stories apart "NATO" and
    "Nato" are one word."""
    return [t._replace(word=t.word.lower()) if is_capitals(t.word) else t for t in tokenize(text)]


def normalise(title: str, lead: str) -> Normalised:
    """Decorations stripped, then the matcher's tokens (folded words)."""
    title_words = tuple(t.word for t in _tokens(strip_title_decorations(title)))
    lead_text = strip_lead_decorations(lead)
    tokens = _tokens(lead_text)[: CONTEXT_TOKENS + len(title_words)]
    # Many feeds start the summary with the headline: only the rest is lead.
    if title_words and tuple(t.word for t in tokens[: len(title_words)]) == title_words:
        tokens = tokens[len(title_words) :]
    tokens = tokens[:CONTEXT_TOKENS]
    keys = [_key(lead_text, t.start, t.word, i == 0) for i, t in enumerate(tokens)]
    head = [k for k in keys[:MAX_LEAD_TOKENS] if k is not None]
    return Normalised(
        title=title_words[:MAX_TITLE_WORDS],
        lead=tuple(t.word for t in tokens[:MAX_LEAD_TOKENS]),
        keys=frozenset(word for word, name in head if name),
        initials=frozenset(word for word, name in head if not name),
        context=frozenset(k[0] for k in keys if k is not None),
    )


def _h32(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _pack(values: Iterable[int]) -> bytes:
    values = list(values)
    return struct.pack(f">{len(values)}I", *values)


def _unpack(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{len(data) // 4}I", data)


@dataclass(frozen=True, slots=True)
class Signature:
    """What is kept of an item to compare it later. Bytes of big-endian
    32-bit values: `title` in headline order, the others sorted and distinct."""

    title: bytes  # CRC-32 of each headline word
    lead: bytes  # CRC-32 of each word 3-shingle of the lead's head
    keys: bytes  # CRC-32 of the names/numbers in the lead's head
    initials: bytes  # CRC-32 of the capitalised sentence starts in the lead's head
    context: bytes  # both kinds in the first CONTEXT_TOKENS tokens (a superset)

    @property
    def lead_size(self) -> int:
        return len(self.lead) // 4


def _shingles(words: tuple[str, ...]) -> set[str]:
    if len(words) < SHINGLE:
        return set()
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def signature(title: str, lead: str) -> Signature:
    """The `Signature` of an item's title and lead (plain text; see
    `bot.text.searchable_text` for turning feed HTML into that). Items of a
    whole feed document go through `feed_signatures` instead."""
    return _signature(normalise(title, lead))


def feed_signatures(entries: Sequence[tuple[str, str]]) -> list[Signature]:
    """The signatures of one feed document's (title, lead) entries. A lead
    that several entries with different headlines share is the feed's
    tagline or a template ("The latest news from The Daily Gazette, ..."),
    not a report: those entries are signed as if they had no lead. (A
    feed carries an article once; an updated headline replaces the entry.)"""
    norms = [normalise(title, lead) for title, lead in entries]
    titles_by_lead: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for norm in norms:
        if norm.lead:
            titles_by_lead.setdefault(norm.lead, set()).add(norm.title)
    shared = {lead for lead, titles in titles_by_lead.items() if len(titles) > 1}
    return [_signature(_without_lead(n) if n.lead in shared else n) for n in norms]


def some_feed_signatures(
    entries: Sequence[tuple[str, str]], wanted: Sequence[bool]
) -> list[Signature | None]:
    """`feed_signatures` for the `wanted` entries only (None for the rest),
    at the cost of those: the tagline rule compares the other entries' leads
    as whitespace- and case-folded text instead of normalising them all."""
    if not any(wanted):
        return [None] * len(entries)  # most feeds: nothing would alert
    titles_by_lead: dict[str, set[str]] = {}
    folded = [" ".join(lead[:MAX_LEAD_CHARS].split()).casefold() for _title, lead in entries]
    for (title, _lead), lead in zip(entries, folded, strict=True):
        if lead:
            titles_by_lead.setdefault(lead, set()).add(" ".join(title.split()).casefold())
    shared = {lead for lead, titles in titles_by_lead.items() if len(titles) > 1}
    signed: list[Signature | None] = []
    for (title, lead), key, want in zip(entries, folded, wanted, strict=True):
        if not want:
            signed.append(None)
            continue
        norm = normalise(title, lead)
        signed.append(_signature(_without_lead(norm) if key in shared else norm))
    return signed


def _without_lead(norm: Normalised) -> Normalised:
    return Normalised(norm.title, (), frozenset(), frozenset(), frozenset())


def _signature(norm: Normalised) -> Signature:
    return Signature(
        title=_pack(_h32(w) for w in norm.title),
        lead=_pack(sorted({_h32(s) for s in _shingles(norm.lead)})),
        keys=_pack(sorted({_h32(k) for k in norm.keys})),
        initials=_pack(sorted({_h32(k) for k in norm.initials})),
        context=_pack(sorted({_h32(k) for k in norm.context})),
    )


# --------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    merge: bool
    score: float  # lead containment, 1.0 for an identical headline, 0.0 without evidence
    reason: str


def _title_usable(words: tuple[int, ...]) -> bool:
    return len(words) >= MIN_TITLE_WORDS and _RECURRING_HASHES.isdisjoint(words)


_RECURRING_HASHES = frozenset(_h32(w) for w in _RECURRING)


_LIVE = _h32("live")


def _is_live(sig: Signature) -> bool:
    """A live page: "live" among its headline words ("Cop31 live: ...",
    "Live updates: ...", "... - live")."""
    return _LIVE in _unpack(sig.title)


def _headlines_agree(a: Signature, b: Signature) -> bool:
    """The same headline, or (outside recurring formats) one whose words all
    occur in the other: "Thailand, Cambodia agree to ceasefire" and
    "Thailand and Cambodia agree to ceasefire after border clashes"."""
    if a.title == b.title:
        return bool(a.title)
    words_a, words_b = _unpack(a.title), _unpack(b.title)
    shorter, longer = sorted((set(words_a), set(words_b)), key=len)
    if len(shorter) < MIN_CONTAINED_TITLE_WORDS or _RECURRING_HASHES & (shorter | longer):
        return False
    return shorter <= longer


def compare(a: Signature, b: Signature, *, _lead_a: set[int] | None = None) -> Verdict:
    """Are `a` and `b` one story? Always with the reason, for logs and status."""
    if _is_live(a) != _is_live(b):
        # A live page often opens with the very paragraph of the report it
        # summarises; they are still two things to read.
        return Verdict(False, 0.0, "a live page and a report")
    lead_a = _lead_a if _lead_a is not None else set(_unpack(a.lead))
    size_a, size_b = len(lead_a), b.lead_size
    if size_a >= MIN_LEAD_SHINGLES and size_b >= MIN_LEAD_SHINGLES:
        shared = len(lead_a.intersection(_unpack(b.lead)))
        smaller = min(size_a, size_b)
        score = shared / smaller
        if score < LEAD_CONTAINMENT:
            return Verdict(False, score, f"lead overlap {score:.2f} ({shared}/{smaller})")
        keys_a, keys_b = set(_unpack(a.keys)), set(_unpack(b.keys))
        # Every name, number and capitalised sentence start of one lead (the
        # shorter, usually) must occur in the other.
        missing = min(
            len((keys_a | set(_unpack(a.initials))) - set(_unpack(b.context))),
            len((keys_b | set(_unpack(b.initials))) - set(_unpack(a.context))),
        )
        if missing:
            return Verdict(
                False,
                score,
                f"lead overlap {score:.2f} ({shared}/{smaller}) but {missing} names/numbers differ",
            )
        shared_keys = len(keys_a & keys_b)
        detail = f"lead overlap {score:.2f} ({shared}/{smaller}), {shared_keys} names/numbers agree"
        if shared_keys < MIN_SHARED_KEYS and shared < MIN_SPECIFIC_SHINGLES:
            if not _headlines_agree(a, b):
                return Verdict(False, score, detail + "; generic lead and different headlines")
            detail += "; generic lead, same headline"
        return Verdict(True, score, detail)
    words_a, words_b = _unpack(a.title), _unpack(b.title)
    if not (_title_usable(words_a) and _title_usable(words_b)):
        return Verdict(False, 0.0, "no lead to compare and headline too short or recurring")
    if words_a != words_b:
        return Verdict(False, 0.0, "no lead to compare and different headlines")
    return Verdict(True, 1.0, f"same headline ({len(words_a)} words), no lead to compare")


# --------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignatureRow:
    """One item's signature as the store keeps it.

    Columns: ``story`` (TEXT, the key of the story the item belongs to),
    ``item`` (TEXT, the item's own key, e.g. its canonical link, to explain
    merges), ``seen`` (REAL, epoch seconds the item was first seen; the merge
    window is measured on it), ``version`` (INTEGER, `SIGNATURE_VERSION`),
    ``title``, ``lead``, ``keys``, ``initials``, ``context`` (BLOB, see
    `Signature`).
    About 350 bytes per item with real keys; the index holds about 1.5 kB
    per item in memory (benchmarks/neardup.py).
    """

    story: str
    item: str
    seen: float
    title: bytes
    lead: bytes
    keys: bytes
    initials: bytes
    context: bytes
    version: int = SIGNATURE_VERSION

    @classmethod
    def of(cls, story: str, item: str, seen: float, sig: Signature) -> SignatureRow:
        return cls(story, item, seen, sig.title, sig.lead, sig.keys, sig.initials, sig.context)

    @property
    def lead_size(self) -> int:
        return len(self.lead) // 4

    @property
    def signature(self) -> Signature:
        return Signature(self.title, self.lead, self.keys, self.initials, self.context)


@dataclass(frozen=True)
class Match:
    """The earlier item a new one merges into, and why."""

    story: str
    item: str
    seen: float
    score: float
    reason: str

    def describe(self, new_item: str) -> str:
        """One line for the log: which item merged into which, and why."""
        return f"{new_item} merged into story {self.story} (like {self.item}): {self.reason}"


def _title_key(sig: Signature) -> bytes | None:
    usable = _title_usable(_unpack(sig.title))
    return hashlib.blake2b(sig.title, digest_size=8).digest() if usable else None


class NearDupIndex:
    """Signatures of the items seen within `window` seconds, by sketch hash.

    `add` files an item, `find` returns the best earlier item within the
    window (or None). Items older than the window are dropped as time moves
    on, so memory is bounded by the number of items per window.
    """

    def __init__(self, window: float = MERGE_WINDOW) -> None:
        self.window = window
        self._rows: dict[int, SignatureRow] = {}
        self._by_hash: dict[int, int | list[int]] = {}
        self._by_title: dict[bytes, int | list[int]] = {}
        self._expiry: list[tuple[float, int]] = []  # heap of (seen, slot)
        self._next = 0
        self._now = float("-inf")

    @classmethod
    def from_rows(
        cls, rows: Iterable[SignatureRow], now: float, window: float = MERGE_WINDOW
    ) -> NearDupIndex:
        """Rebuild from stored rows (other versions and rows older than the
        window are skipped)."""
        index = cls(window)
        index.advance(now)
        for row in sorted(rows, key=lambda r: r.seen):
            if row.version == SIGNATURE_VERSION and row.seen >= now - window:
                index.add(row)
        return index

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> Iterator[SignatureRow]:
        """The rows held, oldest first: what the store has to keep."""
        return iter(sorted(self._rows.values(), key=lambda r: r.seen))

    def add(self, row: SignatureRow) -> None:
        self.advance(row.seen)
        if row.seen < self._now - self.window:
            return
        slot = self._next
        self._next += 1
        self._rows[slot] = row
        heapq.heappush(self._expiry, (row.seen, slot))
        if row.lead_size >= MIN_LEAD_SHINGLES:
            # Filed under the smallest hashes whose buckets still have room:
            # a shingle dozens of items share ("said on tuesday") is no
            # evidence, and skipping it keeps every lookup bounded.
            filed = 0
            for h in sorted(_unpack(row.lead)):
                if filed == SKETCH_SIZE:
                    break
                filed += _file(self._by_hash, h, slot)
        title_key = _title_key(row.signature)
        if title_key is not None:
            _file(self._by_title, title_key, slot)

    def advance(self, now: float) -> None:
        """Drop the items that fell out of the window by `now`."""
        if now <= self._now:
            return
        self._now = now
        horizon = now - self.window
        while self._expiry and self._expiry[0][0] < horizon:
            _, slot = heapq.heappop(self._expiry)
            row = self._rows.pop(slot)
            for h in _unpack(row.lead):
                _unfile(self._by_hash, h, slot)
            title_key = _title_key(row.signature)
            if title_key is not None:
                _unfile(self._by_title, title_key, slot)

    def find(self, sig: Signature, at: float) -> Match | None:
        """The best item seen in [at - window, at] that `sig` is a copy of:
        highest score, then the earliest."""
        self.advance(at)
        lead = _unpack(sig.lead)
        votes: Counter[int] = Counter()
        if len(lead) >= MIN_LEAD_SHINGLES:
            for h in lead:
                hit = self._by_hash.get(h)
                if hit is not None:
                    votes.update(hit if isinstance(hit, list) else (hit,))
        title_key = _title_key(sig)
        if title_key is not None:
            hit = self._by_title.get(title_key)
            if hit is not None:
                votes.update(hit if isinstance(hit, list) else (hit,))
        lead_set = set(lead)
        best: Match | None = None
        for slot, _ in votes.most_common(MAX_CANDIDATES):
            row = self._rows[slot]
            if not at - self.window <= row.seen <= at:
                continue
            verdict = compare(sig, row.signature, _lead_a=lead_set)
            if not verdict.merge:
                continue
            if best is None or (verdict.score, -row.seen) > (best.score, -best.seen):
                best = Match(row.story, row.item, row.seen, verdict.score, verdict.reason)
        return best


def _file(table: dict, key: object, slot: int) -> bool:
    """File `slot` under `key` unless that bucket is full; True when filed."""
    hit = table.get(key)
    if hit is None:
        table[key] = slot
    elif isinstance(hit, list):
        if len(hit) >= MAX_BUCKET:
            return False
        hit.append(slot)
    else:
        table[key] = [hit, slot]
    return True


def _unfile(table: dict, key: object, slot: int) -> None:
    hit = table.get(key)
    if isinstance(hit, list):
        if slot in hit:
            hit.remove(slot)
            if len(hit) == 1:
                table[key] = hit[0]
    elif hit == slot:
        del table[key]
