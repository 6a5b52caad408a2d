"""Turn a ``Searcher`` into evaluation runs: one ``{qid: {doc_id: score}}`` per leg / fusion.

Retrieval is per paragraph; a document scores as its best paragraph (the grouping the UI shows).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from index.errors import BadQuery
from search.evaluate import Qrels, Run, evaluate
from search.query import parse_query

# (label, mode, fusion)
CONFIGS: tuple[tuple[str, str, str], ...] = (
    ("keyword", "keyword", "rrf"),
    ("vector", "vector", "rrf"),
    ("hybrid-rrf", "hybrid", "rrf"),
    ("hybrid-weighted", "hybrid", "weighted"),
)


def write_corpus_jsonl(docs: Sequence[Mapping[str, str]], path: Path) -> Path:
    """Write a loaded BEIR corpus as the JSONL the indexer reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(
                json.dumps(
                    {"id": d["id"], "title": d.get("title", ""), "text": d["text"]}, ensure_ascii=False
                )
            )
            f.write("\n")
    return path


def make_runs(
    searcher: Any,
    queries: Mapping[str, str],
    configs: Sequence[tuple[str, str, str]] = CONFIGS,
    *,
    depth: int = 100,
    link_query: bool = False,
) -> tuple[dict[str, Run], dict[str, list[float]]]:
    """Runs per config plus per-query latencies (ms). ``link_query`` adds the entity leg to hybrid."""
    runs: dict[str, Run] = {label: {} for label, _, _ in configs}
    latency: dict[str, list[float]] = {label: [] for label, _, _ in configs}
    for qid, text in queries.items():
        try:
            query = parse_query(text, max_chars=10_000)
        except BadQuery:
            continue
        for label, mode, fusion in configs:
            t = time.perf_counter()
            r = searcher.retrieve(query, mode=mode, fusion=fusion, window=depth, link_query=link_query)
            latency[label].append((time.perf_counter() - t) * 1000)
            docs: dict[str, float] = {}
            for pid, score in r.fused:
                doc_id = pid.rsplit("#", 1)[0]
                if doc_id not in docs:
                    docs[doc_id] = float(score)
            runs[label][qid] = docs
    return runs, latency


def evaluate_runs(qrels: Qrels, runs: Mapping[str, Run]) -> dict[str, dict[str, float]]:
    return {label: evaluate(qrels, run) for label, run in runs.items()}
