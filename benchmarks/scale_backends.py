"""Embedded (Whoosh + FAISS) vs Milvus (milvus-lite) at 10k/100k BBC paragraphs: build, latency, memory, disk.

Run::

    .venv/bin/python benchmarks/scale_backends.py [--sizes 10000,100000] [--queries 100] [--encode 10000]

BBC News paragraphs (``../shared/data/bbc-news/bbc`` from the repository root) are replicated to each
size (ids get a copy suffix, texts a copy marker so BM25 still sees distinct rows). Only ``--encode``
distinct paragraphs are embedded with MiniLM (that rate is the "encode" row: it dominates any real
build); larger sizes reuse the vectors cyclically. Entities: each paragraph is linked to its category
and to one of 50 synthetic ids, so filtered queries have realistic selectivity (~20% and ~2%). Memory is
the resident set added by opening and querying (embedded: this process; milvus-lite: its server process).
Single run, 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.encoder import load_encoder  # noqa: E402

BBC = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbc-news" / "bbc"


def bbc_paragraphs(root: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(root.glob("*/*.txt")):
        raw = path.read_text(encoding="latin-1").strip().split("\n")
        title, body = raw[0].strip(), "\n".join(raw[1:])
        doc_id = f"{path.parent.name}/{path.stem}"
        paras = [p.strip() for p in body.split("\n\n") if p.strip()]
        for n, text in enumerate(paras):
            rows.append({"id": f"{doc_id}#{n}", "doc_id": doc_id, "n": n, "title": title, "text": text,
                         "date": "", "category": path.parent.name})
    return rows


def replicate(base: list[dict[str, Any]], vectors: np.ndarray, size: int) -> tuple[list[dict], np.ndarray]:
    rows, idx = [], []
    for i in range(size):
        src, copy = base[i % len(base)], i // len(base)
        tag = f"~{copy}" if copy else ""
        eid = f"topic-{zlib.crc32(src['id'].encode()) % 50}"
        rows.append({**src, "id": src["id"] + tag, "doc_id": src["doc_id"] + tag,
                     "text": src["text"] + (f" (copy {copy})" if copy else ""),
                     "links": [{"entity_id": f"cat-{src['category']}"}, {"entity_id": eid}],
                     "quotes": []})
        idx.append(i % len(vectors))
    return rows, vectors[np.asarray(idx)]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def du_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def latencies(fn: Callable[[int], Any], n: int) -> tuple[float, float]:
    fn(0)  # warm up
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def run_queries(backend: Any, queries: list[str], qvecs: np.ndarray, n: int
                ) -> dict[str, tuple[float, float]]:
    return {
        "keyword": latencies(lambda i: backend.keyword(queries[i % len(queries)], 100), n),
        "vector": latencies(lambda i: backend.vector(qvecs[i % len(qvecs)], 100), n),
        "vector+filter": latencies(
            lambda i: backend.vector(qvecs[i % len(qvecs)], 100, entities=["cat-tech"]), n),
        "keyword+filter": latencies(
            lambda i: backend.keyword(queries[i % len(queries)], 100, entities=[f"topic-{i % 50}"]), n),
        "count": latencies(lambda i: backend.count(queries[i % len(queries)]), n),
    }


def bench_embedded(rows: list[dict], vectors: np.ndarray, work: Path, queries: list[str], qvecs: np.ndarray,
                   n: int) -> dict[str, Any]:
    from index.keyword import write_keyword_index
    from index.postings import write_postings
    from index.vectors import write_vector_index
    from search.backends.embedded import EmbeddedBackend

    folder = work / "embedded"
    t = time.perf_counter()
    write_keyword_index(folder / "whoosh", ({
        "id": r["id"], "doc_id": r["doc_id"], "date": "", "title": r["title"], "text": r["text"],
        "entity": ",".join(sorted({x["entity_id"] for x in r["links"]})), "said": ""} for r in rows))
    write_postings(folder / "whoosh", folder / "postings")  # as a build writes them (index/postings.py)
    kw_s = time.perf_counter() - t
    t = time.perf_counter()
    write_vector_index(folder, vectors, [r["id"] for r in rows], hnsw_threshold=50_000)
    vec_s = time.perf_counter() - t
    before = rss_mb(os.getpid())
    backend = EmbeddedBackend.open(folder)
    lat = run_queries(backend, queries, qvecs, n)
    mem = rss_mb(os.getpid()) - before
    backend.close()
    return {"build_s": kw_s + vec_s, "detail": f"whoosh {kw_s:.1f}s + faiss {vec_s:.1f}s",
            "disk_mb": du_mb(folder), "mem_mb": mem, "lat": lat}


def bench_milvus(rows: list[dict], vectors: np.ndarray, work: Path, queries: list[str], qvecs: np.ndarray,
                 n: int) -> dict[str, Any]:
    from search.backends.milvus import MilvusBackend, connect, write

    uri = str(work / "milvus.db")
    client = connect(uri)
    server = children(os.getpid())
    base = sum(rss_mb(p) for p in server)
    t = time.perf_counter()
    write((rows, vectors), uri, "bench", build="bench", client=client)
    build_s = time.perf_counter() - t
    backend = MilvusBackend.open(uri, "bench", client=client)
    lat = run_queries(backend, queries, qvecs, n)
    mem = sum(rss_mb(p) for p in children(os.getpid())) - base
    client.drop_collection(backend.collection)
    client.close()
    return {"build_s": build_s, "detail": "insert+BM25+flush+index+load", "disk_mb": du_mb(Path(uri)),
            "mem_mb": mem, "lat": lat}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=BBC)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--encode", type=int, default=3000, help="distinct paragraphs to embed")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "personae-bench")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--backends", default="embedded,milvus")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"skipped: BBC News not found at {args.data}")
        return 0
    backends = args.backends.split(",")
    if "milvus" in backends:
        try:
            import milvus_lite  # noqa: F401
            import pymilvus  # noqa: F401
        except ImportError:
            print("milvus-lite/pymilvus not installed (pip install 'personae[milvus]'): embedded only")
            backends = [b for b in backends if b != "milvus"]
    base = bbc_paragraphs(args.data)
    encoder = load_encoder("all-MiniLM-L6-v2")
    sample = base[: min(args.encode, len(base))]
    cache = args.cache / f"bbc-minilm-{len(sample)}.npz"
    if cache.is_file():  # a rerun skips the slow part; the rate is the one measured when it was made
        data = np.load(cache)
        vectors, enc_s = data["vectors"], float(data["seconds"])
    else:
        t = time.perf_counter()
        vectors = encoder.encode([f"{r['title']}\n{r['text']}" for r in sample], batch_size=64)
        enc_s = time.perf_counter() - t
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, vectors=vectors, seconds=enc_s)
    enc_rate = len(sample) / enc_s
    print(f"BBC: {len(base)} paragraphs; encoded {len(sample)} with MiniLM in {enc_s:.1f}s = "
          f"{enc_rate:.0f} paragraphs/s (1 process, 2 cores)", flush=True)
    docs = list(dict.fromkeys(r["title"] for r in base))
    queries = docs[:: max(1, len(docs) // 200)][:200]
    qvecs = encoder.encode(queries, batch_size=64)

    results: list[dict[str, Any]] = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        rows, vecs = replicate(sample, vectors, size)
        for name in backends:
            work = Path(tempfile.mkdtemp(prefix=f"personae-scale-{name}-"))
            try:
                fn = bench_embedded if name == "embedded" else bench_milvus
                r = fn(rows, vecs, work, queries, qvecs, args.queries)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            r.update(size=size, backend=name, rate=size / r["build_s"])
            results.append(r)
            lat = "  ".join(f"{k} {p50:.1f}/{p95:.1f}" for k, (p50, p95) in r["lat"].items())
            print(f"{size:>7} {name:<9} build {r['build_s']:6.1f}s ({r['rate']:6.0f}/s; {r['detail']})  "
                  f"disk {r['disk_mb']:7.1f} MB  mem +{r['mem_mb']:6.0f} MB  | ms p50/p95: {lat}", flush=True)

    print("\n| paragraphs | backend | index write (s) | write rate (/s) | + encode at "
          f"{enc_rate:.0f}/s (s) | disk (MB) | memory (MB) | keyword p50/p95 (ms) | vector p50/p95 (ms) "
          "| vector+filter p50/p95 (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        lat = r["lat"]
        print(f"| {r['size']:,} | {r['backend']} | {r['build_s']:.1f} | {r['rate']:.0f} | "
              f"{r['size'] / enc_rate:.0f} | {r['disk_mb']:.0f} | {r['mem_mb']:.0f} | "
              f"{lat['keyword'][0]:.1f} / {lat['keyword'][1]:.1f} | "
              f"{lat['vector'][0]:.1f} / {lat['vector'][1]:.1f} "
              f"| {lat['vector+filter'][0]:.1f} / {lat['vector+filter'][1]:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"encode_rate": enc_rate, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
