"""Near-duplicate stories (bot/neardup.py, SPEC §8): decorations, signatures,
verdicts, the windowed index, and precision/recall on a labelled set."""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections import Counter
from dataclasses import fields
from pathlib import Path

import pytest
from neardup_labelled import LabelledItem, Merger, cluster, load_labelled, pairwise_scores

from bot.neardup import (
    MAX_BUCKET,
    MERGE_WINDOW,
    SIGNATURE_VERSION,
    NearDupIndex,
    Signature,
    SignatureRow,
    compare,
    feed_signatures,
    normalise,
    signature,
    some_feed_signatures,
    strip_lead_decorations,
    strip_title_decorations,
)

HOUR = 3600.0

LEAD = (
    "The Federal Reserve held its benchmark interest rate steady on Wednesday and "
    "signaled two quarter-point cuts next year, as Chair Jerome Powell said inflation "
    "was cooling more slowly than policymakers had hoped."
)


# --------------------------------------------------------------------------
# Decorations
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Fed holds rates steady", "Fed holds rates steady"),
        ("Fed holds rates steady - Reuters", "Fed holds rates steady"),
        ("Fed holds rates steady | Reuters", "Fed holds rates steady"),
        ("Fed holds rates steady — The Associated Press", "Fed holds rates steady"),
        ("Fed holds rates steady - The New York Times", "Fed holds rates steady"),
        ("Fed holds rates steady | AP News", "Fed holds rates steady"),
        ("Fed holds rates steady - nytimes.com", "Fed holds rates steady"),
        ("Fed holds rates steady (AP)", "Fed holds rates steady"),
        ("Fed holds rates steady - Markets - Reuters", "Fed holds rates steady"),
        ("UPDATE 2-Fed holds rates steady", "Fed holds rates steady"),
        ("UPDATE 2 - Fed holds rates steady", "Fed holds rates steady"),
        ("RPT-UPDATE 1-Fed holds rates steady", "Fed holds rates steady"),
        ("EXCLUSIVE-Fed weighs pause", "Fed weighs pause"),
        ("Exclusive: Fed weighs pause", "Fed weighs pause"),
        ("AP: Fed holds rates steady", "Fed holds rates steady"),
        ("BREAKING NEWS: Fed holds rates steady", "Fed holds rates steady"),
        ("Breaking: Fed holds rates steady - CNN", "Fed holds rates steady"),
        ("UPDATE 2-Fed holds rates steady - Reuters", "Fed holds rates steady"),
        # Not decorations: a dash inside the headline, lower-case words after it.
        ("US-China talks resume in Geneva", "US-China talks resume in Geneva"),
        ("Stocks fall - and bonds rally too", "Stocks fall - and bonds rally too"),
        # Nothing left but the outlet, or a lone label: empty or as is.
        ("Reuters", ""),
        ("AP News", ""),
        ("nytimes.com", ""),
        ("", ""),
        ("Update", "Update"),
        ("Breaking", "Breaking"),
    ],
)
def test_strip_title_decorations(title: str, expected: str) -> None:
    assert strip_title_decorations(title) == expected


