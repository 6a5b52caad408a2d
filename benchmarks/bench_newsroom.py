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
+ a date range + an entity filter), grouped + an entity filter, grouped + a date range, grouped + an
excluded word, grouped + sort=date. Every call pays for its query embedding and its keyword scoring (the
per-thread scoring memo, which a next page of the same query reuses, is cleared before each call).

``--components`` adds the median wall time per component of each row. The query encode and the vector
leg (the ANN search) run in a second thread beside linking and the keyword and entity legs, so the
components do not add up to the call. ``--compare`` runs every call a second time, alternating which
goes first, with the posting arrays off and the exact-phrase guard asking the keyword leg for the
phrase's best matches (the code paths before them), and prints both; the two columns share one process
and the machine's load.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
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


COMPONENTS = {  # (owner, method) -> label; see --components
    ("search.searcher:Searcher", "_link_query"): "link",
    ("search.searcher:Searcher", "embed_query"): "encode",
    ("search.backends.embedded:EmbeddedBackend", "vector"): "vector leg",
    ("search.backends.embedded:EmbeddedBackend", "keyword"): "keyword leg",
    ("search.searcher:Searcher", "_protect_exact"): "phrase guard",
    ("search.searcher:Searcher", "_matched"): "all matches",
    ("search.searcher:_Matched", "documents"): "page order",
    ("search.searcher:Searcher", "_doc_group"): "groups",
    ("search.searcher:_HitRenderer", "group"): "groups",
    ("search.searcher:_HitRenderer", "prefetch"): "store reads",
    ("search.searcher:Searcher", "_facets"): "facets",
}


def _timed(spent: dict[str, float]) -> None:
    """Wrap the ``COMPONENTS`` methods so each call adds its wall time (ms) to ``spent``."""
    import importlib

    for (owner, name), label in COMPONENTS.items():
        module, cls = owner.split(":")
        klass = getattr(importlib.import_module(module), cls)
        inner = getattr(klass, name)

        def wrapper(*a, _inner=inner, _label=label, **kw):
            t0 = time.perf_counter()
            try:
                return _inner(*a, **kw)
            finally:
                spent[_label] += (time.perf_counter() - t0) * 1000

        setattr(klass, name, functools.wraps(inner)(wrapper))


@contextmanager
def _baseline(searcher):  # noqa: ANN001
    """The code paths before the posting arrays: Whoosh decodes postings, the guard searches the phrase."""
    backend = searcher._state.backend
    arrays = backend.keyword_index._arrays
    backend.keyword_index._arrays = None
    backend.matching = lambda query, pids: None
    try:
        yield
    finally:
        backend.keyword_index._arrays = arrays
        del backend.matching


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=33_000)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--components", action="store_true", help="median ms per component of each row")
    ap.add_argument("--compare", action="store_true",
                    help="also time each call with the posting arrays off and the guard searching the phrase")
    ap.add_argument("--no-phrase-guard", action="store_true",
                    help="skip Searcher._protect_exact, to see the rest of a call")
    args = ap.parse_args()
    from index.encoder import load_encoder
    from search.searcher import Searcher

    settings = archive(args.articles)
    spent: dict[str, float] = defaultdict(float)
    if args.components:
        _timed(spent)
    searcher = Searcher.open(settings)
    searcher._encoder = load_encoder("all-MiniLM-L6-v2")  # real query encoding over the hash-built vectors
    if args.no_phrase_guard:  # component isolation
        searcher._protect_exact = lambda state, query, fused, legs, restrict: fused  # type: ignore[method-assign]
    keyword = searcher._state.backend.keyword_index
    m = searcher.manifest
    print(f"{m.counts['paragraphs']} paragraphs, {m.counts['documents']} documents, vector index "
          f"{m.models.get('vector_index')}, posting arrays {'yes' if keyword._arrays else 'no'}", flush=True)
    rng = random.Random(15)
    queries = [rng.choice(QUERIES) for _ in range(args.queries)]

    def dates(i: int) -> dict[str, str]:
        year = 2023 + i % 3
        return {"date_from": f"{year}-{1 + i % 12:02d}", "date_to": f"{year}-{min(12, 4 + i % 12):02d}"}

    rows = {
        "hybrid, ungrouped (API default)": lambda q, i: {},
        "PAGE: hybrid grouped, 10 documents": lambda q, i: {"group": True},
        "MIX 2: grouped + date range + entity": lambda q, i: {
            "group": True, "entities": [ENTITIES[i % len(ENTITIES)]], **dates(i)},
        "grouped + entity filter": lambda q, i: {"group": True, "entities": [ENTITIES[i % len(ENTITIES)]]},
        "grouped + date range": lambda q, i: {"group": True, **dates(i)},
        "grouped + an excluded word": lambda q, i: {"group": True, "q": f"{q} -Russia"},
        "grouped + sort=date": lambda q, i: {"group": True, "sort": "date"},
    }
    for q in QUERIES:  # warm-up: model, caches, masks of the first filters
        searcher.search(q, limit=10, group=True)

    def call(text: str, params: dict) -> float:
        searcher._qcache.clear()  # every call pays for its query embedding
        keyword._local.__dict__.pop("scored", None)  # ... and for its keyword scoring
        t0 = time.perf_counter()
        searcher.search(text, **params)
        return (time.perf_counter() - t0) * 1000

    times: dict[str, list[float]] = {k: [] for k in rows}
    before: dict[str, list[float]] = {k: [] for k in rows}
    parts: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in rows}
    load = [os.getloadavg()[0]]
    for i, q in enumerate(queries):
        for label, kw in rows.items():
            params = {"limit": 10, **kw(q, i)}
            text = params.pop("q", q)
            if args.compare and i % 2:
                with _baseline(searcher):
                    before[label].append(call(text, params))
            spent.clear()
            times[label].append(call(text, params))
            for name, ms in spent.items():
                parts[label][name].append(ms)
            if args.compare and not i % 2:
                with _baseline(searcher):
                    before[label].append(call(text, params))
        load.append(os.getloadavg()[0])
    print(f"\n{len(queries)} queries per row; load average (1 min) {min(load):.1f}-{max(load):.1f} on "
          f"{os.cpu_count()} cores")
    head = f"{'call (ms)':40s}{'p50':>8s}{'p95':>8s}"
    print(head + (f"{'before p50':>12s}{'p95':>8s}" if args.compare else ""))
    for label, ts in times.items():
        line = f"{label:40s}{np.percentile(ts, 50):8.1f}{np.percentile(ts, 95):8.1f}"
        if args.compare:
            line += f"{np.percentile(before[label], 50):12.1f}{np.percentile(before[label], 95):8.1f}"
        print(line)
    if args.components:
        print("\nmedian ms per component (encode + vector leg run beside link, keyword leg and all matches)")
        for label, comp in parts.items():
            print(f"  {label:40s}" + "  ".join(f"{n} {np.median(v + [0.0] * (len(queries) - len(v))):.1f}"
                                               for n, v in comp.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
