"""Print matching precision and recall over tests/fixtures/match_labels.tsv.

    python benchmarks/match_quality.py            # overall and per language
    python benchmarks/match_quality.py --errors   # also every miss and false alarm

The figures are reported in the README ("Matching quality"); the thresholds
the suite enforces are in tests/test_match_quality.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matchlabels import evaluate, load_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list misses and false alarms")
    args = parser.parse_args()
    pairs = load_pairs()
    total, by_lang = evaluate(pairs)
    positives = sum(p.expect for p in pairs)
    print(f"pairs: {len(pairs)} ({positives} should alert, {len(pairs) - positives} traps)")
    print(f"precision: {total.precision:.3f}  recall: {total.recall:.3f}")
    for lang in sorted(by_lang):
        score = by_lang[lang]
        print(f"  {lang:8} precision {score.precision:.3f}  recall {score.recall:.3f}")
    if args.errors:
        for label, rows in (("miss", total.misses), ("false alarm", total.false_alarms)):
            for pair in rows:
                print(f"{label}: [{pair.lang}] {pair.term!r} vs {pair.title!r}")


if __name__ == "__main__":
    main()