@pytest.mark.parametrize(
    ("lead", "expected"),
    [
        ("NEW DELHI (Reuters) - India held rates.", "India held rates."),
        ("NEW DELHI, Dec 5 (Reuters) - India held rates.", "India held rates."),
        ("WASHINGTON (AP) — The Fed held rates.", "The Fed held rates."),
        ("KINGSTON, Jamaica (AP) — The storm grew.", "The storm grew."),
        ("(CNN) — The Fed held rates.", "The Fed held rates."),
        ("(Reuters) - The Fed held rates.", "The Fed held rates."),
        ("PARIS (AFP) - Le gouvernement est tombé.", "Le gouvernement est tombé."),
        ("LONDON —  Britain said no.", "Britain said no."),
        ("LONDON, Dec. 5 — Britain said no.", "Britain said no."),
        ("KYIV, Ukraine — Drones hit the city.", "Drones hit the city."),
        ("DRESDEN (dpa) - Die CDU liegt vorn.", "Die CDU liegt vorn."),
        (
            "SAN JOSE, Calif., Dec. 3, 2026 (GLOBE NEWSWIRE) -- Acme today reported results.",
            "Acme today reported results.",
        ),
        ("HOUSTON--(BUSINESS WIRE)--Cinder declared a dividend.", "Cinder declared a dividend."),
        # Tails: read-more links, ellipses (the cut word goes too), credits.
        ("The Fed held rates. Read more", "The Fed held rates."),
        ("The Fed held rates. Continue reading...", "The Fed held rates."),
        ("The Fed held rates as Chair Jerome Pow…", "The Fed held rates as Chair Jerome"),
        ("The Fed held rates as Chair Jerome Pow [...]", "The Fed held rates as Chair Jerome"),
        (
            "The Fed held rates. (Reporting by Ann Saphir; Editing by Paul Simao)",
            "The Fed held rates.",
        ),
        (
            "The Fed held rates. The post Fed holds appeared first on Daily Wire Digest.",
            "The Fed held rates.",
        ),
        # Not datelines: ordinary sentences stay whole.
        ("The Fed - as expected - held rates.", "The Fed - as expected - held rates."),
        (
            "NASA said (in a statement) that it would wait.",
            "NASA said (in a statement) that it would wait.",
        ),
        ("", ""),
    ],
)
def test_strip_lead_decorations(lead: str, expected: str) -> None:
    assert strip_lead_decorations(lead) == expected


# --------------------------------------------------------------------------
# Normalising
# --------------------------------------------------------------------------


def test_normalise_uses_the_matchers_folding() -> None:
    norm = normalise("ＣＡＦÉ Łódź opens", "Café Łódź opens a second shop in Kraków on Monday.")
    assert norm.title == ("cafe", "lodz", "opens")
    assert norm.lead[:3] == ("a", "second", "shop")  # the repeated headline is dropped


def test_normalise_splits_cjk_into_characters() -> None:
    norm = normalise("日銀が利上げ", "日本銀行は19日、政策金利を引き上げた。")
    assert norm.title == ("日", "銀", "が", "利", "上", "げ")
    assert norm.lead[:4] == ("日", "本", "銀", "行")
    assert "19" in norm.keys


@pytest.mark.parametrize(
    ("lead", "keys"),
    [
        # Capitalised inside a sentence: a name. Sentence starts are not.
        ("The Fed met Powell on Tuesday. Markets rose.", {"fed", "powell", "tuesday"}),
        # Numbers by their leading digits: $400bn and 400 billion agree.
        ("It pledged $400bn by 2035.", {"400", "2035"}),
        ("It pledged $400 billion by 2035.", {"400", "2035"}),
        ("As the war enters its 1,377th day", {"1", "377"}),
        ("Talks at COP31 and the G7 resumed.", {"cop31", "g7"}),
        ("", set()),
    ],
)
def test_normalise_key_words(lead: str, keys: set[str]) -> None:
    assert normalise("", lead).keys == keys


HOSTILE = {
    "1.5 MB of words": ("x" * 1_000_000, "word " * 300_000),
    "1 MB of ideographs": ("中" * 1_000_000, "中文" * 500_000),
    "unclosed brackets": ("(" * 1_000_000, "(" * 1_000_000),
    "dateline lookalike": ("A - " * 250_000, "NEW DELHI, " * 100_000 + "(Reuters) -"),
    "endless ellipses": ("…" * 500_000, "word… " * 200_000),
    "capitals and digits": ("A1 " * 300_000, "Aa1 Bb2. " * 150_000),
    "one huge word": ("a" * 1_000_000, "b" * 1_000_000),
}


@pytest.mark.parametrize("title,lead", HOSTILE.values(), ids=HOSTILE.keys())
def test_bad_input_is_bounded_and_never_slow(title: str, lead: str) -> None:
    started = time.perf_counter()
    sig = signature(title, lead)
    assert time.perf_counter() - started < 0.5
    assert len(sig.lead) <= 4 * 60 and len(sig.title) <= 4 * 32
    assert len(sig.context) <= 4 * 120


# --------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------

