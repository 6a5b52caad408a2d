"""CPU seconds of near-duplicate detection in a full build and in an incremental one, and proof both agree.

    python benchmarks/duplicate_incremental.py --corpus CORPUS.jsonl [--add 200] [--next NEXT.jsonl]

The base build runs ``write_duplicates`` over ``--corpus`` with nothing to reuse. The next corpus is
``--next`` when given, else the base plus ``--add`` BBC articles (``../shared``, drawn with a fixed seed,
ids prefixed ``add/``). On it the script times: the incremental ``write_duplicates`` that reuses the base
build's band keys and pairs, the same with nothing changed (the corpus step alone), a full one, and the
datasketch ``MinHashLSH`` reference (what a build did before band keys were kept). It checks that all four
give the same clusters and that the first three give the same pairs. Times are ``time.process_time()`` of
this one process, so other load on the machine moves them less than wall-clock.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from index import layout  # noqa: E402
from index.documents import read_corpus  # noqa: E402
from index.duplicates import (  # noqa: E402
    MIN_SHINGLES,
    NUM_PERM,
    SEED,
    THRESHOLD,
    _jaccard,
    document_text,
    shingles,
    write_duplicates,
)
from index.groups import connected_groups  # noqa: E402
from index.readers import ReadOptions  # noqa: E402
from index.records import Document  # noqa: E402

BBC = ROOT.parent / "shared" / "data" / "bbc-news" / "bbc"
DRAW_SEED = 17


def reference_clusters(docs: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Clusters the way a build found them before band keys were kept: every document shingled and
    MinHashed, inserted into and queried against datasketch's ``MinHashLSH``."""
    from datasketch import MinHash, MinHashLSH

    ids, sets = [], []
    for doc_id, text in docs:
        if len(sh := shingles(text)) >= MIN_SHINGLES:
            ids.append(doc_id)
            sets.append(sh)
    hashes = MinHash.bulk([[s.encode("utf-8") for s in sh] for sh in sets], num_perm=NUM_PERM, seed=SEED)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    for i, mh in enumerate(hashes):
        lsh.insert(i, mh)
    pairs = [(ids[i], ids[j]) for i, mh in enumerate(hashes) for j in lsh.query(mh)
             if j > i and _jaccard(sets[i], sets[j]) >= THRESHOLD]
    return [g for g in connected_groups(pairs) if len(g) > 1]


def _read(path: Path) -> list[Document]:
    return read_corpus(path, options=ReadOptions(detect_language=False)).documents


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="the base corpus (what read_corpus reads)")
    ap.add_argument("--next", type=Path, help="the next corpus (default: the base plus --add BBC articles)")
    ap.add_argument("--add", type=int, default=200)
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the datasketch reference (it holds every shingle set at once)")
    args = ap.parse_args()
    base = _read(args.corpus)
    if args.next is not None:
        nxt = _read(args.next)
    elif BBC.exists():
        extra = random.Random(DRAW_SEED).sample(_read(BBC), args.add)
        nxt = base + [Document(id=f"add/{d.id}", title=d.title, text=d.text) for d in extra]
    else:
        print(f"skipped: no --next and BBC not found at {BBC}")
        return 0
    rows: list[tuple[str, int, int, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(tmp) / name for name in ("base", "incremental", "unchanged", "full")]
        for folder in folders:
            folder.mkdir()
        took, first = _cpu(lambda: write_duplicates(folders[0], base))
        rows.append(("full, base corpus", len(base), first.hashed, first.reused, took))
        took, inc = _cpu(lambda: write_duplicates(folders[1], nxt, folders[0]))
        rows.append(("incremental, next corpus", len(nxt), inc.hashed, inc.reused, took))
        took, same = _cpu(lambda: write_duplicates(folders[2], nxt, folders[1]))
        rows.append(("incremental, nothing changed", len(nxt), same.hashed, same.reused, took))
        took, full = _cpu(lambda: write_duplicates(folders[3], nxt))
        rows.append(("full, next corpus", len(nxt), full.hashed, full.reused, took))
        keys_mb = (folders[3] / layout.DUPLICATE_KEYS).stat().st_size / 1e6
    ref = full.clusters
    if not args.no_reference:
        took, ref = _cpu(lambda: reference_clusters([(d.id, document_text(d)) for d in nxt]))
        rows.append(("datasketch MinHashLSH, next corpus", len(nxt), len(nxt), 0, took))

    print("| run | documents | shingled | reused | CPU s |\n|---|---:|---:|---:|---:|")
    for name, n, hashed, reused, cpu in rows:
        print(f"| {name} | {n:,} | {hashed:,} | {reused:,} | {cpu:.2f} |")
    print(f"\nclusters: {len(full.clusters)} ({sum(map(len, full.clusters))} documents), "
          f"pairs: {len(full.pairs)}; {layout.DUPLICATE_KEYS}: {keys_mb:.1f} MB")
    agree = inc.clusters == same.clusters == full.clusters == ref and inc.pairs == same.pairs == full.pairs
    compared = "incremental == full" + ("" if args.no_reference else " == datasketch")
    print(f"{compared}:", "yes" if agree else "NO")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
