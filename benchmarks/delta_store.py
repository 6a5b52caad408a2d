"""Storage deltas (#17): what an incremental build writes of the store, the detector output and the linking
state, the disk two kept builds take against one, and the store reads the pages make, before and after.

Run (from the repository root)::

    .venv/bin/python benchmarks/delta_store.py [--docs 700] [--add 20] [--model hash:384] [--before main]

Takes ``--docs`` + ``--add`` BBC articles drawn at random (seed 1) and kept in corpus order, builds all but
``--add`` of them (a full build), then all of them: incremental (the added articles fall between the others,
so document ordinals shift) and, for comparison, full into another folder. Prints per build the seconds of
the store, detector output and linking state writes and of the checksums, the bytes each wrote, the disk
of the two kept builds against the incremental one alone (each inode counted once, as ``du`` does), and
checks that every store read of the incremental build equals the full build's. Then times the reads the
pages make (document page, entity page, entity list) on the incremental store (layers), the full store (one
layer) and the store as revision ``--before`` wrote it (its ``index/store.py`` loaded from git, fed the
same rows). NER and linking are real; the encoder is ``--model`` (``hash:384`` has MiniLM's vector size,
so the FAISS file is the same size, without the encode).
"""

from __future__ import annotations

import argparse
import importlib.util
import pickle
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_latency import bbc_available, bbc_documents, settings_for, write_jsonl  # noqa: E402

import index.build as build_module  # noqa: E402
from index import layout  # noqa: E402
from index.build import build_index  # noqa: E402
from index.store import StoreReader, open_store, read_documents, read_entities, read_paragraphs  # noqa: E402

MINE = ("store", "mentions", "linking")  # the files this change shares (stems)


def _timed_checksums(spent: list[float], inner: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)
    return run


def _disk(*folders: Path, only: tuple[str, ...] | None = None) -> int:
    """Bytes of the files under ``folders`` (stems in ``only``), every inode counted once."""
    seen: dict[tuple[int, int], int] = {}
    for folder in folders:
        for p in folder.rglob("*"):
            if p.is_file() and (only is None or p.name.split(".")[0].split("-")[0] in only):
                st = p.stat()
                seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return sum(seen.values())


def _written(folder: Path, previous: Path | None) -> dict[str, int]:
    """Bytes of each of this change's files that ``folder`` wrote itself (not a link to ``previous``)."""
    old = {(p.stat().st_dev, p.stat().st_ino) for p in previous.iterdir()} if previous else set()
    out: dict[str, int] = {}
    for p in folder.iterdir():
        stem = p.name.split(".")[0].split("-")[0]
        if p.is_file() and stem in MINE and (p.stat().st_dev, p.stat().st_ino) not in old:
            out[stem] = out.get(stem, 0) + p.stat().st_size
    return out


def _rows_in(path: Path) -> str:
    """How many documents (texts, for mentions) a layer file holds."""
    if path.name.startswith("store-"):
        con = sqlite3.connect(path)
        try:
            return f", {con.execute('SELECT count(*) FROM documents').fetchone()[0]} documents"
        finally:
            con.close()
    if path.name.startswith("linking-"):
        with path.open("rb") as fh:
            return f", {len(pickle.load(fh))} documents"  # noqa: S301 (our own build)
    if path.name.startswith("mentions-"):
        return f", {sum(1 for _ in path.open(encoding='utf-8'))} texts"
    return ""


