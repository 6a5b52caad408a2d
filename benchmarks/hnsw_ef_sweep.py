"""Recall@10 of a build's HNSW index against exact search, and its time per query, for several efSearch.

    PERSONAE_SCALE_CACHE=/tmp/scale1m .venv/bin/python benchmarks/hnsw_ef_sweep.py \\
        --index-dir /tmp/scale1m/index-1000000 [--ef 128,256,512,1024] [--queries 200]

The queries are the scale corpus's held-out ones (``queries.jsonl`` of ``PERSONAE_SCALE_CACHE``), encoded
with the build's model; exact search scores every stored vector. A hit counts when it scores at least the
exact 10th score (ties between copies of one paragraph are equal). FAISS runs on one thread, as a server's
search does. Prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_corpus  # noqa: E402

from index import layout  # noqa: E402
from index.encoder import load_encoder  # noqa: E402
from index.jsonl import read_jsonl  # noqa: E402
from index.vectors import VectorIndex  # noqa: E402


def sweep(index_dir: Path, efs: list[int], n_queries: int, k: int = 10) -> list[tuple[int, float, float]]:
    import faiss

    faiss.omp_set_num_threads(1)
    folder = layout.current_build(index_dir)
    queries = [q["text"] for q in read_jsonl(scale_corpus.CACHE / "queries.jsonl")][:n_queries]
    vi = VectorIndex.open(folder)
    qvecs = load_encoder(layout.read_manifest(folder).models["encoder"]).encode(queries)
    live = vi.live_ids()
    scores = qvecs @ vi.vectors(vi.rows_of(live)).T
    kth = np.sort(scores, axis=1)[:, -k]
    row_of = {pid: i for i, pid in enumerate(live)}
    out = []
    for ef in efs:
        vi.ef_search = ef
        t = time.perf_counter()
        got = vi.search_many(qvecs, k)
        ms = (time.perf_counter() - t) / len(queries) * 1000
        hits = [sum(scores[q, row_of[pid]] >= kth[q] - 1e-5 for pid, _ in g) / k for q, g in enumerate(got)]
        out.append((ef, float(np.mean(hits)), ms))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--ef", default="128,256,512,1024")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    rows = sweep(args.index_dir, [int(x) for x in args.ef.split(",")], args.queries)
    print(f"{'efSearch':>8s} {'recall@10':>10s} {'ms/query':>9s}")
    for ef, recall, ms in rows:
        print(f"{ef:8d} {recall:10.4f} {ms:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
