"""A milvus-backed server that holds no corpus against the earlier milvus path (records read from the
build folder's store.sqlite, legs from Milvus): export time, open time and the page calls' latency.

    .venv/bin/python benchmarks/milvus_server.py --index-dir /tmp/bbc-index [--calls 40]

Exports the index folder's live build to a fresh milvus-lite file, then opens two searchers in this process:
``local store`` (``_load_state`` on the build folder with backend=milvus: what a milvus server did before)
and ``milvus only`` (``Searcher.open`` with an index folder that does not exist). Calls alternate between
the two so load on the machine hits both alike. Queries are entity names (not copies of indexed text),
through the grouped call the search page makes; the document page, the entity page and the entity list
are the web pages' calls. Prints p50/p95 ms per call and whether both answered the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index import layout  # noqa: E402
from index.settings import Settings  # noqa: E402


def _ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-dir", required=True, help="an index folder (its CURRENT build is exported)")
    ap.add_argument("--work", default=os.environ.get("PERSONAE_BENCH_CACHE", "/tmp/personae-bench"))
    ap.add_argument("--calls", type=int, default=40, help="calls of each kind")
    args = ap.parse_args()

    from search.backends.milvus import write
    from search.searcher import Searcher, _load_state

    folder = layout.current_build(Path(args.index_dir))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    uri = work / "milvus-server.db"
    if uri.exists():
        uri.unlink()
    secs, info = _ms(lambda: write(folder, str(uri)))
    counts = layout.read_manifest(folder).counts
    print(f"build {folder.name}: {counts.get('documents')} documents, {counts.get('paragraphs')} paragraphs, "
          f"{counts.get('entities')} entities")
    print(f"export: {info['rows']} paragraph rows + {info['records']} record rows in {secs / 1000:.1f} s; "
          f"milvus-lite file {uri.stat().st_size / 2**20:.0f} MiB")

    settings = Settings.load(env={}, index_dir=str(args.index_dir), backend="milvus", milvus_uri=str(uri))
    nowhere = Path(tempfile.mkdtemp()) / "no-index"
    t_local, local = _ms(lambda: Searcher(settings, _load_state(folder, settings)))
    t_remote, remote = _ms(lambda: Searcher.open(settings.replace(index_dir=str(nowhere))))
    print(f"open: local store {t_local:.0f} ms, milvus only {t_remote:.0f} ms")
    remote._encoder = local.encoder()  # one model in memory: the encoder is not what is compared

    top = local._state.store.find_entities(type=None, q=None, limit=args.calls, offset=0)[1]
    names = [e["name"] for e in top]
    doc_ids = local._state.doc_ids
    docs = [doc_ids[i * len(doc_ids) // args.calls] for i in range(args.calls)]
    calls: dict[str, list[Callable[[Searcher], Any]]] = {
        "search (grouped, hybrid)": [lambda s, q=q: s.search(q, group=True) for q in names],
        "document page": [lambda s, d=d: s.document(d) for d in docs],
        "entity page": [lambda s, e=e["id"]: s.entity(e) for e in top],
        "entity list (name filter)": [lambda s, q=n[:4]: s.entities(q=q) for n in names],
        "entity list (type, page 5)": [lambda s, t=t: s.entities(type=t, offset=400)
                                       for t in ("person", "org", "place", "other") * (args.calls // 4)],
    }
    for fns in calls.values():  # warm: linker, encoder, first connections
        for s in (local, remote):
            fns[0](s)
    print(f"\n{'call':28} {'local store p50':>16} {'p95':>8} {'milvus only p50':>16} {'p95':>8}  "
          "same answers")
    for name, fns in calls.items():
        times: dict[str, list[float]] = {"local": [], "remote": []}
        same = 0
        for fn in fns:
            a_ms, a = _ms(lambda fn=fn: fn(local))
            b_ms, b = _ms(lambda fn=fn: fn(remote))
            times["local"].append(a_ms)
            times["remote"].append(b_ms)
            if isinstance(a, dict) and "took_ms" in a:
                a, b = dict(a, took_ms=0), dict(b, took_ms=0)
            same += a == b
        lo, re_ = times["local"], times["remote"]
        print(f"{name:28} {statistics.median(lo):16.1f} {_pct(lo, 0.95):8.1f} {statistics.median(re_):16.1f} "
              f"{_pct(re_, 0.95):8.1f}  {same}/{len(fns)}")
    shutil.rmtree(nowhere.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