SYNDICATED = [
    ("headline suffix", ("Fed holds rates", LEAD), ("Fed holds rates - Reuters", LEAD)),
    ("wire label", ("UPDATE 2-Fed holds rates", LEAD), ("Fed holds rates", LEAD)),
    ("dateline", ("Fed holds rates", LEAD), ("Fed holds", "WASHINGTON, Dec 3 (Reuters) - " + LEAD)),
    ("truncated lead", ("Fed holds rates", LEAD), ("Fed holds rates", LEAD[:110] + "…")),
    (
        "extended lead",
        ("Fed holds rates", LEAD),
        ("Fed holds rates", LEAD + " Powell said the labor market remained solid."),
    ),
    (
        "updated headline, same lead",
        ("Fed holds rates steady", LEAD),
        ("Fed holds rates, Powell says inflation fight not over", LEAD),
    ),
    (
        "lead repeats the headline",
        ("Fed holds rates", LEAD),
        ("Fed holds rates", "Fed holds rates " + LEAD),
    ),
    (
        "two snapshots of one live page",
        ("Fed decision live: Powell speaks after rates held", LEAD),
        ("Fed decision live: Powell speaks after rates held", LEAD + " Stocks rose."),
    ),
    (
        "same long headline, no lead",
        ("Harbor Bank agrees to buy Lakeshore Financial in $4.1 billion deal", ""),
        ("Harbor Bank agrees to buy Lakeshore Financial in $4.1 billion deal - Reuters", ""),
    ),
]


@pytest.mark.parametrize(("case", "a", "b"), SYNDICATED, ids=[c[0] for c in SYNDICATED])
def test_syndicated_copies_merge(case: str, a: tuple[str, str], b: tuple[str, str]) -> None:
    verdict = compare(signature(*a), signature(*b))
    assert verdict.merge, verdict.reason
    assert verdict.score >= 0.7


BRIEFING = (
    "Good morning. Here are the stories you need to know to start your day, "
    "from the markets to the courts."
)
DIFFERENT = [
    (
        "other figures, same template",
        (
            "Acme reports results",
            (
                "Acme Robotics, a leading provider of warehouse automation systems, today "
                "reported financial results for the third quarter ended October 31, 2026. "
                "Revenue was $48.2 million, an increase of 14% year over year."
            ),
        ),
        (
            "Borealis reports results",
            (
                "Borealis Logistics, a leading provider of warehouse automation systems, today "
                "reported financial results for the third quarter ended October 31, 2026. "
                "Revenue was $31.7 million, an increase of 9% year over year."
            ),
        ),
    ),
    (
        "other company, same figures",
        (
            "Dividend declared",
            (
                "Cinder Energy announced today that its Board of Directors has declared a "
                "quarterly cash dividend payable on January 15 to shareholders of record."
            ),
        ),
        (
            "Dividend declared",
            (
                "Dunmore Utilities announced today that its Board of Directors has declared a "
                "quarterly cash dividend payable on January 15 to shareholders of record."
            ),
        ),
    ),
    (
        "recurring briefing",
        ("Daily briefing: Monday, December 1", BRIEFING),
        ("Daily briefing: Tuesday, December 2", BRIEFING),
    ),
    (
        "same topic, other report",
        ("Fed holds rates", LEAD),
        (
            "Stocks rise after Fed decision",
            (
                "Stocks climbed on Wednesday after the Federal Reserve kept interest rates "
                "unchanged and penciled in two cuts for next year."
            ),
        ),
    ),
    (
        "recurring live headline, no lead",
        ("Live updates: Israel and Hamas agree to extend Gaza ceasefire talks", ""),
        ("Live updates: Israel and Hamas agree to extend Gaza ceasefire talks", ""),
    ),
    (
        "live page opening with the report",
        ("Fed decision live: Powell speaks after rates held", LEAD),
        ("Fed holds rates steady", LEAD),
    ),
    ("short headline, no lead", ("Breaking", ""), ("Breaking", "")),
    ("outlet only", ("Reuters", "Reuters"), ("Reuters", "")),
    ("empty", ("", ""), ("", "")),
    (
        "short boilerplate lead",
        ("Breaking", "This story is developing. Check back later."),
        ("Breaking", "This story is developing. Check back later."),
    ),
    ("short CJK", ("快讯", ""), ("快讯", "")),
]


