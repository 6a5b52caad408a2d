"""Keyword-leg sweep on SciFact: BM25F b/k1, title boost, fields, stop words, stemming, OR grouping.

Run::

    .venv/bin/python benchmarks/tune_keyword.py [--data ../shared/data/scifact-dev] [--split train]
                                                [--quick] [--max-queries N]

Paragraphs come from the real path (``read_corpus`` + ``split_paragraphs``); a document scores as its
best paragraph, exactly as ``personae eval`` does. Two kinds of rows are printed:

* **whoosh** rows search a real Whoosh index (built per analyzer/field variant, in a temp folder) with a
  real ``MultifieldParser``: the numbers ``personae eval`` would print for that keyword leg;
* **grid** rows rescore BM25F in numpy from the postings of the index Whoosh built (same idf, stored
  lengths, average lengths and formula as ``whoosh.scoring.BM25F``), so a b × k1 × title-boost grid
  costs seconds instead of a minute per cell. The first grid row repeats the default configuration and
  must equal its whoosh row; the script says so (``check``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev"  # ../shared from the root

from whoosh import index as whoosh_index  # noqa: E402
from whoosh import qparser, scoring  # noqa: E402
from whoosh.analysis import (  # noqa: E402
    LowercaseFilter,  # noqa: E402
    RegexTokenizer,
    StandardAnalyzer,
    StemmingAnalyzer,
)
from whoosh.fields import ID, TEXT, Schema  # noqa: E402
from whoosh.query import Term  # noqa: E402

from index import keyword  # noqa: E402
from index.documents import read_corpus, split_paragraphs  # noqa: E402
from index.settings import Settings  # noqa: E402
from search.evaluate import Run, evaluate, format_table, load_beir  # noqa: E402
from search.query import parse_query  # noqa: E402
from search.runs import write_corpus_jsonl  # noqa: E402


@dataclass(frozen=True)
class Variant:
    """How the index is analysed and laid out (needs its own Whoosh index)."""

    name: str
    stem: bool = True
    stop: bool = True
    combined: bool = False  # one field holding title + text instead of title and text
    minsize: int = 2


VARIANTS = {
    "default": Variant("default"),  # title and text fields (the layout before the combined field)
    "combined": Variant("combined", combined=True),  # what index/keyword.py writes now
    "no-stop": Variant("no-stop", stop=False, combined=True),
    "no-stem": Variant("no-stem", stem=False, combined=True),
}


def make_analyzer(v: Variant) -> Callable:
    if v.stem:
        if v.stop:
            return StemmingAnalyzer(minsize=v.minsize, cachesize=50_000)
        return StemmingAnalyzer(minsize=v.minsize, cachesize=50_000, stoplist=None)
    if v.stop:
        return StandardAnalyzer(minsize=v.minsize)
    return RegexTokenizer() | LowercaseFilter()


def load_paragraphs(corpus: list[dict[str, str]], max_chars: int) -> list[dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_corpus_jsonl(corpus, Path(tmp) / "corpus.jsonl")
        parsed = read_corpus(path)
    rows = []
    for doc in parsed.documents:
        for p in split_paragraphs(doc, max_chars):
            rows.append({"id": p.id, "doc_id": doc.id, "title": doc.title, "text": p.text})
    return rows


def build(folder: Path, rows: list[dict[str, str]], v: Variant, title_boost: float) -> whoosh_index.Index:
    ana = make_analyzer(v)
    if v.combined:
        schema = Schema(id=ID(stored=True, unique=True), text=TEXT(analyzer=ana, phrase=True))
    else:
        schema = Schema(id=ID(stored=True, unique=True),
                        title=TEXT(analyzer=ana, field_boost=title_boost, phrase=True),
                        text=TEXT(analyzer=ana, phrase=True))
    folder.mkdir(parents=True, exist_ok=True)
    ix = whoosh_index.create_in(str(folder), schema)
    w = ix.writer(limitmb=256)
    for r in rows:
        if v.combined:
            w.add_document(id=r["id"], text=f"{r['title']}\n{r['text']}")
        else:
            w.add_document(id=r["id"], title=r["title"], text=r["text"])
    w.commit()
    return ix


def fields_of(ix: whoosh_index.Index) -> list[str]:
    return [f for f in ("title", "text") if f in ix.schema.names()]


def make_parser(ix: whoosh_index.Index, group: str) -> qparser.QueryParser:
    grp = qparser.OrGroup if group == "or" else qparser.OrGroup.factory(float(group.split("@")[1]))
    p = qparser.MultifieldParser(fields_of(ix), ix.schema, group=grp)
    for plugin in (qparser.FieldsPlugin, qparser.WildcardPlugin, qparser.RangePlugin):
        p.remove_plugin_class(plugin)
    return p


def query_texts(queries: Mapping[str, str]) -> dict[str, str]:
    return {qid: parse_query(text, max_chars=10_000).text for qid, text in queries.items()}


def whoosh_run(ix: whoosh_index.Index, queries: Mapping[str, str], group: str, weighting: scoring.BM25F,
               depth: int, *, and_first: int = 0) -> tuple[Run, list[float]]:
    """``and_first=n``: run the AND query first and keep it when it finds >= n paragraphs, else OR."""
    parser = make_parser(ix, group)
    and_parser = qparser.MultifieldParser(fields_of(ix), ix.schema, group=qparser.AndGroup)
    for plugin in (qparser.FieldsPlugin, qparser.WildcardPlugin, qparser.RangePlugin):
        and_parser.remove_plugin_class(plugin)
    run: Run = {}
    lat: list[float] = []
    kept = 0
    with ix.searcher(weighting=weighting) as s:
        for qid, text in queries.items():
            t0 = time.perf_counter()
            hits = None
            if and_first:
                hits = s.search(and_parser.parse(text), limit=depth)
                if hits.scored_length() >= and_first:
                    kept += 1
                else:
                    hits = None
            if hits is None:
                hits = s.search(parser.parse(text), limit=depth)
            docs: dict[str, float] = {}
            for h in hits:
                d = h["id"].rsplit("#", 1)[0]
                if d not in docs:
                    docs[d] = float(h.score)
            lat.append((time.perf_counter() - t0) * 1000)
            run[qid] = docs
    if and_first:
        print(f"  AND-first (>= {and_first} hits) kept the AND result for {kept} of {len(queries)} queries")
    return run, lat


@dataclass
class Postings:
    """Per query: list of (field, idf, docnums, raw weights) for every distinct leaf term."""

    terms: dict[str, list[tuple[str, float, float, np.ndarray, np.ndarray]]]  # idf whoosh, robertson
    lengths: dict[str, np.ndarray]  # field → stored (lossy) field length per docnum
    avg: dict[str, float]
    doc_of: np.ndarray  # docnum → index into doc_ids
    doc_ids: list[str]
    ndocs: int


def extract(ix: whoosh_index.Index, queries: Mapping[str, str]) -> Postings:
    """Everything BM25F needs, read once from the index Whoosh built (title indexed with boost 1)."""
    parser = make_parser(ix, "or")
    terms: dict[str, list[tuple[str, float, float, np.ndarray, np.ndarray]]] = {}
    with ix.searcher() as s:
        r = s.reader()
        n = r.doc_count_all()
        flds = fields_of(ix)
        lengths = {f: np.array([r.doc_field_length(i, f, 0) for i in range(n)], dtype=np.float64)
                   for f in flds}
        avg = {f: (s.avg_field_length(f) or 1.0) for f in flds}
        doc_ids, doc_of, seen = [], np.zeros(n, dtype=np.int64), {}
        for i in range(n):
            d = s.stored_fields(i)["id"].rsplit("#", 1)[0]
            if d not in seen:
                seen[d] = len(doc_ids)
                doc_ids.append(d)
            doc_of[i] = seen[d]
        cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        idf = scoring.BM25F()
        phrased: set[str] = set()
        for qid, text in queries.items():
            q = parser.parse(text)
            leaves = [] if q is None else [q] if q.is_leaf() else list(q.leaves())
            out = []
            keys: list[tuple[str, str]] = []
            for leaf in leaves:
                if isinstance(leaf, Term):
                    keys.append((leaf.fieldname, leaf.text))
                else:  # a quoted phrase: scored as its words (an approximation; counted and printed)
                    phrased.add(qid)
                    keys.extend((f, t) for f, t in leaf.iter_all_terms())
            for key in dict.fromkeys(keys):
                if key not in cache:
                    if r.doc_frequency(*key):
                        m = r.postings(*key)
                        ids, ws = [], []
                        while m.is_active():
                            ids.append(m.id())
                            ws.append(m.weight())
                            m.next()
                        cache[key] = (np.array(ids, dtype=np.int64), np.array(ws, dtype=np.float64))
                    else:
                        cache[key] = (np.zeros(0, dtype=np.int64), np.zeros(0))
                ids, ws = cache[key]
                if len(ids):
                    out.append((key[0], idf.idf(s, *key), robertson_idf(n, len(ids)), ids, ws))
            terms[qid] = out
    if phrased:
        print(f"  grid: {len(phrased)} queries hold a phrase, scored as its words")
    return Postings(terms, lengths, avg, doc_of, doc_ids, n)


def robertson_idf(n: int, df: int) -> float:
    """Lucene / bm25s idf: common terms weigh ~0 (Whoosh's ``log(N / (df + 1)) + 1`` keeps them >= 1)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def grid_run(p: Postings, b: float, k1: float, title_boost: float, depth: int,
             idf_kind: str = "whoosh") -> Run:
    run: Run = {}
    norm = {f: k1 * ((1 - b) + b * p.lengths[f] / p.avg[f]) for f in p.lengths}
    for qid, terms in p.terms.items():
        scores = np.zeros(p.ndocs)
        for field, idf_w, idf_r, ids, ws in terms:
            idf = idf_w if idf_kind == "whoosh" else idf_r
            tf = ws * title_boost if field == "title" else ws
            scores[ids] += idf * (tf * (k1 + 1)) / (tf + norm[field][ids])
        top = np.flatnonzero(scores)
        if len(top) > depth:
            top = top[np.argpartition(-scores[top], depth - 1)[:depth]]
        top = top[np.lexsort((top, -scores[top]))]
        docs: dict[str, float] = {}
        for i in top:
            d = p.doc_ids[p.doc_of[i]]
            if d not in docs:
                docs[d] = float(scores[i])
        run[qid] = docs
    return run


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def fusion_sweep(index_dir: str, queries: Mapping[str, str], judged: Mapping[str, Mapping[str, int]],
                 depth: int) -> dict[str, dict[str, float]]:
    """RRF k and weighted keyword_weight on an eval build (``personae eval`` makes ``var/eval-index``).

    Legs come from the real ``Searcher.retrieve`` once per query (current settings for the keyword leg);
    fusions are recomputed from them with ``search.fusion``. The ``retrieve`` row is the real hybrid
    (RRF at the configured k, ``_protect_exact`` applied) and must be close to its offline twin.
    """
    from index.settings import Settings
    from search.fusion import rrf, weighted
    from search.searcher import Searcher

    settings = Settings.load(index_dir=index_dir)
    searcher = Searcher.open(settings)
    legs: dict[str, dict[str, list[tuple[str, float]]]] = {}
    real: Run = {}
    t0 = time.perf_counter()
    for qid, text in queries.items():
        r = searcher.retrieve(parse_query(text, max_chars=10_000), mode="hybrid", fusion="rrf",
                              window=depth, link_query=False)
        legs[qid] = r.legs
        real[qid] = _doc_run(r.fused)
    print(f"  legs for {len(queries)} queries in {time.perf_counter() - t0:.0f} s "
          f"(b {settings.bm25_b} k1 {settings.bm25_k1}, rrf_k {settings.rrf_k})")
    table = {f"retrieve hybrid rrf k={settings.rrf_k}": fmt(evaluate(judged, real))}
    for name in ("keyword", "vector"):
        leg_run = {q: _doc_run(lg.get(name, [])) for q, lg in legs.items()}
        table[f"leg {name}"] = fmt(evaluate(judged, leg_run))
    for k in (5, 10, 20, 30, 60, 100):
        run = {q: _doc_run(rrf([lg.get("keyword", []), lg.get("vector", [])], k=k)) for q, lg in legs.items()}
        table[f"rrf k={k}"] = fmt(evaluate(judged, run))
    for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        run = {q: _doc_run(weighted([lg.get("keyword", []), lg.get("vector", [])], [w, 1 - w]))
               for q, lg in legs.items()}
        table[f"weighted keyword_weight={w}"] = fmt(evaluate(judged, run))
    return table


