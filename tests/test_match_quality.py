"""Matching quality over the labelled pairs (fixtures/match_labels.tsv):
precision and recall must stay at least where the README reports them."""

from __future__ import annotations

from matchlabels import Pair, evaluate, load_pairs

# README "Matching quality" reports 0.965 / 0.978 over 337 pairs; a change that
# costs more than a pair or two fails here. Raise these when matching improves.
MIN_PRECISION = 0.955
MIN_RECALL = 0.97


def test_the_labelled_file_is_big_and_varied() -> None:
    pairs = load_pairs()
    assert len(pairs) >= 300
    assert sum(p.expect for p in pairs) >= 150
    assert sum(not p.expect for p in pairs) >= 100  # traps
    assert len({p.lang for p in pairs}) >= 10
    assert len(set(pairs)) == len(pairs)  # no pair counted twice


def test_precision_and_recall() -> None:
    score, _ = evaluate(load_pairs())
    report = "\n".join(
        [f"miss: {p.term!r} vs {p.title!r}" for p in score.misses]
        + [f"false alarm: {p.term!r} vs {p.title!r}" for p in score.false_alarms]
    )
    assert score.precision >= MIN_PRECISION, report
    assert score.recall >= MIN_RECALL, report


def test_issue_cases_are_all_right() -> None:
    """The cases named in the matching issue are not allowed to be among the
    few errors the thresholds tolerate."""
    score, _ = evaluate(load_pairs())
    wrong = {(p.term, p.title) for p in (*score.misses, *score.false_alarms)}
    named = [p for p in load_pairs() if p.term in _NAMED_TERMS]
    assert len(named) > 60
    assert not [p for p in named if (p.term, p.title) in wrong]


_NAMED_TERMS = {
    *("US", "EU", "AI", "WHO", "IT", "UK", "NGO", "AT&T", "R&D", "S&P 500", "M&A", "P&G"),
    *("C++", "C#", "F#", "G7", "G-7", "COVID-19", "COVID19", "e-commerce", "ecommerce"),
    *("nonprofit", "non-profit", "crisis", "analysis", "child", "person", "man", "woman"),
    *("index", "반도체", "ภาษี", "comment", "comments", "link", "subscribe", "free"),
}


def test_scorer_counts_both_kinds_of_error() -> None:
    """The scorer itself: a miss and a false alarm are both seen."""
    pairs = [
        Pair(expect=True, lang="en", term="tariff", title="New tariffs", summary=""),
        Pair(expect=True, lang="en", term="tariff", title="Steel duties", summary=""),
        Pair(expect=False, lang="en", term="steel", title="Steel duties", summary=""),
        Pair(expect=False, lang="en", term="zinc", title="Steel duties", summary=""),
    ]
    score, by_lang = evaluate(pairs)
    assert (score.true_positives, score.false_negatives) == (1, 1)
    assert (score.false_positives, score.true_negatives) == (1, 1)
    assert score.precision == 0.5 and score.recall == 0.5
    assert by_lang["en"].precision == 0.5
