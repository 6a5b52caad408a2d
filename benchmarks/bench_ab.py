"""The page's calls timed against an earlier revision of the query side, in one process, call by call:

    python benchmarks/bench_ab.py --base REV [--corpus scale|news] [--queries N]

On a shared machine absolute latencies move with the neighbours' load (two cores, four engineers); a
comparison is only fair when both sides see the same load. Here ``search/searcher.py``,
``search/snippets.py`` and ``index/encoder.py`` of ``REV`` (``git show``) are loaded as separate modules
beside the working tree's, each side opens its own searcher (and query encoder) on the same build, and
every call runs on both sides back to back, alternating which goes first. It prints p50/p95 per side and
the median of the per-call differences, and counts the calls whose JSON differs (``took_ms`` aside):
both sides should answer alike.

``--cpu`` also splits each call's CPU time (``time.thread_time``, which other processes' load moves far
less than wall time): the query's thread before it waits for the vector leg, the vector leg's thread
(encode + ANN), and the query's thread after. ``max(before, vector leg) + after`` is what a call would take
on two idle cores if threads never waited for each other (the GIL): a floor, not a forecast.

``--corpus scale``: the scale corpus of ``bench_latency.py --corpus scale`` (its cached 100k build, under
``PERSONAE_SCALE_CACHE``); the page's call per query, then its entity facet clicked or its date range.
``--corpus news``: the generated archive of ``bench_newsroom.py`` (its cached build, under
``PERSONAE_BENCH_CACHE``), real MiniLM query encoding; the page's call, date + entity, entity, date range.
Every call pays for its query encode and its keyword scoring. Other modules (backends, the keyword
index) are the working tree's on both sides, so this compares changes to those three files.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SIDE_FILES = {"searcher": "search/searcher.py", "snippets": "search/snippets.py",
              "encoder": "index/encoder.py"}


def load_base(rev: str, folder: Path) -> dict[str, ModuleType]:
    """The three query-side modules as they are at ``rev``, imported under private names."""
    mods: dict[str, ModuleType] = {}
    for key in ("snippets", "encoder", "searcher"):
        src = subprocess.check_output(["git", "-C", str(ROOT), "show", f"{rev}:{SIDE_FILES[key]}"], text=True)
        name = f"_base_{key}"
        path = folder / f"{name}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mods[key] = importlib.util.module_from_spec(spec)
        sys.modules[name] = mods[key]
        spec.loader.exec_module(mods[key])
    searcher = mods["searcher"]
    searcher.highlight, searcher.query_stems = mods["snippets"].highlight, mods["snippets"].query_stems
    return mods


def scale_queries(n: int) -> tuple[Any, list[dict[str, Any]], str]:
    """Settings of the cached 100k scale build, its first ``n`` held-out queries, and where it is."""
    import scale_corpus

    from index.jsonl import read_jsonl
    from index.settings import Settings

    index_dir = min(scale_corpus.CACHE.glob("index-100000*"))
    queries = list(read_jsonl(scale_corpus.CACHE / "queries.jsonl"))[:n]
    return Settings.load(env={}, index_dir=str(index_dir)), queries, str(index_dir)


def news_calls(n: int) -> list[tuple[str, str, dict[str, Any]]]:
    import bench_newsroom as bn

    rng = random.Random(15)
    calls = []
    for i in range(n):
        q = rng.choice(bn.QUERIES)
        year = 2023 + i % 3
        dates = {"date_from": f"{year}-{1 + i % 12:02d}", "date_to": f"{year}-{min(12, 4 + i % 12):02d}"}
        ent = {"entities": [bn.ENTITIES[i % len(bn.ENTITIES)]]}
        calls += [("page's call", q, {}), ("date + entity", q, {**ent, **dates}),
                  ("entity filter", q, ent), ("date range", q, dates)]
    return calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="git revision of the other side (e.g. main, HEAD~3)")
    ap.add_argument("--corpus", choices=["scale", "news"], default="scale")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--cpu", action="store_true", help="per-thread CPU split of each call (see above)")
    args = ap.parse_args()
    from index.encoder import load_encoder
    from search.searcher import Searcher

    with tempfile.TemporaryDirectory() as tmp:
        base = load_base(args.base, Path(tmp))
        if args.corpus == "scale":
            settings, queries, where = scale_queries(args.queries)
        else:
            import bench_newsroom as bn

            settings, where = bn.archive(33_000), "bench_newsroom archive"
        base_name = f"base {args.base}"
        sides = {"this tree": Searcher.open(settings), base_name: base["searcher"].Searcher.open(settings)}
        model = sides["this tree"].manifest.models.get("encoder") or settings.model
        if args.corpus == "news":
            model = "all-MiniLM-L6-v2"  # real query encoding over the hash-built vectors (bench_newsroom)
        sides["this tree"]._encoder = load_encoder(model)
        sides[base_name]._encoder = base["encoder"].load_encoder(model)
        for searcher in sides.values():
            searcher.warm()
        cpu: dict[str, list[tuple[float, float, float]]] = {name: [] for name in sides}
        split = _CpuSplit(sides) if args.cpu else None
        times: dict[str, dict[str, list[float]]] = {name: {} for name in sides}
        differ = beyond = calls = 0
        load = [os.getloadavg()[0]]

        def both(row: str, text: str, params: dict[str, Any], first: int) -> dict[str, Any]:
            nonlocal differ, beyond, calls
            names = list(sides)
            order = names if first % 2 == 0 else names[::-1]
            out: dict[str, dict[str, Any]] = {}
            for name in order:
                searcher = sides[name]
                searcher._qcache.clear()  # every call pays its query encode ...
                searcher._state.backend.keyword_index._local.__dict__.pop("scored", None)  # ... and scoring
                if split is not None:
                    split.start()
                t0 = time.perf_counter()
                out[name] = searcher.search(text, limit=10, group=True, **params)
                ms = (time.perf_counter() - t0) * 1000
                if split is not None:
                    cpu[name].append(split.stop())
                out[name].pop("took_ms", None)
                for r in ("all calls", row):
                    times[name].setdefault(r, []).append(ms)
            calls += 1
            differ += out[names[0]] != out[names[1]]
            beyond += _rounded(out[names[0]]) != _rounded(out[names[1]])
            return out[names[0]]

        print(f"{where}; warming up", flush=True)
        if args.corpus == "scale":
            for i, q in enumerate(queries):
                page = both("page's call", q["text"], {}, i)
                flt = q.get("filter") or {}
                if "entity" in flt:
                    facets = page["facets"]
                    facet = next((f["id"] for t in ("person", "org") for f in facets.get(t, [])), None)
                    if facet:
                        both("entity facet clicked", q["text"], {"entities": [facet]}, i + 1)
                elif "date" in flt:
                    dates = {"date_from": flt["date"][0], "date_to": flt["date"][1]}
                    both("date range", q["text"], dates, i + 1)
                load.append(os.getloadavg()[0])
        else:
            for i, (row, text, params) in enumerate(news_calls(args.queries)):
                both(row, text, params, i)
                load.append(os.getloadavg()[0])
        _report(times, differ, calls, load, beyond)
        if split is not None:
            _report_cpu(cpu)
    return 0


class _CpuSplit:
    """Per call: CPU ms of the query's thread before it waits for the vector leg, of the vector leg's
    thread, and of the query's thread after (wraps each side's ``_vector_leg`` and ``Future.result``)."""

    def __init__(self, sides: dict[str, Any]):
        from concurrent.futures import Future

        self.marks: dict[str, float] = {}
        for searcher in sides.values():
            searcher._vector_leg = self._leg(searcher._vector_leg)
        result = Future.result

        def timed_result(future: Any, timeout: float | None = None) -> Any:
            self.marks["wait"] = time.thread_time()
            try:
                return result(future, timeout)
            finally:
                self.marks["resume"] = time.thread_time()

        Future.result = timed_result  # type: ignore[method-assign]

    def _leg(self, inner: Any) -> Any:
        def leg(*a: Any, **kw: Any) -> Any:
            t0 = time.thread_time()
            try:
                return inner(*a, **kw)
            finally:
                self.marks["vector"] = time.thread_time() - t0

        return leg

    def start(self) -> None:
        self.marks = {"start": time.thread_time()}

    def stop(self) -> tuple[float, float, float]:
        end, m = time.thread_time(), self.marks
        wait, resume = m.get("wait", end), m.get("resume", end)
        return ((wait - m["start"]) * 1000, m.get("vector", 0.0) * 1000, (end - resume) * 1000)


def _report_cpu(cpu: dict[str, list[tuple[float, float, float]]]) -> None:
    print("\nCPU ms per call, medians: query thread before the vector leg / vector leg / query thread after;"
          " floor = max(before, vector) + after, p50 / p95")
    for name, rows in cpu.items():
        a = np.array(rows)
        floor = np.maximum(a[:, 0], a[:, 1]) + a[:, 2]
        before, vector, after = np.median(a, axis=0)
        print(f"  {name:18s} {before:5.1f} / {vector:5.1f} / {after:5.1f}"
              f"   floor {np.percentile(floor, 50):5.1f} / {np.percentile(floor, 95):5.1f}")


def _rounded(value: Any, places: int = 4) -> Any:
    """A result with every float rounded: what differs beyond that is more than float rounding."""
    if isinstance(value, float):
        return round(value, places)
    if isinstance(value, dict):
        return {k: _rounded(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, places) for v in value]
    return value


def _report(times: dict[str, dict[str, list[float]]], differ: int, calls: int, load: list[float],
            beyond: int) -> None:
    def pct(values: list[float], q: int) -> float:
        return float(np.percentile(values, q))

    (a_name, a), (b_name, b) = times.items()
    print(f"\n{calls} calls on each side, {differ} with different results ({beyond} beyond float rounding: "
          f"floats to 4 places); load average (1 min) "
          f"{min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print(f"{'grouped search() (ms)':24s}{'n':>5s}  {a_name[:18]:>18s} p50/p95  {b_name[:18]:>18s} p50/p95"
          f"  median difference")
    for row in a:
        x, y = np.array(a[row]), np.array(b[row])
        print(f"{row:24s}{len(x):5d}  {pct(a[row], 50):14.1f} / {pct(a[row], 95):5.1f}"
              f"  {pct(b[row], 50):14.1f} / {pct(b[row], 95):5.1f}  {np.median(x - y):+8.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
