"""Every serving figure of #17's "Done when" in one command, through the real server on a scale build.

    PERSONAE_SCALE_CACHE=/tmp/scale1m .venv/bin/python benchmarks/scale_serve.py \\
        --index-dir /tmp/scale1m/index-1000000 [--queries 200] [--source CHECKOUT --label old] [--no-recall]

It starts ``personae serve --workers 2`` (``serve_memory.serving``, from ``--source``: another checkout
serves a build its own code made) on a build of the scale corpus (``scale_corpus.py --build``), then:

* start-up: process start to the first answered search (a held-out query, grouped like the page);
* the first search after start-up, the slowest of the next ``2 × workers`` (each worker's first), and
  the median of the rest: a worker that was not warmed before taking traffic shows in the first two;
* the held-out queries (``queries.jsonl`` of the scale cache: headlines and names no document contains),
  each as the page's call (``/api/search?q=…&group=true&limit=10``); a query with an entity filter then
  clicks the top person/organisation facet of its own result (the page's second call), one with a date
  filter asks its ``from``/``to`` range: p50/p95 of the page's calls, of the filtered calls, and of all;
* memory: PSS summed over the server's processes (``/proc/PID/smaps_rollup``), once after start-up and
  once after the queries, split into anonymous and file-backed pages;
* after the server has stopped, recall@10 of the build's vector index (HNSW above the threshold)
  against exact search over every stored vector, for the same queries (this checkout's code).

The load average is printed at the start and the end: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_memory import ROOT, _get, _pss, _search_path, _tree, serving  # noqa: E402


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _facet(result: dict[str, Any]) -> str | None:
    """The top person, else organisation, facet of a search answer: the entity a reader clicks."""
    facets = result.get("facets") or {}
    return next((f["id"] for t in ("person", "org") for f in facets.get(t, [])), None)


def run_queries(port: int, queries: list[dict[str, Any]]) -> tuple[dict[str, list[float]], int]:
    """The page's call for every query, and its filtered second call where the query has a filter.
    Returns the times per row and the number of calls not answered 200 (left out of the times)."""
    times: dict[str, list[float]] = {"page": [], "filtered": [], "entity": [], "date": []}
    failed = 0
    for q in queries:
        status, ms, page = _get(port, _search_path(q["text"]))
        if status != 200:
            failed += 1
            continue
        times["page"].append(ms)
        flt = q.get("filter") or {}
        params: dict[str, str] = {}
        if "entity" in flt:
            facet = _facet(page)
            if facet is None:
                continue
            params, row = {"entity": facet}, "entity"
        elif "date" in flt:
            params, row = {"from": flt["date"][0], "to": flt["date"][1]}, "date"
        else:
            continue
        status, ms, _ = _get(port, _search_path(q["text"], **params))
        if status != 200:
            failed += 1
            continue
        times[row].append(ms)
        times["filtered"].append(ms)
    return times, failed


def measure(index_dir: Path, source: Path, queries: list[dict[str, Any]], workers: int,
            timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {"load_start": _load(), "workers": workers}
    with serving(index_dir, source, workers, timeout, first_query=queries[0]["text"]) as server:
        out["startup_s"], out["first_ms"] = server.startup_s, server.first_ms
        out["pss_start"] = _pss(_tree(server.proc.pid))
        times, out["failed"] = run_queries(server.port, queries)
        pids = _tree(server.proc.pid)
        out["processes"], out["pss_end"] = len(pids), _pss(pids)
        # the first query once more, now that everything ran: what it costs warm (its vector is cached)
        out["first_again_ms"] = _get(server.port, _search_path(queries[0]["text"]))[1]
    page = times["page"]
    out["next_first_max_ms"] = max(page[: 2 * workers]) if page else float("nan")
    out["rest_p50_ms"] = statistics.median(page[2 * workers:]) if len(page) > 2 * workers else float("nan")
    out["times"] = times
    out["load_end"] = _load()
    return out


def recall(index_dir: Path, queries: list[dict[str, Any]]) -> tuple[float, str] | None:
    """Recall@10 of the build's vector index against exact search; None (said) when this checkout cannot
    read the build (an older format, served by an older ``--source``)."""
    from bench_latency import hnsw_recall

    from index.errors import PersonaeError

    try:
        return hnsw_recall(index_dir, queries)
    except PersonaeError as err:
        print(f"  recall not measured: {err}")
        return None


def report(label: str, index_dir: Path, r: dict[str, Any]) -> None:
    from index import layout

    try:  # the manifest's JSON as it is: an older format's counts read the same
        folder = index_dir / (index_dir / layout.POINTER).read_text(encoding="utf-8").strip()
        counts = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["counts"]
        size = f"{counts['paragraphs']:,} paragraphs, {counts['documents']:,} documents"
    except (OSError, ValueError, KeyError) as err:
        size = f"(no manifest read: {err})"
    print(f"\n{label}: {index_dir} — {size}; load {r['load_start']} at the start, {r['load_end']} at the end")
    again = r.get("first_again_ms", float("nan"))
    print(f"  start-up {r['startup_s']:.1f} s; first search {r['first_ms']:.0f} ms (the same query again at "
          f"the end, its vector cached: {again:.0f} ms), next {2 * r['workers']} max "
          f"{r['next_first_max_ms']:.0f} ms, the rest p50 {r['rest_p50_ms']:.0f} ms")
    for key in ("pss_start", "pss_end"):
        m = r[key]
        print(f"  PSS {'after start-up' if key == 'pss_start' else 'after the queries'}: {m['Pss']:,.0f} MiB "
              f"(anon {m['Pss_Anon']:,.0f}, file {m['Pss_File']:,.0f}; RSS sum {m['Rss']:,.0f}) over "
              f"{r['processes']} processes")
    t = r["times"]
    rows = [("page's call (grouped hybrid, no filter)", t["page"]), ("filtered: entity facet or date range",
            t["filtered"]), ("  entity facet clicked", t["entity"]), ("  date range", t["date"]),
            ("all calls", t["page"] + t["filtered"])]
    print(f"  {'calls through HTTP (ms)':42s} {'n':>5s} {'p50':>7s} {'p95':>7s}")
    for name, v in rows:
        print(f"  {name:42s} {len(v):5d} {_pct(v, 50):7.1f} {_pct(v, 95):7.1f}")
    if r["failed"]:
        print(f"  {r['failed']} calls not answered 200 (left out)")


def main(argv: list[str] | None = None) -> int:
    import scale_corpus

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, required=True, help="an index folder with a scale-corpus build")
    ap.add_argument("--source", type=Path, default=ROOT, help="Personae checkout that serves [this one]")
    ap.add_argument("--label", default="", help="row label [the source folder's name]")
    ap.add_argument("--queries", type=int, default=200, help="held-out queries [200]")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the first answer")
    ap.add_argument("--no-recall", action="store_true", help="skip recall@10 of the vector index")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args(argv)
    qpath = scale_corpus.CACHE / "queries.jsonl"
    if not qpath.is_file():
        print(f"skip: no held-out queries at {qpath} (run scale_corpus.py first)")
        return 0
    queries = [json.loads(line) for line in qpath.read_text(encoding="utf-8").splitlines()][:args.queries]
    index_dir = args.index_dir.resolve()
    t0 = time.perf_counter()
    r = measure(index_dir, args.source.resolve(), queries, args.workers, args.timeout)
    report(args.label or args.source.resolve().name, index_dir, r)
    rec = None if args.no_recall else recall(index_dir, queries)
    if rec is not None:
        print(f"  vector leg recall@10 vs exact search ({rec[1]}): {rec[0]:.4f}")
    print(f"  ({time.perf_counter() - t0:.0f} s in all)")
    if args.json:
        args.json.write_text(json.dumps({**r, "recall": rec}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