# Which rule keeps each pair apart (the rest: no usable lead, short headline).
KEPT_APART_BY = {
    "other figures, same template": "names/numbers differ",
    "other company, same figures": "names/numbers differ",
    "recurring briefing": "generic lead and different headlines",
    "same topic, other report": "lead overlap 0.",
    "live page opening with the report": "a live page and a report",
}


@pytest.mark.parametrize(("case", "a", "b"), DIFFERENT, ids=[c[0] for c in DIFFERENT])
def test_different_reports_never_merge(case: str, a: tuple[str, str], b: tuple[str, str]) -> None:
    verdict = compare(signature(*a), signature(*b))
    assert not verdict.merge, verdict.reason
    expected = KEPT_APART_BY.get(case, "no lead to compare and headline too short or recurring")
    assert expected in verdict.reason


def test_a_feeds_tagline_lead_is_no_lead() -> None:
    """Some feeds put their tagline in every summary; names in it would make
    every item of the feed look like one story."""
    tagline = (
        "Read the latest news from The Daily Gazette, the trusted source for news, "
        "sport and weather in Springfield and Shelby County since 1890."
    )
    entries = [
        ("Springfield council approves new budget after long debate", tagline),
        ("Shelby County schools to close Friday for teacher training day", tagline),
        ("Fed holds rates steady", LEAD),
    ]
    council, schools, fed = feed_signatures(entries)
    assert signature(*entries[0]).lead  # alone, the tagline looks like a lead...
    assert council.lead == schools.lead == b""  # ...in the feed it is none
    assert not compare(council, schools).merge
    # A real report in the same feed keeps its lead and still finds its copies.
    assert fed == signature("Fed holds rates steady", LEAD)
    assert compare(fed, signature("UPDATE 1-Fed holds rates steady - Reuters", LEAD)).merge
    # Without that rule the tagline's names would have merged the two.
    assert compare(signature(*entries[0]), signature(*entries[1])).merge


def test_signing_some_entries_of_a_feed_keeps_the_tagline_rule() -> None:
    """The cycle signs only the entries that would alert; the others still
    count for the tagline rule, and get no signature."""
    tagline = "Read the latest news from The Daily Gazette, your source since 1890."
    entries = [
        ("Springfield council approves new budget after long debate", tagline),
        ("Shelby County schools to close Friday for teacher training day", tagline),
        ("Fed holds rates steady", LEAD),
    ]
    council, schools, fed = some_feed_signatures(entries, [True, False, True])
    assert schools is None
    assert council is not None and council.lead == b""  # the unsigned entry shares it
    assert fed == feed_signatures(entries)[2] == signature("Fed holds rates steady", LEAD)
    alone = some_feed_signatures(entries[:1], [True])[0]
    assert alone is not None and alone.lead  # with no other entry, a lead


def test_verdict_explains_itself() -> None:
    merged = compare(signature("Fed holds", LEAD), signature("Fed holds - Reuters", LEAD))
    assert merged.reason.startswith("lead overlap 1.00 (")
    assert "names/numbers agree" in merged.reason
    vetoed = compare(signature(*DIFFERENT[0][1]), signature(*DIFFERENT[0][2]))
    assert vetoed.score >= 0.7  # most of the lead is the template...
    assert vetoed.reason.endswith("names/numbers differ")  # ...the figures tell them apart


def test_compare_is_symmetric() -> None:
    for _, a, b in SYNDICATED + DIFFERENT:
        sa, sb = signature(*a), signature(*b)
        assert compare(sa, sb).merge == compare(sb, sa).merge


# --------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------


def _row(story: str, seen: float, title: str, lead: str) -> SignatureRow:
    return SignatureRow.of(story, story + "#item", seen, signature(title, lead))