def shipped_run(folder: Path, rows: list[dict[str, str]], queries: Mapping[str, str], b: float, k1: float,
                depth: int) -> tuple[Run, list[float]]:
    """The real code path: ``write_keyword_index`` + ``KeywordIndex.parse/search``."""
    keyword.write_keyword_index(folder, rows)
    ki = keyword.KeywordIndex(folder, b=b, k1=k1)
    run: Run = {}
    lat: list[float] = []
    try:
        for qid, text in queries.items():
            t0 = time.perf_counter()
            hits = ki.search(ki.parse(text), depth)
            lat.append((time.perf_counter() - t0) * 1000)
            run[qid] = _doc_run(hits)
    finally:
        ki.close()
    return run, lat


def _doc_run(fused: list[tuple[str, float]]) -> dict[str, float]:
    docs: dict[str, float] = {}
    for pid, score in fused:
        d = pid.rsplit("#", 1)[0]
        if d not in docs:
            docs[d] = float(score)
    return docs


def fmt(row: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--split", default="train")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--max-chars", type=int, default=1500,
                    help="paragraph split, as settings.max_paragraph_chars")
    ap.add_argument("--max-queries", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="grid, plus the default whoosh row")
    ap.add_argument("--grid-only", action="store_true", help="numpy grid only (no whoosh search rows)")
    ap.add_argument("--b", default="0.5,0.75,0.9", help="grid: BM25 b values")
    ap.add_argument("--k1", default="0.9,1.2,1.5", help="grid: BM25 k1 values")
    ap.add_argument("--title", default="0.1,0.25,0.5,1.0,1.5", help="grid: title field boosts")
    ap.add_argument("--fusion", metavar="INDEX_DIR", default=None,
                    help="instead: sweep rrf_k / keyword_weight on an eval build (e.g. var/eval-index)")
    args = ap.parse_args(argv)
    if not Path(args.data).exists():
        print(f"skip: no SciFact data at {args.data}")
        return 0
    corpus, queries, qrels = load_beir(args.data, args.split)
    qids = [q for q in qrels if q in queries][: args.max_queries]
    qtexts = query_texts({q: queries[q] for q in qids})
    judged = {q: qrels[q] for q in qids}
    if args.fusion:
        print(format_table(fusion_sweep(args.fusion, qtexts, judged, args.depth)))
        return 0
    rows = load_paragraphs(corpus, args.max_chars)
    print(f"SciFact {args.split}: {len(corpus)} docs → {len(rows)} paragraphs, {len(qids)} judged queries")
    table: dict[str, dict[str, float]] = {}

    def record(label: str, run: Run, lat: list[float] | None = None) -> None:
        row = evaluate(judged, run)
        if lat:
            row["p50 ms"] = float(np.percentile(lat, 50))
        table[label] = fmt(row)
        print(f"  {label:42s} nDCG@10 {row['ndcg@10']:.4f}  R@100 {row['recall@100']:.4f}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tune-kw-") as tmp:
        t0 = time.perf_counter()
        base_ix = build(Path(tmp) / "default", rows, VARIANTS["default"], 1.5)
        print(f"built default index in {time.perf_counter() - t0:.1f} s", flush=True)

        # Grid: postings of an index with title boost 1 (the boost is applied in numpy).
        grid_ix = build(Path(tmp) / "grid", rows, VARIANTS["default"], 1.0)
        post = extract(grid_ix, qtexts)
        grid: list[tuple[float, float, float, float, float, str]] = []
        bs, k1s, boosts = (_floats(args.b), _floats(args.k1), _floats(args.title))
        t0 = time.perf_counter()
        for b, k1, tb, idf_kind in itertools.product(bs, k1s, boosts, ("whoosh", "robertson")):
            m = evaluate(judged, grid_run(post, b, k1, tb, args.depth, idf_kind))
            grid.append((m["ndcg@10"], m["recall@100"], b, k1, tb, idf_kind))
        print(f"  grid of {len(grid)} cells in {time.perf_counter() - t0:.1f} s")
        grid.sort(reverse=True)
        for nd, rc, b, k1, tb, idf_kind in grid[:8]:
            table[f"grid b {b} k1 {k1} title {tb} idf {idf_kind}"] = {"ndcg@10": round(nd, 4),
                                                                     "recall@100": round(rc, 4)}
        best_whoosh = next(g for g in grid if g[5] == "whoosh")
        nd, rc, b, k1, tb, _ = best_whoosh
        table[f"grid best whoosh-idf: b {b} k1 {k1} title {tb}"] = {"ndcg@10": round(nd, 4),
                                                                    "recall@100": round(rc, 4)}
        by_b = defaultdict(float)
        for nd, _, b, k1, tb, idf_kind in grid:
            if k1 == 1.2 and tb == 1.5 and idf_kind == "whoosh":
                by_b[b] = nd
        print("  b at k1 1.2, title 1.5: " + ", ".join(f"{b}: {v:.4f}" for b, v in sorted(by_b.items())))

        cell = {(g[2], g[3], g[4], g[5]): g for g in grid}
        for key in ((0.75, 1.2, 1.5, "whoosh"), (0.75, 1.2, 1.0, "whoosh"), (0.75, 1.2, 1.0, "robertson")):
            if key in cell:
                nd, rc = cell[key][:2]
                table[f"grid b {key[0]} k1 {key[1]} title {key[2]} idf {key[3]}"] = {
                    "ndcg@10": round(nd, 4), "recall@100": round(rc, 4)}
        for nd, rc, b, k1, tb, idf_kind in grid[:8]:
            print(f"  grid b {b} k1 {k1} title {tb} idf {idf_kind}: nDCG@10 {nd:.4f}  R@100 {rc:.4f}")
        b, k1 = Settings().bm25_b, Settings().bm25_k1
        shipped = f"shipped: KeywordIndex (b {b} k1 {k1})"
        if not args.grid_only:
            old = "previous: title 1.5 + text, whoosh idf"
            run, lat = whoosh_run(base_ix, qtexts, "or", scoring.BM25F(B=0.75, K1=1.2), args.depth)
            record(old, run, lat)
            check = evaluate(judged, grid_run(post, 0.75, 1.2, 1.5, args.depth, "whoosh"))["ndcg@10"]
            verdict = "matches" if abs(check - table[old]["ndcg@10"]) < 2e-3 else "DIFFERS from"
            print(f"  check: numpy BM25F nDCG@10 {check:.4f} {verdict} {old}")
            run, lat = shipped_run(Path(tmp) / "shipped", rows, qtexts, b, k1, args.depth)
            record(shipped, run, lat)

        if not (args.quick or args.grid_only):
            weighting = keyword.BM25F(B=b, K1=k1)
            ship_ix = build(Path(tmp) / "combined", rows, VARIANTS["combined"], 1.0)
            run, lat = whoosh_run(ship_ix, qtexts, "or", scoring.BM25F(B=b, K1=k1), args.depth)
            record("shipped with whoosh idf", run, lat)
            run, lat = whoosh_run(ship_ix, qtexts, "or@0.9", weighting, args.depth)
            record("shipped + OrGroup.factory(0.9)", run, lat)
            run, lat = whoosh_run(ship_ix, qtexts, "or", weighting, args.depth, and_first=args.depth)
            record(f"shipped, AND-first (>= {args.depth} hits) else OR", run, lat)
            for name in ("no-stop", "no-stem"):
                ix = build(Path(tmp) / name, rows, VARIANTS[name], 1.0)
                run, lat = whoosh_run(ix, qtexts, "or", weighting, args.depth)
                record(f"shipped + {name}", run, lat)
    print()
    print(format_table(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
