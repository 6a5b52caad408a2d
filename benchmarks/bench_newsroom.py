"""Latency of the calls the search page makes (grouped, filtered) at ~100k paragraphs, on the generated
dated news archive (tests/search/newsgen.py), in one run:

    python benchmarks/bench_newsroom.py [--articles 33000] [--queries 60]

The archive is built once (cached under /tmp/personae-bench/news-<N>) with the hash encoder and the
gazetteer linker, so it builds in minutes; queries are embedded with the real MiniLM (the searcher's encoder
is swapped in), so the vector leg pays a real query encode and an HNSW search over 100k vectors. The text is
templated from a small vocabulary, so keyword postings are far denser than in real news (each topic word is
in about a quarter of all paragraphs): the keyword leg and the grouped paging over every match do more work
than on a real archive. ``bench_latency.py`` holds the same three rows on replicated BBC.

Rows: hybrid ungrouped (the API default), the page's call (grouped, 10 documents), the second mix (grouped
+ a date range + an entity filter), grouped + an excluded word, grouped + sort=date.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("PERSONAE_BENCH_CACHE", "/tmp/personae-bench"))
QUERIES = ["peace talks in Riyadh", "storm damage", "who won the football final",
           "gas supply this winter", "ceasefire negotiators", "flooding after heavy rain",
           "oil exports and tariffs", "league title race",
           "Marco Rubio", "Keir Starmer summit", "heatwave in Europe", "transfer news", "power grid failure",
           "drought forecast", "Zelenskyy delegation", "Lavrov on the agreement"]
ENTITIES = ["paris", "riyadh", "moscow", "ukraine", "russia", "europe", "california", "marco-rubio"]


def archive(n: int):  # -> Settings
    from tests.conftest import hash_settings
    from tests.search.newsgen import build, generate

    root = CACHE / f"news-{n}"
    settings = hash_settings(root / "corpus", root / "index")
    try:
        from index import layout

        layout.current_build(settings.index_path)
        return settings
    except Exception:  # noqa: BLE001 - not built yet (or another format): build it
        t0 = time.perf_counter()
        settings = build(generate(n), root)
        print(f"built {n} articles in {time.perf_counter() - t0:.0f} s", flush=True)
        return settings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=33_000)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--no-phrase-guard", action="store_true",
                    help="skip Searcher._protect_exact (its Whoosh phrase query), to see the rest of a call")
    args = ap.parse_args()
    from index.encoder import load_encoder
    from search.searcher import Searcher

    settings = archive(args.articles)
    searcher = Searcher.open(settings)
    searcher._encoder = load_encoder("all-MiniLM-L6-v2")  # real query encoding over the hash-built vectors
    if args.no_phrase_guard:  # component isolation: the guard's phrase query dominates on templated text
        searcher._protect_exact = lambda state, query, fused, legs, restrict: fused  # type: ignore[method-assign]
    m = searcher.manifest
    print(f"{m.counts['paragraphs']} paragraphs, {m.counts['documents']} documents, vector index "
          f"{m.models.get('vector_index')}", flush=True)
    rng = random.Random(15)
    queries = [rng.choice(QUERIES) for _ in range(args.queries)]
    rows = {
        "hybrid, ungrouped (API default)": lambda q, i: {},
        "PAGE: hybrid grouped, 10 documents": lambda q, i: {"group": True},
        "MIX 2: grouped + date range + entity": lambda q, i: {
            "group": True, "entities": [ENTITIES[i % len(ENTITIES)]],
            "date_from": f"{2023 + i % 3}-{1 + i % 12:02d}",
            "date_to": f"{2023 + i % 3}-{min(12, 4 + i % 12):02d}"},
        "grouped + an excluded word": lambda q, i: {"group": True, "q": f"{q} -Russia"},
        "grouped + sort=date": lambda q, i: {"group": True, "sort": "date"},
    }
    for q in QUERIES:  # warm-up: model, caches, masks of the first filters
        searcher.search(q, limit=10, group=True)
    times: dict[str, list[float]] = {k: [] for k in rows}
    for i, q in enumerate(queries):
        for label, kw in rows.items():
            params = {"limit": 10, **kw(q, i)}
            text = params.pop("q", q)
            searcher._qcache.clear()  # every call pays for its query embedding
            t0 = time.perf_counter()
            searcher.search(text, **params)
            times[label].append((time.perf_counter() - t0) * 1000)
    print(f"\n{len(queries)} queries per row; the machine is shared (2 cores, other jobs running)")
    print(f"{'call (ms)':42s}{'p50':>8s}{'p95':>8s}")
    for label, ts in times.items():
        print(f"{label:42s}{np.percentile(ts, 50):8.1f}{np.percentile(ts, 95):8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