def test_index_finds_a_copy_within_the_window_only() -> None:
    index = NearDupIndex()
    index.add(_row("fed", 0.0, "Fed holds rates", LEAD))
    copy = signature("Fed holds rates - Reuters", "WASHINGTON (AP) — " + LEAD)
    match = index.find(copy, 47 * HOUR)
    assert match is not None
    assert (match.story, match.item, match.seen) == ("fed", "fed#item", 0.0)
    assert match.reason.startswith("lead overlap")
    assert index.find(copy, 49 * HOUR) is None
    assert len(index) == 0  # dropped once the window moved past it


def test_index_never_matches_a_later_item() -> None:
    index = NearDupIndex()
    index.add(_row("fed", 10 * HOUR, "Fed holds rates", LEAD))
    assert index.find(signature("Fed holds rates", LEAD), 9 * HOUR) is None


def test_index_prefers_the_best_then_the_earliest() -> None:
    index = NearDupIndex()
    index.add(
        _row(
            "partial",
            0.0,
            "Fed",
            LEAD[:120] + " and bonds rallied in late trading on the news today.",
        )
    )
    index.add(_row("first", 1.0, "Fed", LEAD))
    index.add(_row("second", 2.0, "Fed", LEAD))
    match = index.find(signature("Fed", LEAD), 3.0)
    assert match is not None and match.story == "first"


def test_index_rows_round_trip_and_rebuild() -> None:
    index = NearDupIndex()
    index.add(
        _row(
            "old",
            0.0,
            "Acme opens plant",
            (
                "Acme Robotics opened a new plant in Ohio on Monday, adding 400 jobs, the "
                "company said in a statement."
            ),
        )
    )
    index.add(_row("fed", 30 * HOUR, "Fed holds rates", LEAD))
    rows = list(index.rows())
    assert [r.story for r in rows] == ["old", "fed"]
    # Rows are plain values the store can keep: text, a number and bytes.
    for row in rows:
        for f in fields(row):
            assert isinstance(getattr(row, f.name), str | float | int | bytes)
    stale = SignatureRow(
        **{
            **{f.name: getattr(rows[1], f.name) for f in fields(rows[1])},
            "version": SIGNATURE_VERSION + 1,
        }
    )
    rebuilt = NearDupIndex.from_rows([*rows, stale], now=50 * HOUR)
    assert [r.story for r in rebuilt.rows()] == [
        "fed"
    ]  # "old" left the window, "stale" is another version
    match = rebuilt.find(signature("UPDATE 1-Fed holds rates", LEAD), 50 * HOUR)
    assert match is not None and match.story == "fed"


def test_index_memory_is_bounded_by_the_window() -> None:
    index = NearDupIndex(window=10.0)
    for n in range(500):
        index.add(
            _row(
                f"s{n}",
                float(n),
                f"Story {n}",
                f"Report {n} about event {n * 7} in town {n * 13}, details {n * 17} and more.",
            )
        )
    assert len(index) <= 11
    assert len(index._by_hash) <= 11 * 8  # sketch hashes of the items still held


def test_buckets_stay_bounded_when_many_items_share_phrases() -> None:
    """A thousand same-template items in one window: every bucket holds at
    most MAX_BUCKET items, so a lookup reads a bounded number of entries."""
    index = NearDupIndex()
    template = (
        "{co} announced today that its Board of Directors has declared a quarterly cash "
        "dividend of ${n}.{m} per share, payable on January 15 to shareholders of record."
    )
    for n in range(1000):
        lead = template.format(co=f"Company{n} Corp", n=n % 7, m=n % 100)
        index.add(_row(f"s{n}", float(n), f"Company{n} declares dividend", lead))
    sizes = [len(v) if isinstance(v, list) else 1 for v in index._by_hash.values()]
    assert max(sizes) <= MAX_BUCKET
    probe = signature("Dividend", template.format(co="Company5 Corp", n=5, m=5))
    match = index.find(probe, 1000.0)
    assert match is not None and match.story == "s5"
    assert match.describe("feed#9") == f"feed#9 merged into story s5 (like s5#item): {match.reason}"


