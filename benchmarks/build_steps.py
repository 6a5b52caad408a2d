"""CPU time of each step of the build's linking worker, one thread, no encode beside it.

Run::

    .venv/bin/python benchmarks/build_steps.py [--docs 300] [--repeat 3] [--window-batch 32,128]

``bench_build.py`` gives the ratio that counts, but on a shared 2-core machine its wall-clock figures move
with everyone else's load. The thread CPU time of each step (``time.thread_time``) moves much less, so this
script is the evidence for a change to one step: it runs the steps the worker runs, in its order, over the
first ``--docs`` BBC articles (``bench_latency.bbc_documents``), ``--repeat`` times, and prints the median
seconds per step. ``--window-batch`` alternates values of ``detect.WINDOW_BATCH`` (NER windows per spaCy
batch) in the same process and checks that the mentions found do not change.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_latency import bbc_available, bbc_documents, settings_for, write_jsonl  # noqa: E402

from index.build import _keyword_rows, _link, _with_languages  # noqa: E402
from index.documents import read_corpus, split_paragraphs  # noqa: E402
from index.duplicates import write_duplicates  # noqa: E402
from index.keyword import write_keyword_index  # noqa: E402
from index.linking import detect, resolve  # noqa: E402
from index.linking.quotes import load_parser  # noqa: E402
from index.readers import ReadOptions  # noqa: E402


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.thread_time()
    out = fn()
    return time.thread_time() - t, out


def run_steps(docs: list, settings: Any, out: Path) -> tuple[dict[str, float], list]:
    """One pass of the worker's steps; returns CPU seconds per step and the mentions found."""
    linker = resolve.make_linker(settings.registry_path, settings.ner_model, settings.ner_window)
    spent: dict[str, float] = {}
    spent["languages"], docs = _cpu(lambda: _with_languages(docs))
    texts = [d.text for d in docs]
    spent["ner (detect_many)"], mentions = _cpu(lambda: [
        m for i in range(0, len(texts), 64)
        for m in linker.detector.detect_many(texts[i:i + 64], batch_size=linker.batch_size)])
    paragraphs = {d.id: split_paragraphs(d, settings.max_paragraph_chars) for d in docs}
    quotes_cpu: list[float] = []
    extract = resolve.extract_quotes_many

    def timed_quotes(*a: Any, **kw: Any) -> Any:
        took, out = _cpu(lambda: extract(*a, **kw))
        quotes_cpu.append(took)
        return out

    resolve.extract_quotes_many = timed_quotes
    try:
        took, linked = _cpu(lambda: _link(docs, paragraphs, _Replay(linker, mentions), False))
    finally:
        resolve.extract_quotes_many = extract
    spent["resolution + corpus pass"] = took - sum(quotes_cpu)
    spent["quotes (parse + attribution)"] = sum(quotes_cpu)
    titles = {d.id: d.title for d in docs}
    dates = {d.id: d.date or "" for d in docs}
    langs = {d.id: d.language for d in docs}
    rows = _keyword_rows(linked, titles, dates, langs)
    languages = set(langs.values())
    spent["whoosh + postings"], _ = _cpu(
        lambda: write_keyword_index(out / "whoosh", rows, languages=languages, postings=out / "postings"))
    spent["near-duplicates"], _ = _cpu(lambda: write_duplicates(out, docs))
    return spent, mentions


class _Replay:
    """The linker with its detector replaced by the mentions already found (times ``_link``'s own work)."""

    def __init__(self, linker: Any, mentions: list):
        self._linker = linker
        self.detector = _Mentions(mentions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._linker, name)


class _Mentions:
    def __init__(self, mentions: list):
        self._left = list(mentions)

    def detect_many(self, texts: list, **_kw: Any) -> list:
        out, self._left = self._left[: len(texts)], self._left[len(texts):]
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--window-batch", default=str(detect.WINDOW_BATCH),
                    help="comma-separated WINDOW_BATCH values to alternate")
    args = ap.parse_args(argv)
    if not bbc_available():
        print("skip: BBC corpus not found (set PERSONAE_BBC)")
        return 0
    batches = [int(b) for b in args.window_batch.split(",")]
    with tempfile.TemporaryDirectory(prefix="build-steps-") as tmp:
        corpus = write_jsonl(bbc_documents()[: args.docs], Path(tmp) / "corpus.jsonl")
        settings = settings_for(Path(tmp) / "index", corpus)
        docs = read_corpus(corpus, options=ReadOptions(detect_language=False)).documents
        detect.load_nlp(settings.ner_model)("Warm up in London.")
        load_parser(settings.ner_model)("“Warm up,” he said.")
        write_duplicates(Path(tmp), _with_languages(docs[:20]))  # imports and loads what the steps use
        rows: dict[int, list[dict[str, float]]] = {b: [] for b in batches}
        found: dict[int, list] = {}
        for i in range(args.repeat):
            for b in batches:
                detect.WINDOW_BATCH = b
                spent, mentions = run_steps(docs, settings, Path(tmp) / f"out-{i}-{b}")
                rows[b].append(spent)
                found.setdefault(b, mentions)
        print(f"{len(docs)} BBC documents, thread CPU seconds, median of {args.repeat}")
        steps = list(rows[batches[0]][0])
        print(f"{'step':32s}" + "".join(f"{'batch ' + str(b):>12s}" for b in batches))
        for step in [*steps, "total"]:
            cells = []
            for b in batches:
                vals = [sum(r.values()) if step == "total" else r[step] for r in rows[b]]
                cells.append(f"{statistics.median(vals):12.2f}")
            print(f"{step:32s}" + "".join(cells))
        same = all(found[b] == found[batches[0]] for b in batches)
        print(f"mentions identical across window batches: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
