"""What an incremental build writes, what it shares, and what the delta costs queries (BBC articles).

Builds ``--base`` BBC articles (every category, files in name order, interleaved), copies that index folder,
adds ``--add`` further articles, and builds incrementally twice from the same previous build: with the
default ``delta_fraction`` (the vector and keyword indexes shared with the previous build, a delta written)
and with ``delta_fraction=0`` (both written whole, as before). Both reuse the same linking and vectors, so
the difference is the index writes. Prints each build's step times, the disk use of the two kept builds
(``du``, which counts a hard-linked file once) against one build, that the previous build's files were not
touched, and the latency of the page's grouped call on both results, alternated in one process.

    python benchmarks/delta_builds.py [--base 700] [--add 20] [--queries 60] [--work /tmp/delta-bench]
    python benchmarks/delta_builds.py --latency-only --queries 300   # again on the builds of a run before

``--vectors N`` instead times the vector index alone at a size where it is HNSW: N random unit vectors in
384-d (a worst case for HNSW; real embeddings cluster), then ``--change`` rows replaced and as many added:
the index written whole against the previous base shared plus a delta, and the single-query latency and
recall@10 (against exact search) of both.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BBC = ROOT.parent / "shared" / "data" / "bbc-news" / "bbc"


def articles(n: int) -> list[Path]:
    """``n`` articles, the categories interleaved (each in file-name order)."""
    cats = [sorted(p.glob("*.txt")) for p in sorted(BBC.iterdir()) if p.is_dir()]
    out: list[Path] = []
    for i in range(max(len(c) for c in cats)):
        out += [c[i] for c in cats if i < len(c)]
    return out[:n]


def copy_corpus(paths: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copyfile(p, folder / f"{p.parent.name}-{p.name}")


def du_kb(*paths: Path) -> int:
    """Disk use of ``paths`` together, hard links counted once (``du -sk``'s own rule)."""
    out = subprocess.check_output(["du", "-skc", *map(str, paths)], text=True)
    return int(out.strip().splitlines()[-1].split()[0])


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=int, default=700)
    ap.add_argument("--add", type=int, default=20)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--work", default="/tmp/delta-bench")
    ap.add_argument("--latency-only", action="store_true", help="reuse the builds a run left in --work")
    ap.add_argument("--vectors", type=int, default=0, help="time the vector index alone at this size")
    ap.add_argument("--change", type=int, default=500)
    args = ap.parse_args()
    if args.vectors:
        return vectors_alone(args.vectors, args.change, args.queries, Path(args.work))
    if not BBC.is_dir():
        sys.exit(f"needs the BBC articles in {BBC} (../shared)")
    from index.settings import Settings

    work = Path(args.work)
    chosen = articles(args.base + args.add)
    corpus = work / "corpus"

    def settings(index: str, **kw) -> Settings:  # type: ignore[no-untyped-def]
        return Settings.load(env={"HF_HUB_OFFLINE": "1"}, corpus=str(corpus), index_dir=str(work / index),
                             **kw)

    if not args.latency_only:
        build_both(args, work, chosen, corpus, settings)
    latency(args, chosen, {name: settings(name) for name in ("delta", "whole")})


def build_both(args, work, chosen, corpus, settings) -> None:  # type: ignore[no-untyped-def]
    from index import layout
    from index.build import build_index

    shutil.rmtree(work, ignore_errors=True)
    copy_corpus(chosen[: args.base], corpus)
    t = time.perf_counter()
    first = build_index(settings("delta"), incremental=False)
    print(f"full build of {args.base} articles: {time.perf_counter() - t:.1f} s "
          f"({first.paragraphs} paragraphs)", flush=True)
    shutil.copytree(work / "delta", work / "whole", symlinks=True)
    old = layout.current_build(work / "delta")
    before = snapshot(old)
    copy_corpus(chosen[args.base :], corpus)
    reports = {}
    for name, fraction in (("delta", None), ("whole", 0.0)):
        kw = {} if fraction is None else {"delta_fraction": fraction}
        reports[name] = build_index(settings(name, **kw))
    touched = snapshot(old) != before
    print(f"\n+{args.add} articles, incremental builds from the same previous build "
          f"(previous build's files {'CHANGED' if touched else 'untouched: same inodes and sha256'})")
    print(f"{'':22s}{'total s':>9s}{'vectors s':>11s}{'keyword s':>11s}{'two builds MB':>15s}"
          f"{'one build MB':>14s}{'ratio':>7s}")
    parts = {"vectors": ("vectors.faiss", "vector_ids.json", "vectors-delta.faiss", "vectors-delta.json"),
             "whoosh + postings": (layout.WHOOSH_DIR, layout.POSTINGS_DIR), "store": (layout.STORE,)}
    for name, r in reports.items():
        previous = r.folder.parent / old.name
        one = du_kb(r.folder) / 1024
        two = du_kb(r.folder, previous) / 1024
        label = "shared base + delta" if name == "delta" else "written whole"
        print(f"{label:22s}{r.seconds:9.1f}{r.timings['vectors']:11.2f}{r.timings['keyword']:11.2f}"
              f"{two:15.1f}{one:14.1f}{two / one:7.2f}")
        for part, names in parts.items():
            mine = [r.folder / n for n in names if (r.folder / n).exists()]
            theirs = [previous / n for n in names if (previous / n).exists()]
            p1, p2 = du_kb(*mine) / 1024, du_kb(*mine, *theirs) / 1024
            print(f"  {part:20s}{'':31s}{p2:15.1f}{p1:14.1f}{p2 / p1:7.2f}")



