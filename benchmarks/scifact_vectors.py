"""Vector-leg quality on SciFact: nDCG@10 / recall@100 / MRR@10, title prepended or not, flat vs HNSW.

Run::

    .venv/bin/python benchmarks/scifact_vectors.py [--data ../shared/data/scifact-dev] [--split train]

Document embeddings are cached under ``--cache`` (default ``/tmp/personae-bench``) keyed by model and
exact input texts, so a rerun only encodes what changed. Encoding SciFact (5k abstracts) once takes a
few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev"  # ../shared from the root

from index.encoder import Encoder, compose_text, load_encoder  # noqa: E402
from index.vectors import VectorIndex, write_vector_index  # noqa: E402
from search.evaluate import evaluate, format_table, load_beir, run_from_results  # noqa: E402


def cached_encode(encoder: Encoder, texts: list[str], cache: Path, batch_size: int, label: str) -> np.ndarray:
    digest = hashlib.sha256(encoder.model_id.encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    path = cache / f"{label}-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        print(f"  {label}: cached {path}", flush=True)
        return np.load(path)
    start = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=batch_size, show_progress=False)
    seconds = time.perf_counter() - start
    rate = len(texts) / seconds
    print(f"  {label}: encoded {len(texts)} texts in {seconds:.1f} s ({rate:.1f}/s)", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def search_run(index: VectorIndex, qids: list[str], qvecs: np.ndarray, k: int) -> dict[str, dict[str, float]]:
    results = index.search_many(qvecs, k)
    return run_from_results(dict(zip(qids, results, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SCIFACT))
    parser.add_argument("--split", default=None)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--cache", default="/tmp/personae-bench")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args(argv)

    corpus, queries, qrels = load_beir(args.data, args.split)
    qids = [q for q in qrels if q in queries]
    print(f"corpus {len(corpus)} docs, {len(qids)} judged queries ({len(qrels)} in qrels)")
    start = time.perf_counter()
    encoder = load_encoder(args.model)
    print(f"model {encoder.model_id} (dim {encoder.dim}) loaded in {time.perf_counter() - start:.1f} s")
    cache = Path(args.cache)

    # Single-query latency, as the searcher sees it.
    sample = [queries[q] for q in qids[:60]]
    encoder.encode(sample[:5])  # warm-up
    timings = []
    for text in sample:
        t0 = time.perf_counter()
        encoder.encode([text])
        timings.append((time.perf_counter() - t0) * 1000)
    print(f"query encode latency: median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms")

    qvecs = cached_encode(encoder, [queries[q] for q in qids], cache, args.batch_size, "queries")
    ids = [d["id"] for d in corpus]
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="personae-bench-") as tmp:
        for embed_title in (True, False):
            name = "vector+title" if embed_title else "vector (no title)"
            texts = [compose_text(d["title"], d["text"], embed_title=embed_title) for d in corpus]
            label = "docs-title" if embed_title else "docs-notitle"
            dvecs = cached_encode(encoder, texts, cache, args.batch_size, label)

            flat_dir = Path(tmp) / f"flat-{label}"
            write_vector_index(flat_dir, dvecs, ids, hnsw_threshold=len(ids) + 1)
            flat = VectorIndex.open(flat_dir)
            t0 = time.perf_counter()
            flat_run = search_run(flat, qids, qvecs, args.k)
            flat_ms = (time.perf_counter() - t0) * 1000 / len(qids)
            rows[f"{name} flat"] = evaluate(qrels, flat_run)
            if not embed_title:
                continue

            hnsw_dir = Path(tmp) / f"hnsw-{label}"
            t0 = time.perf_counter()
            info = write_vector_index(hnsw_dir, dvecs, ids, hnsw_threshold=0)
            build_s = time.perf_counter() - t0
            hnsw = VectorIndex.open(hnsw_dir)
            t0 = time.perf_counter()
            hnsw_run = search_run(hnsw, qids, qvecs, args.k)
            hnsw_ms = (time.perf_counter() - t0) * 1000 / len(qids)
            rows[f"{name} hnsw"] = evaluate(qrels, hnsw_run)
            recall10 = statistics.mean(
                len(set(list(flat_run[q])[:10]) & set(list(hnsw_run[q])[:10])) / 10 for q in qids
            )
            print(
                f"  {info['kind']}: built in {build_s:.2f} s, recall@10 vs exact {recall10:.4f}; "
                f"search {hnsw_ms:.3f} ms/query (flat {flat_ms:.3f} ms/query, batched)"
            )
    print()
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
