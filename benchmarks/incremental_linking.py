"""Linking cost of adding documents to a large corpus: full linking against the incremental path.

On the scale corpus (``scale_corpus.py``: ~100k paragraphs of real BBC, seed and SciFact sentences, dated over
years; its detector output is cached per sentence, so NER is not what is timed here), link all documents but
``--add`` of them, then link the whole corpus twice: from the first run's state (the incremental path a
build takes) and afresh. Prints the time of each step and checks that both give the same links, quotes and
entities.

    PERSONAE_SCALE_CACHE=/tmp/scale python benchmarks/incremental_linking.py --paragraphs 100000 --add 1000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from index.jsonl import read_jsonl  # noqa: E402
from index.linking import corpus as corpus_pass  # noqa: E402
from index.linking import resolve as resolve_module  # noqa: E402
from index.records import Document  # noqa: E402


class _Clock:
    """Seconds spent in the corpus pass and in quote attribution, by wrapping the two calls."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._pass = corpus_pass.resolve
        self._quotes = resolve_module.extract_quotes_many
        corpus_pass.resolve = self._timed("corpus pass", self._pass)  # type: ignore[assignment]
        resolve_module.extract_quotes_many = self._timed("quotes", self._quotes)  # type: ignore[assignment]

    def _timed(self, name: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - t
        return run

    def take(self) -> dict[str, float]:
        out, self.spent = dict(self.spent), defaultdict(float)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paragraphs", type=int, default=100_000)
    ap.add_argument("--scifact-limit", type=int, default=667)
    ap.add_argument("--add", type=int, default=1000, help="documents added by the incremental run")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import scale_corpus

    paths = scale_corpus.prepare(args.paragraphs, encode=False, scifact_limit=args.scifact_limit)
    name = scale_corpus.corpus_name(args.paragraphs, args.scifact_limit)
    _, linker, _ = scale_corpus._linking(paths, scale_corpus.CACHE / f"index-{name}")
    docs = [Document(id=r["id"], title=r.get("title") or "", text=r["text"], date=r.get("date"))
            for r in read_jsonl(paths["corpus"])]
    added = set(random.Random(args.seed).sample(range(len(docs)), args.add))
    base = [d for i, d in enumerate(docs) if i not in added]
    t = time.perf_counter()
    found = linker.detector.detect_many([d.text for d in docs])
    mentions = dict(zip((d.id for d in docs), found, strict=True))
    print(f"{len(docs)} documents; cached detector output assembled in {time.perf_counter() - t:.1f} s")

    clock = _Clock()
    rows = []

    def link(label: str, corpus: list[Document], state: Any) -> Any:
        t = time.perf_counter()
        out = linker.link_corpus(corpus, [mentions[d.id] for d in corpus], previous=state)
        total = time.perf_counter() - t
        spent = clock.take()
        rows.append((label, len(corpus), total, spent.get("corpus pass", 0.0), spent.get("quotes", 0.0)))
        return out, linker.entities(), linker.state

    _, _, state = link("full, base corpus", base, None)
    texts = {d.id: d.text for d in base}
    state.old_text = lambda ids: {d: texts[d] for d in ids if d in texts}
    inc = link(f"incremental, +{args.add} documents", docs, state)
    full = link(f"full, +{args.add} documents", docs, None)
    same = inc[0] == full[0] and inc[1] == full[1]
    print(f"\n{'run':34} {'documents':>9} {'total s':>8} {'pass s':>7} {'quotes s':>8}")
    for label, n, total, pss, qs in rows:
        print(f"{label:34} {n:9} {total:8.1f} {pss:7.1f} {qs:8.1f}")
    print(f"\nincremental equals full: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
