"""Run the quick benchmarks and print their tables (``make bench``).

Run::

    .venv/bin/python benchmarks/run_all.py [--full]

Quick (default): the SciFact keyword grid (``tune_keyword.py --quick``), query latency at 10k BBC paragraphs
(plus 100k when its build is already cached under ``/tmp/personae-bench``) and build throughput over 150
BBC articles. ``--full`` adds the Whoosh variant rows of the keyword sweep, latency at 100k (building and
caching it first: several minutes) and 300 articles for the build ratio. Each benchmark skips itself with
a message when its data set is absent.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("PERSONAE_BENCH_CACHE", "/tmp/personae-bench"))


def run(script: str, *args: str) -> int:
    cmd = [sys.executable, str(HERE / script), *args]
    print(f"\n==== {' '.join([Path(cmd[1]).name, *args])}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, cwd=HERE.parent, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    print(f"==== {script}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args(argv)
    sizes = "10000,100000" if args.full or (CACHE / "bbc-100000" / "CURRENT").is_file() else "10000"
    rcs = [
        run("tune_keyword.py", *([] if args.full else ["--quick"])),
        run("bench_latency.py", "--sizes", sizes, "--queries", "100"),
        run("bench_build.py", "--docs", "300" if args.full else "150"),
    ]
    return max(rcs)


if __name__ == "__main__":
    raise SystemExit(main())