def latency(args, chosen, settings) -> None:  # type: ignore[no-untyped-def]
    from search.searcher import Searcher

    rng = random.Random(1)
    heads = [p.read_text(encoding="utf-8", errors="replace").splitlines()[0] for p in chosen]
    words = [w for h in heads for w in h.split() if len(w) > 4]
    queries = [" ".join(rng.sample(words, rng.randint(1, 3))) for _ in range(args.queries)]
    sides = {name: Searcher.open(s) for name, s in settings.items()}
    for s in sides.values():
        s.search("warm up", limit=10, group=True)
    times: dict[str, list[float]] = {name: [] for name in sides}
    same = 0
    for i, q in enumerate(queries):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        got = {}
        for name in order:
            t = time.perf_counter()
            got[name] = sides[name].search(q, limit=10, group=True)
            times[name].append((time.perf_counter() - t) * 1000)
        same += [h["paragraph_id"] for h in got["delta"]["hits"]] == [h["paragraph_id"]
                                                                      for h in got["whole"]["hits"]]
    print(f"\ngrouped hybrid search, {len(queries)} queries (1–3 headline words), alternated:")
    for name, ts in times.items():
        print(f"  {name:6s} p50 {np.percentile(ts, 50):6.1f} ms  p95 {np.percentile(ts, 95):6.1f} ms")
    print(f"  same hits on both: {same}/{len(queries)}")


def vectors_alone(n: int, change: int, n_queries: int, work: Path) -> None:
    from index.layers import link_or_copy
    from index.vectors import VectorIndex, write_vector_delta, write_vector_index

    dim, rng = 384, np.random.default_rng(0)

    def unit(m: int) -> np.ndarray:
        x = rng.standard_normal((m, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    shutil.rmtree(work, ignore_errors=True)
    base = unit(n)
    ids = [f"p{i}" for i in range(n)]
    t = time.perf_counter()
    write_vector_index(work / "old", base, ids, hnsw_threshold=n - 1, keys=ids)
    print(f"base: {n} vectors, HNSW written in {time.perf_counter() - t:.1f} s", flush=True)
    fresh = unit(2 * change)
    live = np.vstack([fresh[:change], base[change:], fresh[change:]])
    live_ids = ids + [f"n{i}" for i in range(change)]
    t = time.perf_counter()
    write_vector_index(work / "whole", live, live_ids, hnsw_threshold=n - 1, keys=live_ids)
    whole_s = time.perf_counter() - t
    t = time.perf_counter()
    (work / "delta").mkdir()
    for name in ("vectors.faiss", "vector_ids.json"):
        link_or_copy(work / "old" / name, work / "delta" / name)
    delta_ids = ids[:change] + live_ids[n:]
    write_vector_delta(work / "delta", np.vstack([fresh[:change], fresh[change:]]), delta_ids, delta_ids,
                       removed=range(change))
    delta_s = time.perf_counter() - t
    print(f"{change} rows changed, {change} added: written whole {whole_s:.1f} s, delta {delta_s:.2f} s")
    queries = unit(n_queries)
    exact = np.argsort(-(queries @ live.T), axis=1)[:, :10]
    for name in ("whole", "delta"):
        index = VectorIndex.open(work / name)
        index.search(queries[0], 10)
        times, recall = [], []
        for q, want in zip(queries, exact, strict=True):
            t = time.perf_counter()
            got = index.search(q, 10)
            times.append((time.perf_counter() - t) * 1000)
            recall.append(len({pid for pid, _ in got} & {live_ids[i] for i in want}) / 10)
        p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
        print(f"  {name:6s} search p50 {p50:5.2f} ms  p95 {p95:5.2f} ms  recall@10 {np.mean(recall):.3f}")


if __name__ == "__main__":
    main()
