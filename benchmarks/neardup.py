"""Near-duplicate merging benchmark: run by hand, prints figures and ratios.

    .venv/bin/python benchmarks/neardup.py                  # 20,000 generated items
    .venv/bin/python benchmarks/neardup.py --items 5000     # quicker

Measures:
  (a) pairwise merge precision / recall on the labelled set
      (tests/fixtures/neardup_stories.yaml) for the chosen method
      (bot.neardup: containment + name/number veto, through the index) and the
      alternatives considered: the same verdict over all earlier items (naive
      all-pairs), containment without the veto, MinHash/Jaccard
      (``datasketch``) and fuzzy string ratios (``rapidfuzz``), each when
      installed;
  (b) speed in items/s on a generated stream in which 20 % of the items are
      syndicated copies (dateline, suffix, truncation): signature alone, the
      index (find + add) early and late in the stream (flat cost), the naive
      all-pairs scan over the window, and datasketch's MinHash LSH;
  (c) memory: bytes per item held by the index (tracemalloc) and per stored
      row, stated per 100,000 stories.
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from neardup_labelled import LabelledItem, cluster, load_labelled, pairwise_scores

from bot import neardup
from bot.neardup import MERGE_WINDOW, NearDupIndex, SignatureRow, compare, signature
from bot.query import fold

HOUR = 3600.0

# --------------------------------------------------------------------------
# (a) quality on the labelled set
# --------------------------------------------------------------------------


def best_earlier(
    items: list[LabelledItem], n: int, score: Callable[[int, int], float | None]
) -> int | None:
    """The earlier item within the window with the highest merge score."""
    best: tuple[float, int] | None = None
    for m in range(n):
        if items[n].seen - items[m].seen > MERGE_WINDOW:
            continue
        s = score(n, m)
        if s is not None and (best is None or s > best[0]):
            best = (s, m)
    return best[1] if best else None


def quality() -> None:
    items = load_labelled()
    labels = [i.story for i in items]
    sigs = [signature(i.title, i.lead) for i in items]
    print(f"(a) labelled set: {len(items)} items, {len(set(labels))} stories")
    methods: dict[str, Callable[[int], int | None]] = {}

    index = NearDupIndex()

    def by_index(n: int) -> int | None:
        match = index.find(sigs[n], items[n].seen)
        index.add(SignatureRow.of(str(n), str(n), items[n].seen, sigs[n]))
        return int(match.item) if match else None

    methods["bot.neardup (index)"] = by_index

    def verdict_score(n: int, m: int) -> float | None:
        v = compare(sigs[n], sigs[m])
        return v.score if v.merge else None

    methods["bot.neardup (naive all-pairs)"] = lambda n: best_earlier(items, n, verdict_score)

    def containment_only(n: int, m: int) -> float | None:
        a, b = set(_unpack(sigs[n].lead)), set(_unpack(sigs[m].lead))
        if min(len(a), len(b)) < neardup.MIN_LEAD_SHINGLES:
            return None
        c = len(a & b) / min(len(a), len(b))
        return c if c >= neardup.LEAD_CONTAINMENT else None

    methods["containment only, no veto"] = lambda n: best_earlier(items, n, containment_only)

    minhashes = _minhashes(items)
    if minhashes is not None:

        def jaccard(n: int, m: int) -> float | None:
            j = float(minhashes[n].jaccard(minhashes[m]))
            return j if j >= 0.5 else None

        methods["datasketch MinHash, Jaccard >= 0.5"] = lambda n: best_earlier(items, n, jaccard)

    try:
        from rapidfuzz import fuzz
    except ImportError:
        print("    (rapidfuzz not installed: skipped)")
    else:
        texts = [fold(f"{i.title} {i.lead}") for i in items]
        for cutoff in (90, 80):

            def ratio(n: int, m: int, cutoff: int = cutoff) -> float | None:
                r = fuzz.token_set_ratio(texts[n], texts[m], score_cutoff=cutoff)
                return r or None

            methods[f"rapidfuzz token_set_ratio >= {cutoff}"] = lambda n, r=ratio: best_earlier(
                items, n, r
            )

    for name, merge_into in methods.items():
        precision, recall = pairwise_scores(labels, cluster(len(items), merge_into))
        print(f"    {name:<40} precision {precision:.3f}  recall {recall:.3f}")


def _unpack(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4)]


def _minhashes(items: list[LabelledItem]) -> list | None:
    try:
        from datasketch import MinHash
    except ImportError:
        print("    (datasketch not installed: skipped)")
        return None
    out = []
    for i in items:
        m = MinHash(num_perm=128)
        norm = neardup.normalise(i.title, i.lead)
        words = norm.title + norm.lead
        for k in range(len(words) - 2):
            m.update(" ".join(words[k : k + 3]).encode())
        out.append(m)
    return out


# --------------------------------------------------------------------------
# (b), (c) a generated stream
# --------------------------------------------------------------------------


def make_stream(count: int, per_hour: float, seed: int = 7) -> list[tuple[float, str, str]]:
    """(seen, title, lead): 80 % original reports, 20 % syndicated copies of a
    recent one (dateline, outlet suffix, truncated or extended lead)."""
    rng = random.Random(seed)
    vocab = [
        "".join(
            rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(rng.randint(1, 4))
        )
        for _ in range(6000)
    ]
    names = [w.capitalize() for w in rng.sample(vocab, 1500)]
    weights = [1 / (k + 1) for k in range(len(vocab))]  # Zipf-like
    out: list[tuple[float, str, str]] = []
    originals: list[tuple[str, str]] = []
    for n in range(count):
        seen = n / per_hour * HOUR
        if originals and rng.random() < 0.2:
            title, lead = rng.choice(originals[-200:])
            kind = rng.randrange(3)
            if kind == 0:
                lead = f"{rng.choice(names).upper()} (Reuters) - {lead}"
            elif kind == 1:
                lead = " ".join(lead.split()[: rng.randint(18, 30)]) + "…"
            else:
                lead = lead + " " + " ".join(rng.choices(vocab, weights, k=15)) + "."
            out.append((seen, f"{title} - {rng.choice(names)} News", lead))
            continue
        words = rng.choices(vocab, weights, k=rng.randint(30, 60))
        for k in rng.sample(range(len(words)), 5):
            words[k] = rng.choice(names)
        words.insert(rng.randrange(len(words)), str(rng.randint(2, 9999)))
        lead = " ".join(words).capitalize() + "."
        title = " ".join(rng.choices(vocab, weights, k=rng.randint(6, 12))).capitalize()
        originals.append((title, lead))
        out.append((seen, title, lead))
    return out


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} items/s"


def speed_and_memory(count: int) -> None:
    # 500 items an hour: 24,000 in a 48h window, a large deployment.
    per_hour = 500.0
    stream = make_stream(count, per_hour)
    print(f"\n(b) generated stream: {count:,} items, 20 % syndicated, {per_hour:.0f} items/hour")

    started = time.perf_counter()
    sigs = [signature(title, lead) for _, title, lead in stream]
    elapsed = time.perf_counter() - started
    print(f"    signature (normalise + shingle + hash)    {rate(count, elapsed)}")

    index = NearDupIndex()
    merged = 0
    chunk = max(1, count // 10)
    timings: list[float] = []
    started = time.perf_counter()
    for n, ((seen, _, _), sig) in enumerate(zip(stream, sigs, strict=True)):
        if index.find(sig, seen) is not None:
            merged += 1
        # Keys as long as real ones: a story key and the item's canonical link.
        link = f"example{n % 50}.org/2026/12/{n}/a-headline-made-into-a-slug"
        index.add(SignatureRow.of(f"link:{link}", link, seen, sig))
        if (n + 1) % chunk == 0:
            timings.append(time.perf_counter() - started)
            started = time.perf_counter()
    print(
        f"    index find + add, first tenth             {rate(chunk, timings[0])}"
        f"  (window holds {min(chunk, int(per_hour * 48)):,})"
    )
    print(
        f"    index find + add, last tenth              {rate(chunk, timings[-1])}"
        f"  (window holds {len(index):,})"
    )
    print(f"    merged {merged:,} of {count:,} items (about 20 % are copies)")

    sample = min(count, 1000)
    started = time.perf_counter()
    for n in range(sample):
        for m in range(n - 1, -1, -1):
            if stream[n][0] - stream[m][0] > MERGE_WINDOW:
                break
            compare(sigs[n], sigs[m])
    elapsed = time.perf_counter() - started
    print(
        f"    naive all-pairs, first {sample:,} items          {rate(sample, elapsed)}"
        f"  (window reaches {sample:,}; falls as 1/window)"
    )
    _datasketch_speed(stream[: min(count, 5000)])

    print(f"\n(c) memory, {len(index):,} items held")
    # As after a restart: the rows come back from storage as new objects, and
    # everything the rebuilt index holds (rows, buckets, expiry heap) counts.
    stored = pickle.dumps([dataclasses.astuple(r) for r in index.rows()])
    del index
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = NearDupIndex.from_rows(
        (SignatureRow(*values) for values in pickle.loads(stored)), now=stream[-1][0]
    )
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_item = (after - before) / max(1, len(held))
    row_bytes = sum(_row_bytes(r) for r in held.rows()) / max(1, len(held))
    for name, size in (("index in memory", per_item), ("stored rows", row_bytes)):
        print(f"    {name:<20} {size:,.0f} B/item = {size * 1e5 / 2**20:,.0f} MiB per 100k")
    del held


def _row_bytes(row: SignatureRow) -> int:
    return (
        len(row.story.encode())
        + len(row.item.encode())
        + 8
        + 8
        + sum(len(b) for b in (row.title, row.lead, row.keys, row.initials, row.context))
    )


def _datasketch_speed(stream: list[tuple[float, str, str]]) -> None:
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        return
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    started = time.perf_counter()
    for n, (_, title, lead) in enumerate(stream):
        m = MinHash(num_perm=128)
        norm = neardup.normalise(title, lead)
        words = norm.title + norm.lead
        m.update_batch([" ".join(words[k : k + 3]).encode() for k in range(len(words) - 2)])
        lsh.query(m)
        lsh.insert(str(n), m)
    print(
        f"    datasketch MinHash(128) + LSH, {len(stream):,} items  "
        f"{rate(len(stream), time.perf_counter() - started)}  (no expiry, no exact check)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    quality()
    speed_and_memory(args.items)


if __name__ == "__main__":
    main()