def _why_rewritten(first: Path, second: Path) -> None:
    """Why documents the two builds share differ in their stored rows (so are written again)."""
    before: dict[str, list[dict[str, Any]]] = {}
    for p in read_paragraphs(first):
        before.setdefault(p["doc_id"], []).append(p)
    after: dict[str, list[dict[str, Any]]] = {}
    for p in read_paragraphs(second):
        after.setdefault(p["doc_id"], []).append(p)
    why: dict[str, int] = {}
    for doc, rows in after.items():
        old = before.get(doc)
        if old is None or old == rows:
            continue
        ids = [[x["entity_id"] for x in r["links"]] for r in rows]
        old_ids = [[x["entity_id"] for x in r["links"]] for r in old]
        strip = [[{k: v for k, v in x.items() if k != "entity_id"} for x in r["links"]] for r in rows]
        old_strip = [[{k: v for k, v in x.items() if k != "entity_id"} for x in r["links"]] for r in old]
        if ids != old_ids and strip == old_strip:
            key = "links renamed (same spans, other entity ids)"
        elif [r["links"] for r in rows] != [r["links"] for r in old]:
            key = "links added, dropped or moved"
        else:
            key = "quotes only"
        why[key] = why.get(key, 0) + 1
    added = len(set(after) - set(before))
    print(f"documents whose rows changed: {added} added, " + ", ".join(f"{n} {k}" for k, n in why.items()))


def _reads(store: StoreReader) -> tuple:
    ids, _ = store.document_list()
    pids = store.paragraph_ids()
    ents = sorted(store.entity_table())
    return (store.counts(), store.document_list(), list(store.iter_documents()),
            list(store.iter_paragraphs()), store.entity_table(), store.paragraphs(pids),
            store.paragraph_docs(pids),
            store.entity_counts(pids[::7]), [store.doc_paragraphs(i) for i in ids],
            [(store.entity_mentions(e, 20), store.co_mentioned(e, 10), store.quoted(e)) for e in ents],
            store.find_entities(type=None, q=None, limit=50, offset=0),
            store.find_entities(type="person", q="an", limit=50, offset=10))


def _page_calls(store: Any, doc_ids: list[str], entity_ids: list[str]) -> dict[str, float]:
    """Median ms of the store reads of one document page, one entity page and one entity-list page."""
    def median(fn: Callable[[], Any], keys: list[Any]) -> float:
        times = []
        for k in keys:
            t = time.perf_counter()
            fn(k)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    return {
        "document page": median(lambda d: (store.document(d), store.doc_paragraphs(d)), doc_ids),
        "entity page": median(lambda e: (store.entity(e), store.entity_mentions(e, 20),
                                         store.co_mentioned(e, 10), store.quoted(e)), entity_ids),
        "entity list": median(lambda q: store.find_entities(type=None, q=q, limit=50, offset=0),
                              ["", "a", "lo", "par", "bank"] * 4),
        "hits (20 heads + paragraphs)": median(
            lambda ps: (store.paragraphs(ps), store.paragraph_docs(ps),
                        store.doc_heads(p.split("#")[0] for p in ps)),
            [store.paragraph_ids()[i::97][:20] for i in range(20)]),
    }


