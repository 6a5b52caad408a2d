"""Peak memory of the reader on a large JSONL: read + split, not the whole build.

    python benchmarks/ingest_memory.py                 # 1 GB file under /tmp, deleted afterwards
    python benchmarks/ingest_memory.py --mb 100 --keep
    python benchmarks/ingest_memory.py --file /tmp/big.jsonl --no-language   # an existing file, no lingua

Writes a JSONL of news-like records (several paragraphs each, a third without a title) of the given size,
then, in a fresh Python process, streams it through ``index.documents.iter_corpus`` (format, language
detection, limits) and ``split_paragraphs``, keeping nothing, and prints documents, paragraphs, seconds and
the child's peak resident memory (ru_maxrss). The file is generated, so the figure depends only on the
reader, not on a data set. ``--no-language`` leaves out language detection (a constant ~70 MB model, and
the slowest step per document), to separate what grows with the file from what does not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORDS = ("minister talks port harbour agreement union workers council budget election court ruling "
         "government spokesman said on Tuesday that the negotiations would continue next week after "
         "officials from both sides met in the capital to discuss prices wages shipping exports energy "
         "a the of and to in for with by from as at was were has have been will would could").split()
NAMES = ("Sergei Lavrov", "Marco Rubio", "Ana Lopes", "Tom Baker", "Lena Marsh", "Teodor Varga")


def _paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(2, 5)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 24))]
        words.insert(rng.randrange(len(words)), rng.choice(NAMES))
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def generate(path: Path, megabytes: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    target = megabytes * 1024 * 1024
    written = n = 0
    with path.open("w", encoding="utf-8") as f:
        while written < target:
            n += 1
            text = "\n\n".join(_paragraph(rng) for _ in range(rng.randint(3, 9)))
            record = {"id": f"doc-{n}", "text": text,
                      "date": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}
            if n % 3:
                record["title"] = " ".join(rng.choice(WORDS) for _ in range(6)).title()
            line = json.dumps(record, ensure_ascii=False) + "\n"
            f.write(line)
            written += len(line.encode("utf-8"))
    return n


CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from index.documents import Corpus, iter_corpus, split_paragraphs
from index.readers import ReadOptions
report = Corpus()
t = time.perf_counter()
docs = paragraphs = 0
for doc in iter_corpus({path!r}, report, options=ReadOptions(detect_language={language})):
    docs += 1
    paragraphs += len(split_paragraphs(doc))
print(docs, paragraphs, len(report.skipped), round(time.perf_counter() - t, 1),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="size of the generated JSONL in MiB [1024]")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--file", type=Path, help="read this JSONL instead of generating one (kept)")
    parser.add_argument("--no-language", action="store_true", help="without language detection")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="personae-ingest-"))
    path = args.file or tmp / "big.jsonl"
    try:
        if args.file is None:
            t = time.perf_counter()
            records = generate(path, args.mb)
            seconds = time.perf_counter() - t
            mib = path.stat().st_size / 2**20
            print(f"generated {path} ({mib:.0f} MiB, {records:,} records) in {seconds:.0f}s")
        size = path.stat().st_size
        child = CHILD.format(root=str(ROOT), path=str(path), language=not args.no_language)
        run = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True, text=True)
        out = run.stdout.split()
        docs, paragraphs, skipped, seconds, peak = out
        print(f"{'file MiB':>9} {'language':>9} {'documents':>10} {'paragraphs':>11} {'skipped':>8}"
              f" {'seconds':>8} {'peak RSS MiB':>13}")
        print(f"{size / 2**20:>9.0f} {'no' if args.no_language else 'yes':>9} {int(docs):>10,}"
              f" {int(paragraphs):>11,} {skipped:>8} {seconds:>8} {peak:>13}")
    finally:
        if not args.keep and args.file is None:
            path.unlink(missing_ok=True)
        if not any(tmp.iterdir()):
            os.rmdir(tmp)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
