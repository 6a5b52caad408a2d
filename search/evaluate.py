"""Retrieval evaluation on BEIR-style data: metrics plus loaders for qrels, queries and corpora.

Metric conventions follow trec_eval / pytrec_eval (what BEIR reports), so numbers are comparable:

* a document is relevant when its qrels grade is >= 1; nDCG uses the grade as a linear gain
  (``rel / log2(rank + 1)``), the ideal ranking being the judged documents sorted by grade;
* a run is ranked by score descending, ties by doc id *descending* (trec_eval's order);
* the mean is over the qrels' queries that have at least one relevant document; a query with no run
  (or an empty one) scores 0 on every metric.
"""

from __future__ import annotations

import ast
import csv
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from index.errors import PersonaeError
from index.jsonl import JsonlError, read_jsonl_numbered

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

METRICS = ("ndcg@10", "recall@100", "mrr@10")


def _ranking(scores: Mapping[str, float]) -> list[str]:
    # Two stable sorts: doc id descending, then score descending (trec_eval's tie order).
    ordered = sorted(scores, reverse=True)
    return sorted(ordered, key=lambda d: -scores[d])


def query_metrics(
    judged: Mapping[str, int],
    scores: Mapping[str, float],
    *,
    ndcg_k: int = 10,
    recall_k: int = 100,
    mrr_k: int = 10,
) -> dict[str, float]:
    """Metrics for one query: ``judged`` maps doc id → grade, ``scores`` doc id → run score."""
    relevant = {d for d, g in judged.items() if g >= 1}
    names = (f"ndcg@{ndcg_k}", f"recall@{recall_k}", f"mrr@{mrr_k}")
    if not relevant or not scores:
        return dict.fromkeys(names, 0.0)
    ranking = _ranking(scores)

    dcg = sum(max(judged.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranking[:ndcg_k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:ndcg_k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    ndcg = dcg / idcg if idcg > 0 else 0.0

    recall = len(relevant.intersection(ranking[:recall_k])) / len(relevant)

    mrr = 0.0
    for i, d in enumerate(ranking[:mrr_k]):
        if d in relevant:
            mrr = 1.0 / (i + 1)
            break
    return dict(zip(names, (ndcg, recall, mrr), strict=True))


def per_query(qrels: Qrels, run: Run, **cutoffs: int) -> dict[str, dict[str, float]]:
    """``query_metrics`` for every qrels query with at least one relevant document."""
    return {
        qid: query_metrics(judged, run.get(qid, {}), **cutoffs)
        for qid, judged in qrels.items()
        if any(g >= 1 for g in judged.values())
    }


def evaluate(qrels: Qrels, run: Run, **cutoffs: int) -> dict[str, float]:
    """Mean ``ndcg@10``, ``recall@100``, ``mrr@10`` of ``run`` against ``qrels``.

    ``cutoffs`` (``ndcg_k``, ``recall_k``, ``mrr_k``) change the depths and hence the key names.
    With no evaluable query every metric is 0.
    """
    rows = per_query(qrels, run, **cutoffs)
    if not rows:
        names = query_metrics({"x": 1}, {}, **cutoffs).keys()
        return dict.fromkeys(names, 0.0)
    names = next(iter(rows.values())).keys()
    return {name: sum(r[name] for r in rows.values()) / len(rows) for name in names}


def run_from_results(results: Mapping[str, Iterable[tuple[str, float]]]) -> Run:
    """Turn ``{qid: [(doc_id, score), ...]}`` (e.g. a leg's output) into a run; first occurrence wins."""
    run: Run = {}
    for qid, hits in results.items():
        scores: dict[str, float] = {}
        for doc_id, score in hits:
            scores.setdefault(doc_id, float(score))
        run[qid] = scores
    return run


def format_table(rows: Mapping[str, Mapping[str, float]], *, digits: int = 4) -> str:
    """A plain-text table: one row per leg (``rows`` key), one column per metric, in first-seen order."""
    columns: list[str] = []
    for metrics in rows.values():
        for name in metrics:
            if name not in columns:
                columns.append(name)
    label_w = max([len("leg"), *(len(name) for name in rows)])
    col_w = [max(len(c), digits + 2) for c in columns]
    lines = ["  ".join(["leg".ljust(label_w), *(c.rjust(w) for c, w in zip(columns, col_w, strict=True))])]
    for leg, metrics in rows.items():
        cells = [
            (f"{metrics[c]:.{digits}f}" if c in metrics else "-").rjust(w)
            for c, w in zip(columns, col_w, strict=True)
        ]
        lines.append("  ".join([leg.ljust(label_w), *cells]))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Loaders


def load_qrels(path: str | Path) -> Qrels:
    """BEIR qrels: tab-separated ``query-id  corpus-id  score`` with a header line.

    Also accepts a file without header and TREC's four-column ``qid 0 docid grade`` layout.
    """
    path = Path(path)
    qrels: Qrels = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise PersonaeError(f"cannot read qrels {path}: {err.strerror or err}") from None
    for n, line in enumerate(lines, start=1):
        parts = line.split("\t") if "\t" in line else line.split()
        if not parts or not line.strip():
            continue
        if len(parts) == 4:
            parts = [parts[0], parts[2], parts[3]]
        if len(parts) != 3:
            raise PersonaeError(f"{path}:{n}: expected 3 tab-separated columns, got {len(parts)}")
        qid, doc_id, grade = (p.strip() for p in parts)
        try:
            value = int(float(grade))
        except ValueError:
            if n == 1:
                continue  # header
            raise PersonaeError(f"{path}:{n}: relevance {grade!r} is not a number") from None
        qrels.setdefault(qid, {})[doc_id] = value
    return qrels


def _beir_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a BEIR JSON-lines input; any problem is a one-line ``PersonaeError``."""
    try:
        yield from read_jsonl_numbered(path)
    except JsonlError as err:
        raise PersonaeError(str(err)) from None
    except OSError as err:
        raise PersonaeError(f"cannot read {path}: {err.strerror or err}") from None


def load_queries(path: str | Path) -> dict[str, str]:
    """BEIR queries: JSON lines with ``_id`` and ``text``; returns ``{query_id: text}`` in file order."""
    path = Path(path)
    queries: dict[str, str] = {}
    for n, obj in _beir_rows(path):
        if "_id" not in obj or not isinstance(obj.get("text"), str):
            raise PersonaeError(f"{path}:{n}: a query needs '_id' and 'text'")
        queries[str(obj["_id"])] = obj["text"]
    return queries


# A Python/numpy string literal, single- or double-quoted, with backslash escapes.
_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""", re.DOTALL)


def parse_sentence_list(raw: str) -> list[str]:
    """Sentences from SciFact's ``abstract`` column, a numpy-printed list: ``['a.'\\n 'b.']``, no commas.

    ``ast.literal_eval`` would silently glue adjacent literals into one string, so literals are matched
    one by one and each is unescaped on its own. A value that is not a list is returned as one sentence.
    """
    raw = raw.strip()
    if not raw.startswith("["):
        return [raw] if raw else []
    sentences = []
    for literal in _QUOTED.findall(raw):
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            value = literal[1:-1]
        value = " ".join(str(value).split())
        if value:
            sentences.append(value)
    return sentences


def load_beir_corpus(path: str | Path) -> list[dict[str, str]]:
    """A corpus as ``[{"id", "title", "text"}, ...]`` in file order.

    ``path`` is a BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``), a SciFact-style CSV (``doc_id``,
    ``title``, ``abstract`` as a list of sentences, joined with spaces), or a folder holding one of them.
    """
    path = Path(path)
    if path.is_dir():
        path = _find_corpus_file(path)
    if not path.is_file():
        raise PersonaeError(f"corpus {path} not found")
    if path.suffix.lower() == ".csv":
        return _load_csv_corpus(path)
    docs = []
    for n, obj in _beir_rows(path):
        if "_id" not in obj:
            raise PersonaeError(f"{path}:{n}: a corpus line needs '_id'")
        docs.append({"id": str(obj["_id"]), "title": obj.get("title") or "", "text": obj.get("text") or ""})
    return docs


def _find_corpus_file(folder: Path) -> Path:
    for candidate in [
        folder / "corpus.jsonl",
        *sorted(folder.glob("corpus*.jsonl")),
        *sorted(folder.glob("corpus*.csv")),
    ]:
        if candidate.is_file():
            return candidate
    raise PersonaeError(f"no corpus.jsonl or corpus*.csv in {folder}")


def _load_csv_corpus(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)  # abstracts are long single fields
    docs = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        id_col = next((c for c in ("doc_id", "_id", "id") if c in fields), None)
        text_col = next((c for c in ("abstract", "text") if c in fields), None)
        if id_col is None or text_col is None:
            raise PersonaeError(f"{path}: expected columns doc_id and abstract (or _id/id and text)")
        for row in reader:
            docs.append(
                {
                    "id": str(row[id_col]).strip(),
                    "title": (row.get("title") or "").strip(),
                    "text": " ".join(parse_sentence_list(row[text_col] or "")),
                }
            )
    return docs


def load_beir(
    folder: str | Path, split: str | None = None
) -> tuple[list[dict[str, str]], dict[str, str], Qrels]:
    """``(corpus, queries, qrels)`` from a BEIR-layout folder: corpus file, ``queries.jsonl``,
    ``qrels/<split>.tsv``. With ``split=None`` the folder must hold exactly one qrels file, or ``test``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PersonaeError(f"dataset folder {folder} not found")
    qrels_dir = folder / "qrels"
    if split is None:
        found = sorted(qrels_dir.glob("*.tsv"))
        if len(found) == 1:
            qrels_path = found[0]
        elif (qrels_dir / "test.tsv").is_file():
            qrels_path = qrels_dir / "test.tsv"
        else:
            names = ", ".join(p.stem for p in found) or "none"
            raise PersonaeError(f"choose a qrels split in {qrels_dir} (found: {names})")
    else:
        qrels_path = qrels_dir / f"{split}.tsv"
        if not qrels_path.is_file():
            raise PersonaeError(f"qrels split {split!r} not found at {qrels_path}")
    return load_beir_corpus(folder), load_queries(folder / "queries.jsonl"), load_qrels(qrels_path)