def _old_store(rev: str, folder: Path, tmp: Path) -> Any:
    """The store of ``folder`` as revision ``rev``'s ``index/store.py`` writes and reads it."""
    source = subprocess.run(["git", "show", f"{rev}:index/store.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = tmp / "old_store.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_store", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    out = tmp / "old"
    out.mkdir()
    module.write_store(out / "store.sqlite", read_documents(folder), read_paragraphs(folder),
                       read_entities(folder))
    return module.StoreReader.open(out / "store.sqlite")


def _write_corpus(folder: Path, docs: list[tuple[int, dict[str, str]]]) -> None:
    """One JSONL file per article, named by its place in the BBC set: a document's path (a field of its
    record) does not change when others are added, as in a folder a newsroom drops files into."""
    for old in folder.glob("*.jsonl"):
        old.unlink()
    for i, doc in docs:
        write_jsonl([doc], folder / f"{i:05d}.jsonl")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=700)
    ap.add_argument("--add", type=int, default=20)
    ap.add_argument("--model", default="hash:384")
    ap.add_argument("--before", default="main", help="git revision whose store format is 'before'")
    args = ap.parse_args(argv)
    if not bbc_available():
        print("BBC corpus not found (../shared/data/bbc-news); skipping")
        return 0
    rng = random.Random(1)
    everything = bbc_documents()
    chosen = sorted(rng.sample(range(len(everything)), args.docs + args.add))
    added = set(rng.sample(chosen, args.add))
    docs = [(i, everything[i]) for i in chosen]
    base = [(i, everything[i]) for i in chosen if i not in added]
    with tempfile.TemporaryDirectory(prefix="delta-store-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus"
        inc = settings_for(tmp / "inc", corpus, model=args.model)
        full = settings_for(tmp / "full", corpus, model=args.model)
        rows = []
        checksums = build_module._checksums
        for label, settings, data, incremental in (
            (f"first build, {len(base)} articles", inc, base, True),
            (f"incremental, +{args.add}", inc, docs, True),
            (f"full, {len(docs)} articles", full, docs, False),
        ):
            _write_corpus(corpus, data)
            before = layout.current_build(settings.index_path) if settings.index_path.exists() else None
            spent: list[float] = []
            build_module._checksums = _timed_checksums(spent, checksums)
            try:
                report = build_index(settings, incremental=incremental)
            finally:
                build_module._checksums = checksums
            written = _written(report.folder, before if incremental else None)
            t = report.timings
            rows.append((label, report.seconds, t.get("store", 0), t.get("mentions", 0),
                         t.get("linking_state", 0), spent[0], written, report))
        print(f"{len(docs)} BBC articles (+{args.add} at random places in corpus order), "
              f"model {args.model}\n")
        print(f"{'build':28} {'total s':>8} {'store s':>8} {'mentions s':>10} {'state s':>8} "
              f"{'checksums s':>11}  bytes written (store / mentions / linking)")
        for label, total, st, me, ls, cs, written, _ in rows:
            print(f"{label:28} {total:8.1f} {st:8.2f} {me:10.3f} {ls:8.3f} {cs:11.3f}  "
                  + " / ".join(f"{written.get(k, 0):,}" for k in MINE))
        first, second, whole = rows[0][7].folder, rows[1][7].folder, rows[2][7].folder
        print("\nthe incremental build's files of the store, detector output and linking state:")
        shared = {(p.stat().st_dev, p.stat().st_ino) for p in first.iterdir()}
        for p in sorted(second.iterdir()):
            if p.is_file() and p.name.split(".")[0].split("-")[0] in MINE:
                how = "shared" if (p.stat().st_dev, p.stat().st_ino) in shared else "written"
                print(f"  {p.name:24} {p.stat().st_size:>12,}  {how}{_rows_in(p)}")
        _why_rewritten(first, second)
        one, two = _disk(second), _disk(first, second)
        one_mine, two_mine = _disk(second, only=MINE), _disk(first, second, only=MINE)
        print(f"\ndisk, two kept builds / the incremental one alone: all files {two:,} / {one:,} = "
              f"{two / one:.2f}x; store + mentions + linking state {two_mine:,} / {one_mine:,} = "
              f"{two_mine / one_mine:.2f}x")
        print(f"full build of the same corpus: {_disk(whole):,} bytes ({_disk(whole, only=MINE):,} of them "
              "store + mentions + linking state)")
        a, b = open_store(second), open_store(whole)
        same = _reads(a) == _reads(b)
        print(f"every store read of the incremental build equals the full build's: {same}")
        ids, _ = b.document_list()
        sample_docs = random.Random(2).sample(ids, 40)
        ents = sorted(b.entity_table().items(), key=lambda kv: -kv[1]["mentions"])
        sample_ents = [e for e, _ in ents[:20]] + [e for e, _ in random.Random(3).sample(ents, 20)]
        old = _old_store(args.before, whole, tmp)
        stores = [(f"before ({args.before}, one file)", old), ("full build (one layer)", b),
                  (f"incremental ({len(a.layers)} layers)", a)]
        for _ in range(2):  # warm the page cache and the statement caches
            for _, s in stores:
                _page_calls(s, sample_docs[:5], sample_ents[:5])
        timings = [(name, _page_calls(s, sample_docs, sample_ents)) for name, s in stores]
        print("\nstore reads, median ms over 40 documents / 40 entities (20 most mentioned, 20 at random)")
        calls = list(timings[0][1])
        print(f"{'store':30} " + " ".join(f"{c:>14}" for c in calls))
        for name, t in timings:
            print(f"{name:30} " + " ".join(f"{t[c]:14.3f}" for c in calls))
        for _, s in stores:
            s.close()
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
