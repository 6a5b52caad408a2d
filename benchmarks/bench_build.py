"""Build throughput as a ratio to bare ``encode`` over the same paragraphs (budget: median <= 1.30x).

Run::

    .venv/bin/python benchmarks/bench_build.py [--docs 300] [--repeat 1]

Takes the first ``--docs`` BBC articles (``../shared/data/bbc-news/bbc`` from the repository root, or
``PERSONAE_BBC``; skips with a message when absent), then in one process, with the model already loaded:

1. **bare encode**: ``encoder.encode`` of exactly the texts the build embeds (title + paragraph);
2. **full build**: ``build_index(settings, incremental=False)`` into a temp folder (read, NER + linking,
   Whoosh, encode, FAISS, manifest), with its per-stage timings. ``link`` + ``keyword`` run in a worker
   thread while the main thread encodes (``vectors``), so the stages overlap and need not add up; torch
   leaves one core to that thread while it runs (``SentenceTransformerEncoder.encode_beside``).

Prints paragraphs/s for both and the ratio build / encode. Both runs share the CPU with whatever else is
running, so only the ratio is meaningful; ``--repeat`` alternates the two to expose drift.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_latency import bbc_available, bbc_documents, settings_for, write_jsonl  # noqa: E402

from index.build import build_index  # noqa: E402
from index.documents import read_corpus, split_paragraphs  # noqa: E402
from index.encoder import compose_text, load_encoder  # noqa: E402

TARGET = 1.30  # entity resolution, quotes and every other build step on: median of >= 10 runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=300, help="first N BBC articles")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    if not bbc_available():
        print("skip: BBC corpus not found (set PERSONAE_BBC)")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        corpus = write_jsonl(bbc_documents()[: args.docs], Path(tmp) / "corpus.jsonl")
        settings = settings_for(Path(tmp) / "index", corpus)
        docs = read_corpus(corpus).documents
        texts = [compose_text(d.title, p.text, embed_title=settings.embed_title)
                 for d in docs for p in split_paragraphs(d, settings.max_paragraph_chars)]
        encoder = load_encoder(settings.model)
        encoder.encode(texts[:64], batch_size=settings.batch_size)  # warm-up (threads, allocator)
        print(f"{len(docs)} BBC documents, {len(texts)} paragraphs, model {encoder.model_id}, "
              f"batch {settings.batch_size}, ner_window {settings.ner_window}")
        rows: list[tuple[float, float, dict[str, float]]] = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            encoder.encode(texts, batch_size=settings.batch_size)
            enc_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = build_index(settings.replace(index_dir=str(Path(tmp) / f"index-{i}")), incremental=False)
            build_s = time.perf_counter() - t0
            assert report.paragraphs == len(texts), (report.paragraphs, len(texts))
            rows.append((enc_s, build_s, dict(report.timings)))
        print()
        print(f"{'run':>4s} {'encode s':>9s} {'build s':>9s} {'enc p/s':>8s} {'build p/s':>9s} "
              f"{'ratio':>6s}   stages (s)")
        for i, (enc_s, build_s, stages) in enumerate(rows):
            st = "  ".join(f"{k} {v:.1f}" for k, v in stages.items())
            print(f"{i:4d} {enc_s:9.1f} {build_s:9.1f} {len(texts) / enc_s:8.1f} {len(texts) / build_s:9.1f} "
                  f"{build_s / enc_s:5.2f}x   {st}")
        ratios = sorted(b / e for e, b, _ in rows)
        median = statistics.median(ratios)
        verdict = "meets" if median <= TARGET else "misses"
        print(f"\nbuild / bare encode: median {median:.2f}x over {len(rows)} runs "
              f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}x; {verdict} the {TARGET:.2f}x budget)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
