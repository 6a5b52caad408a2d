"""Precision of near-duplicate collapsing on BBC, from pairs judged by hand.

    python benchmarks/duplicate_pairs.py --draw            # print 50 collapsed pairs to judge (seed 15)
    python benchmarks/duplicate_pairs.py                   # precision from benchmarks/duplicates_bbc.jsonl

Pairs are drawn from the clusters ``index.duplicates.find_clusters`` finds in BBC (every two documents of
a cluster form a pair), with ``random.Random(SEED)``; the judgements file holds one JSON object a line:
``{"a": doc_id, "b": doc_id, "same_story": true|false, "note": "..."}``. A pair is the same story when a
reader would not want to see both in one result list (a copy, a re-publication with a changed line or
headline); false collapses are pairs about different events.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from index.documents import read_corpus  # noqa: E402
from index.duplicates import THRESHOLD, document_text, find_clusters, shingles  # noqa: E402

SEED = 15
PAIRS = 50
BBC = Path(os.environ.get("PERSONAE_BBC", ROOT.parent / "shared" / "data" / "bbc-news" / "bbc"))
JUDGEMENTS = ROOT / "benchmarks" / "duplicates_bbc.jsonl"


def draw(n: int = PAIRS, seed: int = SEED) -> tuple[list[tuple[str, str]], dict[str, str], int]:
    corpus = read_corpus(BBC)
    texts = {d.id: document_text(d) for d in corpus.documents}
    clusters = find_clusters(texts.items())
    pairs = sorted({(a, b) for c in clusters for a, b in itertools.combinations(sorted(c), 2)})
    rng = random.Random(seed)
    return rng.sample(pairs, min(n, len(pairs))), texts, len(pairs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draw", action="store_true", help="print the drawn pairs (texts side by side)")
    ap.add_argument("--judgements", type=Path, default=JUDGEMENTS)
    args = ap.parse_args()
    if not BBC.exists():
        print(f"skipped: BBC not found at {BBC} (set PERSONAE_BBC)")
        return 0
    sample, texts, total = draw()
    if args.draw:
        for a, b in sample:
            sa, sb = shingles(texts[a]), shingles(texts[b])
            print(f"=== {a}  ~  {b}  jaccard {len(sa & sb) / len(sa | sb):.3f}")
            print(f"--- {a}\n{texts[a][:600]}\n--- {b}\n{texts[b][:600]}\n")
        return 0
    judged = {(r["a"], r["b"]): r for r in map(json.loads, args.judgements.read_text().splitlines()) if r}
    missing = [p for p in sample if p not in judged]
    if missing:
        print(f"{len(missing)} drawn pairs are not judged in {args.judgements} (first {missing[0]}); "
              "run with --draw and judge them")
        return 1
    same = sum(judged[p]["same_story"] for p in sample)
    print(f"BBC: {total} collapsed pairs at Jaccard >= {THRESHOLD} (word 5-grams); {len(sample)} drawn "
          f"(seed {SEED}), judged by hand")
    print(f"precision: {same}/{len(sample)} = {same / len(sample):.2f}")
    for p in sample:
        if not judged[p]["same_story"]:
            print(f"  false collapse: {p[0]} ~ {p[1]}: {judged[p].get('note', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
