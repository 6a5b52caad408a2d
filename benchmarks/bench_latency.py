"""Query latency p50/p95 for keyword, vector, entity and hybrid at 10k and 100k BBC paragraphs.

Run::

    .venv/bin/python benchmarks/bench_latency.py [--sizes 10000,100000] [--queries 200]

Prints one table: per component (each leg, ``search()`` overheads ``_total`` / ``_protect_exact``,
whole ``search()`` calls) the p50 and p95 in ms at each size. Skips with a message when the BBC corpus
(``../shared/data/bbc-news/bbc`` from the repository root, or ``PERSONAE_BBC``) is absent. Also holds
the BBC helpers that ``bench_build.py`` uses.

Everything expensive is cached under ``/tmp/personae-bench`` (``PERSONAE_BENCH_CACHE``):

* ``bbc-corpus.jsonl``: the 2,225 BBC articles as the JSONL the indexer reads (README.TXT left out);
* ``bbc-vectors-<digest>.npy``: MiniLM vectors of the BBC paragraphs, keyed by model and exact texts;
* ``bbc-base/``: a real ``build_index`` of the BBC corpus (NER + linking + MiniLM), whose mentions are
  reused by the replicated builds;
* ``bbc-<N>/``: a real ``build_index`` of the corpus replicated to ``N`` paragraphs. Copies reuse the
  base build's mentions (same texts) and get the base vectors plus small Gaussian noise instead of being
  re-encoded (``NoisyEncoder``): the index, the searcher and every query path are the real ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index import jsonl, layout  # noqa: E402
from index.build import _text_key, build_index  # noqa: E402
from index.documents import read_corpus  # noqa: E402
from index.errors import PersonaeError  # noqa: E402
from index.jsonl import read_jsonl  # noqa: E402
from index.settings import Settings  # noqa: E402
from index.store import read_documents, read_paragraphs  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"  # ../shared from the repository root
BBC = Path(os.environ.get("PERSONAE_BBC", SHARED / "data" / "bbc-news" / "bbc"))
CACHE = Path(os.environ.get("PERSONAE_BENCH_CACHE", "/tmp/personae-bench"))
NOISE = 0.01  # per-dimension sd of the noise added to a copy's vector (vectors are re-normalised)


def bbc_available() -> bool:
    return BBC.is_dir() and any(BBC.glob("*/*.txt"))


def synthetic_date(doc_id: str) -> str:
    """A made-up publication day in 2004-2005 (the BBC set's years; the files carry no date), fixed by
    the id, so date-range queries have something to filter."""
    from datetime import date, timedelta

    days = int(hashlib.sha1(doc_id.encode()).hexdigest()[:8], 16) % 731
    return (date(2004, 1, 1) + timedelta(days)).isoformat()


def bbc_documents() -> list[dict[str, str]]:
    """BBC articles through the real reader (line 1 headline; Latin-1 files decoded with a warning),
    each with a ``synthetic_date``."""
    corpus = read_corpus(BBC, exclude=[BBC / "README.TXT"])
    return [{"id": d.id, "title": d.title, "text": d.text, "date": synthetic_date(d.id)}
            for d in corpus.documents]


def write_jsonl(docs: Sequence[dict[str, str]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonl.write_jsonl(path, docs)
    return path


class CachedEncoder:
    """The real encoder, with vectors for an exact list of texts cached on disk (one ``.npy`` per list)."""

    def __init__(self, encoder: Any, label: str = "bbc-vectors"):
        self.encoder = encoder
        self.model_id = encoder.model_id
        self.dim = encoder.dim
        self.label = label
        self.seconds = 0.0
        self.hit = False

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        digest = hashlib.sha256(self.model_id.encode())
        for t in texts:
            digest.update(t.encode("utf-8", "surrogatepass") + b"\0")
        path = CACHE / f"{self.label}-{digest.hexdigest()[:16]}.npy"
        if path.is_file():
            self.hit = True
            return np.load(path)
        t0 = time.perf_counter()
        vecs = self.encoder.encode(list(texts), batch_size=batch_size, show_progress=show_progress)
        self.seconds = time.perf_counter() - t0
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(path, vecs)
        return vecs


class NoisyEncoder:
    """Answers from the base build's vectors (by exact text); a text seen again gets a noisy copy."""

    def __init__(self, base: dict[str, np.ndarray], model_id: str, seed: int = 0):
        self.base = base
        # A path to the same model: the snapshot differs from the base build's (so nothing is reused and
        # every copy comes through here), yet the searcher loads the real MiniLM from the manifest.
        from index.encoder import resolve_model_path

        self.model_id = str(resolve_model_path(model_id))
        self.dim = len(next(iter(base.values())))
        self.rng = np.random.default_rng(seed)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        seen: set[str] = set()
        for i, t in enumerate(texts):
            key = _text_key(t)
            v = self.base[key]
            if key in seen:
                v = v + self.rng.normal(0.0, NOISE, self.dim).astype(np.float32)
                v /= np.linalg.norm(v)
            seen.add(key)
            out[i] = v
        return out


def settings_for(index_dir: Path, corpus: Path, **kw: Any) -> Settings:
    root = Path(__file__).resolve().parent.parent
    return Settings.load(env={}, index_dir=str(index_dir), corpus=str(corpus),
                         entities_file=str(root / "seeds" / "entities.jsonl"), **kw)


def base_build(say: Any = print) -> Path:
    """The real BBC build (cached). Returns its index_dir."""
    index_dir = CACHE / "bbc-base"
    corpus = CACHE / "bbc-corpus.jsonl"
    try:
        layout.current_build(index_dir)
        return index_dir
    except PersonaeError:
        pass
    write_jsonl(bbc_documents(), corpus)
    from index.encoder import load_encoder

    settings = settings_for(index_dir, corpus)
    enc = CachedEncoder(load_encoder(settings.model))
    say(f"building the BBC base index in {index_dir} (NER + linking + MiniLM; cached afterwards)")
    report = build_index(settings, encoder=enc, progress=False)
    say(f"  {report.summary()}")
    return index_dir


def base_vectors(index_dir: Path) -> dict[str, np.ndarray]:
    """Text key → vector of the base build (title composed as the build embeds it)."""
    from index.encoder import compose_text
    from index.vectors import VectorIndex

    folder = layout.current_build(index_dir)
    titles = {d["id"]: d["title"] for d in read_documents(folder)}
    key_of = {r["id"]: _text_key(compose_text(titles[r["doc_id"]], r["text"]))
              for r in read_paragraphs(folder)}
    vi = VectorIndex.open(folder)
    live = vi.live_ids()
    mat = vi.vectors(vi.rows_of(live))
    return {key_of[pid]: mat[i] for i, pid in enumerate(live)}


def replicated_build(n_paragraphs: int, say: Any = print) -> Path:
    """A real build of the BBC corpus copied until it holds about ``n_paragraphs`` paragraphs (cached)."""
    index_dir = CACHE / f"bbc-{n_paragraphs}"
    try:
        folder = layout.current_build(index_dir)
        if (layout.read_manifest(folder).counts.get("paragraphs", 0) >= 0.95 * n_paragraphs
                and _same_keyword_schema(folder)):
            return index_dir
    except PersonaeError:
        pass
    base_dir = base_build(say)
    base_folder = layout.current_build(base_dir)
    per_doc = {}
    for r in read_paragraphs(base_folder):
        per_doc[r["doc_id"]] = per_doc.get(r["doc_id"], 0) + 1
    docs = list(read_jsonl(CACHE / "bbc-corpus.jsonl"))
    out, total, copy = [], 0, 0
    while total < n_paragraphs:
        for d in docs:
            if total >= n_paragraphs:
                break
            new_id = d["id"] if copy == 0 else f"c{copy}/{d['id']}"
            out.append(dict(d, id=new_id, date=synthetic_date(new_id)))
            total += per_doc.get(d["id"], 0)
        copy += 1
    corpus = write_jsonl(out, CACHE / f"bbc-corpus-{n_paragraphs}.jsonl")
    # Start from a copy of the base build so the incremental path reuses its mentions (same texts).
    shutil.rmtree(index_dir, ignore_errors=True)
    shutil.copytree(base_dir, index_dir)
    settings = settings_for(index_dir, corpus)
    enc = NoisyEncoder(base_vectors(base_dir), settings.model)
    say(f"building {len(out)} documents ({copy} copies of BBC, ~{total} paragraphs) in {index_dir}; "
        f"copies reuse base mentions and get base vectors + N(0, {NOISE}) noise")
    t0 = time.perf_counter()
    report = build_index(settings, encoder=enc, progress=False)
    say(f"  built in {time.perf_counter() - t0:.0f} s: {report.summary()}")
    return index_dir


def _same_keyword_schema(folder: Path) -> bool:
    """A cached build is reused only while index/keyword.py still writes the same fields."""
    from whoosh import index as whoosh_index

    from index.keyword import schema

    return sorted(whoosh_index.open_dir(str(folder / layout.WHOOSH_DIR)).schema.names()) == sorted(
        schema().names())


# ------------------------------------------------------------------------------------------ latency


def sample_queries(n: int, seed: int = 7) -> list[str]:
    """Half full headlines (multi-word: ``_protect_exact`` runs a phrase query), half their first 2 words."""
    import random

    docs = list(read_jsonl(CACHE / "bbc-corpus.jsonl"))
    rng = random.Random(seed)
    picks = rng.sample(docs, n)
    out = []
    for i, d in enumerate(picks):
        words = d["title"].split()
        out.append(d["title"] if i % 2 == 0 else " ".join(words[:2]))
    return out


def second_mix(entities: dict[str, Any], seed: int = 7) -> Any:
    """Endless (from, to, entity id): a one-to-six-month window in 2004-2005 and one of the 20 most
    mentioned entities, as a reader narrowing a search would pick them."""
    import random

    rng = random.Random(seed)
    top = [e["id"] for e in sorted(entities.values(), key=lambda e: -e.get("mentions", 0))[:20]]
    while True:
        year, month = rng.choice((2004, 2005)), rng.randrange(1, 13)
        end = min(12, month + rng.randrange(0, 6))
        yield f"{year}-{month:02d}", f"{year}-{end:02d}", rng.choice(top)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def measure(index_dir: Path, queries: Sequence[str], say: Any = print) -> dict[str, list[float]]:
    """Per-component latencies (ms) through the real ``Searcher`` and its embedded backend."""
    from concurrent.futures import ThreadPoolExecutor

    from search.fusion import rrf
    from search.query import parse_query
    from search.searcher import Searcher
    from search.snippets import highlight, query_stems

    corpus = next(iter(sorted(index_dir.parent.glob("bbc-corpus*.jsonl"))))
    settings = settings_for(index_dir, corpus)
    searcher = Searcher.open(settings)
    state = searcher._state
    backend = state.backend
    ki = backend.keyword_index
    enc = searcher.encoder()
    linker = searcher.linker()
    pool = ThreadPoolExecutor(max_workers=1)
    window = settings.candidates
    times: dict[str, list[float]] = {}

    def timed(label: str, fn: Any) -> Any:
        qcache = getattr(searcher, "_qcache", None)
        if qcache is not None and "cache hit" not in label:
            qcache.clear()  # every row pays for its query embedding unless it says otherwise
        t0 = time.perf_counter()
        out = fn()
        times.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
        return out

    for text in list(queries[:10]):  # warm-up: model, spaCy, Whoosh caches
        searcher.search(text, limit=10)
        searcher.search(text, limit=10, group=True, date_from="2004-03", entities=["united-kingdom"])
    times.clear()
    filters = second_mix(state.store.entity_table())
    for text in queries:
        q = parse_query(text)
        kq = timed("keyword: parse", lambda q=q: ki.parse(q.text))
        timed("keyword leg: OR (current)", lambda kq=kq: ki.search(kq, window))
        kand = ki.parse(q.text, conjunctive=True)
        timed("keyword leg: AND", lambda kand=kand: ki.search(kand, window))
        timed("count: len(results) (old)", lambda kq=kq: len(ki._searcher().search(kq, limit=1)))
        ki._local.last_total = None  # time the postings count itself, not the memo a search leaves behind
        timed("count: numpy postings (new)", lambda kq=kq: ki.count(kq))
        if len(q.plain.split()) > 1:
            pq = ki.parse(f'"{q.plain}"')
            timed("_protect_exact: phrase query", lambda pq=pq: ki.search(pq, window))
        qvec = timed("vector: encode query", lambda q=q: enc.encode([q.plain], batch_size=1)[0])
        timed("vector: ANN search", lambda qvec=qvec: backend.vector(qvec, window))
        links = timed("entity: link query", lambda q=q: linker.link_query(q.plain))
        known = state.store.known(x.entity_id for x in links)
        ids = [x.entity_id for x in links if x.entity_id in known]
        if ids:
            timed("entity leg (linked queries only)", lambda ids=ids: backend.entity(ids, window))
        r = timed("retrieve hybrid, no linking", lambda q=q: searcher.retrieve(
            q, mode="hybrid", fusion=settings.fusion, window=window, link_query=False))
        top = list(state.store.paragraphs(pid for pid, _ in r.fused[:10]).values())

        def snippets(q: Any = q, top: list = top) -> None:
            stems = query_stems(q.plain) if q.plain else set()
            for p in top:
                highlight(p["text"], stems=stems, links=p["links"], size=settings.snippet_chars)

        timed("search(): snippets for 10 hits", snippets)

        def parallel(q: Any = q, kq: Any = kq) -> Any:
            fut = pool.submit(lambda: backend.vector(enc.encode([q.plain], batch_size=1)[0], window))
            kw = backend.keyword(kq, window)
            return rrf([kw, fut.result()], k=settings.rrf_k)

        timed("legs in parallel (kw ‖ encode+ANN) + rrf", parallel)
        timed("search() keyword", lambda text=text: searcher.search(text, limit=10, mode="keyword"))
        timed("search() vector", lambda text=text: searcher.search(text, limit=10, mode="vector"))
        timed("search() hybrid, no linking",
              lambda text=text: searcher.search(text, limit=10, link_query=False))
        timed("search() hybrid (default: linking on)", lambda text=text: searcher.search(text, limit=10))
        if hasattr(searcher, "_qcache"):
            timed("search() hybrid, query-vector cache hit",
                  lambda text=text: searcher.search(text, limit=10))
        timed("PAGE: search() hybrid grouped (the page's call)",
              lambda text=text: searcher.search(text, limit=10, group=True))
        lo, hi, eid = next(filters)
        timed("MIX 2: grouped + date range + entity filter",
              lambda text=text, lo=lo, hi=hi, eid=eid: searcher.search(
                  text, limit=10, group=True, date_from=lo, date_to=hi, entities=[eid]))
        timed("MIX 3: grouped + an excluded word",
              lambda text=text: searcher.search(f"{text} -government", limit=10, group=True))
    pool.shutdown()
    searcher._state.backend.close()
    return times


# ------------------------------------------------------------------------- the honest scale corpus


def measure_scale(index_dir: Path, queries: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Grouped hybrid ``search()`` calls as the page makes them, on the generated corpus (``scale_corpus``).

    Every call pays for its query embedding (the query-vector cache is cleared before each). An entity
    filter is the top person/organisation facet of the same query's unfiltered page, clicked: the page's
    second call. A date filter is the query's ``from``/``to`` range.
    """
    import inspect

    from search.results import SearchRequest
    from search.searcher import Searcher

    settings = Settings.load(env={}, index_dir=str(index_dir))
    searcher = Searcher.open(settings)
    dated = "date_from" in inspect.signature(SearchRequest).parameters
    times: dict[str, list[float]] = {}

    def call(label: str, text: str, **kw: Any) -> dict[str, Any]:
        searcher._qcache.clear()
        t0 = time.perf_counter()
        out = searcher.search(text, limit=10, group=True, **kw)
        ms = (time.perf_counter() - t0) * 1000
        # the two mixes the latency target names: the page's call, and calls with a date range or entity
        mix = "MIX 1: the page's call (no filter)" if not kw else "MIX 2: date range or entity filter"
        for row in ("hybrid grouped: all queries", mix, label):
            times.setdefault(row, []).append(ms)
        return out

    searcher.warm()  # what a server does before it takes traffic
    for q in queries[:10]:  # warm-up: model, spaCy, Whoosh caches
        searcher.search(q["text"], limit=10, group=True)
    for q in queries:
        kind, flt = q["kind"], q.get("filter") or {}
        page = call(f"hybrid grouped: {kind}s, no filter", q["text"])
        if "entity" in flt:
            facet = next((f["id"] for t in ("person", "org") for f in page["facets"].get(t, [])), None)
            if facet is None:
                continue
            call(f"hybrid grouped: {kind}s, entity facet clicked", q["text"], entities=[facet])
        elif "date" in flt and dated:
            call(f"hybrid grouped: {kind}s, date range", q["text"], date_from=flt["date"][0],
                 date_to=flt["date"][1])
    searcher._state.backend.close()
    return times


def hnsw_recall(index_dir: Path, queries: Sequence[dict[str, Any]], k: int = 10) -> tuple[float, str]:
    """Mean recall@k of the index's vector search (HNSW above ``hnsw_threshold``) against exact search."""
    from index.encoder import load_encoder
    from index.vectors import VectorIndex

    folder = layout.current_build(index_dir)
    vi = VectorIndex.open(folder)
    qvecs = load_encoder(layout.read_manifest(folder).models["encoder"]).encode([q["text"] for q in queries])
    live = vi.live_ids()
    scores = qvecs @ vi.vectors(vi.rows_of(live)).T  # exact search: every row's cosine
    kth = np.sort(scores, axis=1)[:, -k]
    row_of = {pid: i for i, pid in enumerate(live)}
    # A hit counts when it scores at least the exact k-th score (ties of duplicate paragraphs are equal)
    hits = [sum(scores[q, row_of[pid]] >= kth[q] - 1e-5 for pid, _ in got) / k
            for q, got in enumerate(vi.search_many(qvecs, k))]
    return float(np.mean(hits)), vi.kind


def main_scale(sizes: Sequence[int], n_queries: int, scifact_limit: int | None = None) -> int:
    import scale_corpus

    missing = scale_corpus.available()
    if missing:
        print(f"skip: {missing}")
        return 0
    queries: list[dict[str, Any]] = []
    results: dict[int, dict[str, list[float]]] = {}
    recall: dict[int, tuple[float, str]] = {}
    for n in sizes:
        index_dir = scale_corpus.scale_build(n, scifact_limit=scifact_limit)
        queries = list(read_jsonl(scale_corpus.CACHE / "queries.jsonl"))[:n_queries]
        m = layout.read_manifest(layout.current_build(index_dir))
        print(f"{n}: {m.counts['documents']} documents, {m.counts['paragraphs']} paragraphs, "
              f"{m.counts['entities']} entities, vector index {m.models.get('vector_index')}", flush=True)
        results[n] = measure_scale(index_dir, queries)
        recall[n] = hnsw_recall(index_dir, queries)
    labels = list(dict.fromkeys(k for r in results.values() for k in r))
    head = f"{'grouped search() (ms)':50s}" + "".join(
        f"{f'{n // 1000}k n':>7s}{f'{n // 1000}k p50':>10s}{f'{n // 1000}k p95':>10s}" for n in sizes)
    print()
    print(f"{len(queries)} held-out queries (BBC headlines and names not in the corpus), half filtered; "
          "hybrid, linking on, grouped like the page; 2 shared CPU cores")
    print(head)
    print("-" * len(head))
    for label in labels:
        row = f"{label:50s}"
        for n in sizes:
            v = results[n].get(label, [])
            row += f"{len(v):7d}{pct(v, 50):10.1f}{pct(v, 95):10.1f}"
        print(row)
    for n in sizes:
        value, kind = recall[n]
        print(f"vector leg recall@10 vs exact search at {n // 1000}k ({kind}): {value:.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Query latency p50/p95 per component at 10k / 100k paragraphs.")
    ap.add_argument("--sizes", default="10000,100000", help="paragraph counts, comma-separated")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--corpus", choices=["bbc-replicated", "scale"], default="bbc-replicated",
                    help="scale: the generated corpus of benchmarks/scale_corpus.py (held-out queries)")
    ap.add_argument("--scifact-limit", type=int, default=None,
                    help="scale corpus: only the first N SciFact abstracts (fewer texts to encode)")
    args = ap.parse_args(argv)
    if args.corpus == "scale":
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        return main_scale(sizes, args.queries, args.scifact_limit)
    if not bbc_available():
        print(f"skip: BBC corpus not found at {BBC} (set PERSONAE_BBC)")
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results: dict[int, dict[str, list[float]]] = {}
    for n in sizes:
        index_dir = replicated_build(n)
        folder = layout.current_build(index_dir)
        m = layout.read_manifest(folder)
        kind = m.models.get("vector_index")
        print(f"{n}: {m.counts['paragraphs']} paragraphs, vector index {kind}", flush=True)
        results[n] = measure(index_dir, sample_queries(args.queries))
    labels = list(dict.fromkeys(k for r in results.values() for k in r))
    head = f"{'component (ms)':44s}" + "".join(
        f"{f'{n // 1000}k p50':>10s}{f'{n // 1000}k p95':>10s}" for n in sizes)
    print()
    print(f"{args.queries} BBC headline queries (half full headlines, half two words); 2 shared CPU cores")
    print(head)
    print("-" * len(head))
    for label in labels:
        row = f"{label:44s}"
        for n in sizes:
            v = results[n].get(label, [])
            row += f"{pct(v, 50):10.1f}{pct(v, 95):10.1f}"
        print(row)
    print("\nCopies beyond the first BBC pass reuse its NER mentions and get its vectors plus N(0, "
          f"{NOISE}) noise (re-normalised) instead of being re-encoded.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
