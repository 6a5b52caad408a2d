"""Start-up time and memory of the real server: ``personae serve --workers N`` on an existing build.

    .venv/bin/python benchmarks/serve_memory.py --index-dir var/bbc-index
    .venv/bin/python benchmarks/serve_memory.py --index-dir /tmp/old-index --source /tmp/old-checkout

It starts ``python -m personae serve --workers N`` (gunicorn) from ``--source`` (a checkout of Personae,
default this one: compare two versions on builds each can read), and measures:

* start-up: from starting the process to the first answered request (``/api/health``; figures in the
  README before #17's scale round counted to the first answered search, which waited for a worker);
* the first search after that (grouped hybrid, as the page asks), the slowest of the next ``2 × N``,
  then the median of the next ones (the same queries again and more, so whether a worker was warmed
  before taking traffic shows in the first columns);
* memory: PSS summed over the server's processes (``/proc/PID/smaps_rollup``: a page shared by several
  processes, through ``fork`` or a shared file mapping, counts once in the sum), split into anonymous
  (heap) and file-backed pages, after the queries.

The queries are names and phrases that are not copies of indexed text. Traffic goes to 127.0.0.1 only;
the server is stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["Tony Blair election campaign", "mobile phone sales", "oil prices rise", "Chelsea coach",
           "film award nominations", "interest rates Bank of England", "broadband users", "Microsoft",
           "government plans for ID cards", "record company profits", "football transfer", "the economy"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, timeout: float = 120.0) -> tuple[int, float, dict]:
    t = time.perf_counter()
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        con.request("GET", path)
        resp = con.getresponse()
        body = resp.read()
    finally:
        con.close()
    ms = (time.perf_counter() - t) * 1000
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    return resp.status, ms, data


def _search_path(q: str, **params: str) -> str:
    """The search page's call through the API: grouped, ten groups (``params``: filters, e.g. ``entity``,
    ``from``, ``to``)."""
    return "/api/search?" + urllib.parse.urlencode({"q": q, "group": "true", "limit": 10, **params})


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def _pss(pids: list[int]) -> dict[str, float]:
    """Pss, Pss_Anon, Pss_File summed over ``pids``, in MiB."""
    total = {"Pss": 0.0, "Pss_Anon": 0.0, "Pss_File": 0.0, "Rss": 0.0}
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, rest = line.partition(":")
            if key in total:
                total[key] += int(rest.split()[0]) / 1024
    return total


@dataclass
class Server:
    """A started ``personae serve`` and what its start-up took."""

    proc: subprocess.Popen
    port: int
    startup_s: float  # from starting the process to the first answered request (``/api/health``)
    first_ms: float  # the first search after that


@contextmanager
def serving(index_dir: Path, source: Path, workers: int, timeout: float, first_query: str = QUERIES[0],
            ) -> Iterator[Server]:
    """``python -m personae serve --workers N`` from ``source`` on ``index_dir``, once it answers requests
    (``/api/health``: the master binds the port before its workers are ready, and a request waits in the
    queue until one of them accepts) and has answered one grouped search; stopped (its whole process
    group) on leaving, whatever happens."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(source)}
    cmd = [sys.executable, "-m", "personae", "serve", "--workers", str(workers), "--port", str(port),
           "--host", "127.0.0.1", "--index-dir", str(index_dir)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        startup = None
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"server exited ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
            try:
                status, _, _ = _get(port, "/api/health")
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                startup = time.perf_counter() - t0
                break
            time.sleep(0.1)
        if startup is None:
            raise SystemExit(f"no answer within {timeout:.0f} s")
        status, first, _ = _get(port, _search_path(first_query))
        if status != 200:
            raise SystemExit(f"the first search answered {status}")
        yield Server(proc, port, startup, first)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def measure(index_dir: Path, source: Path, workers: int, queries: int, timeout: float) -> dict:
    with serving(index_dir, source, workers, timeout) as server:
        lat = []
        for i in range(queries):
            status, ms, _ = _get(server.port, _search_path(QUERIES[(i + 1) % len(QUERIES)]))
            if status != 200:
                raise SystemExit(f"search answered {status}")
            lat.append(ms)
        pids = _tree(server.proc.pid)
        mem = _pss(pids)
        # with round-robin-ish accept, each worker's first query is among the first few
        return {"startup_s": server.startup_s, "first_ms": server.first_ms,
                "next_max_ms": max(lat[: workers * 2]), "p50_ms": statistics.median(lat),
                "processes": len(pids), **mem}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, required=True, help="an index folder with a build")
    ap.add_argument("--source", type=Path, default=ROOT, help="Personae checkout to run [this one]")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queries", type=int, default=30, help="searches after the first [30]")
    ap.add_argument("--runs", type=int, default=1, help="server starts, each measured [1]")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--label", default="", help="row label [the source folder's name]")
    args = ap.parse_args()
    label = args.label or args.source.resolve().name
    print(f"{'server':<22} {'procs':>5} {'start-up s':>10} {'1st ms':>8} {'next max':>9} {'p50 ms':>7} "
          f"{'PSS MiB':>8} {'anon':>7} {'file':>7}")
    for _ in range(args.runs):
        r = measure(args.index_dir.resolve(), args.source.resolve(), args.workers, args.queries, args.timeout)
        print(f"{label:<22} {r['processes']:>5} {r['startup_s']:>10.1f} {r['first_ms']:>8.0f} "
              f"{r['next_max_ms']:>9.0f} {r['p50_ms']:>7.0f} {r['Pss']:>8.0f} {r['Pss_Anon']:>7.0f} "
              f"{r['Pss_File']:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