def test_rows_survive_a_sqlite_file_and_a_restart(tmp_path: Path) -> None:
    """The rows are what a store keeps: write them to a real SQLite file
    (TEXT/REAL/INTEGER/BLOB columns), rebuild in a new index halfway through
    the labelled set, and the merges come out exactly as without a restart."""
    items = load_labelled()
    sigs = [signature(i.title, i.lead) for i in items]
    columns = [f.name for f in fields(SignatureRow)]

    def run(restart_at: int | None) -> list[str | None]:
        index = NearDupIndex()
        merged: list[str | None] = []
        for n, (item, sig) in enumerate(zip(items, sigs, strict=True)):
            if n == restart_at:
                db = sqlite3.connect(tmp_path / "rows.db")
                db.execute(f"CREATE TABLE story_signatures ({', '.join(columns)})")
                db.executemany(
                    f"INSERT INTO story_signatures VALUES ({', '.join('?' * len(columns))})",
                    [tuple(getattr(r, c) for c in columns) for r in index.rows()],
                )
                db.commit()
                db.close()
                db = sqlite3.connect(tmp_path / "rows.db")
                stored = [
                    SignatureRow(*row) for row in db.execute("SELECT * FROM story_signatures")
                ]
                db.close()
                index = NearDupIndex.from_rows(stored, now=item.seen)
            match = index.find(sig, item.seen)
            merged.append(match.item if match else None)
            index.add(SignatureRow.of(item.story, str(n), item.seen, sig))
        return merged

    assert run(restart_at=len(items) // 2) == run(restart_at=None)


def test_signature_row_shape_is_documented() -> None:
    doc = SignatureRow.__doc__ or ""
    for f in fields(SignatureRow):
        assert f"``{f.name}``" in doc
    assert {f.name for f in fields(Signature)} <= {f.name for f in fields(SignatureRow)}
    assert MERGE_WINDOW == 48 * HOUR


# --------------------------------------------------------------------------
# The labelled set
# --------------------------------------------------------------------------


def _index_merger(items: list[LabelledItem]) -> tuple[list[Signature], Merger]:
    """The items' signatures, and a merger running them through one index as
    they arrive (item n is filed after it is looked up)."""
    sigs = [signature(i.title, i.lead) for i in items]
    index = NearDupIndex()

    def merge_into(n: int) -> int | None:
        match = index.find(sigs[n], items[n].seen)
        index.add(SignatureRow.of(str(n), str(n), items[n].seen, sigs[n]))
        return int(match.item) if match else None

    return sigs, merge_into


def test_labelled_set_is_big_and_varied() -> None:
    items = load_labelled()
    sizes = Counter(i.story for i in items)
    assert len(items) >= 200
    assert len(sizes) >= 100
    assert sum(1 for size in sizes.values() if size >= 3) >= 25


def test_merging_precision_is_perfect_and_recall_high() -> None:
    items = load_labelled()
    _, merge_into = _index_merger(items)
    precision, recall = pairwise_scores([i.story for i in items], cluster(len(items), merge_into))
    assert precision == 1.0
    assert recall >= 0.95


def test_no_pair_of_different_stories_merges() -> None:
    """Stronger than the clustering: every cross-story pair, in both orders."""
    items = load_labelled()
    sigs = [signature(i.title, i.lead) for i in items]
    for a, b in itertools.combinations(range(len(items)), 2):
        if items[a].story != items[b].story:
            for x, y in ((a, b), (b, a)):
                verdict = compare(sigs[x], sigs[y])
                assert not verdict.merge, (
                    f"{items[x].story}/{items[x].outlet} ~ {items[y].story}/{items[y].outlet}: "
                    f"{verdict.reason}"
                )


def test_the_traps_are_close_calls() -> None:
    """The set is only a test if some different stories look alike: several
    cross-story pairs share most of their lead and are kept apart by the
    names/numbers or the headline rule alone."""
    items = load_labelled()
    sigs = [signature(i.title, i.lead) for i in items]
    close = [
        compare(sigs[a], sigs[b])
        for a, b in itertools.combinations(range(len(items)), 2)
        if items[a].story != items[b].story
    ]
    assert sum(1 for v in close if v.score >= 0.7) >= 20
