"""Load test of the real production server: ``personae serve`` (waitress) under N concurrent clients.

    .venv/bin/python benchmarks/load_test.py                          # seed index, 50 clients, 60 s
    .venv/bin/python benchmarks/load_test.py --clients 50 200         # two runs, one server
    .venv/bin/python benchmarks/load_test.py --bbc 500 --index-dir /tmp/load-bbc

It builds an index with ``personae build`` (the seed corpus, or ``--bbc N`` documents of the BBC news set
copied into a temporary folder), or reuses the one in ``--index-dir`` when ``personae verify --quick``
accepts it. It then starts ``personae serve --host 127.0.0.1 --port <free> --threads 8`` as a subprocess,
waits for ``/api/health``, warms up (every request once, then a short concurrent burst), and drives the
clients for a fixed duration with a mix of searches (names, phrases, paraphrases, filters, modes, grouping,
paging), entity pages, the home page and the health check. Traffic goes to 127.0.0.1 only.

The load generator is ``wrk`` with a Lua script when it is installed (``apt-get install wrk``), else a
Python client (one thread per client, each with its own keep-alive ``http.client`` connection). Both run on
the same machine as the server, so they share its cores. The server is stopped at the end, whatever happens.
Output: a plain table of throughput, latency percentiles and errors (non-2xx and connection errors/timeouts;
the target is 0), and ``--json`` writes the same figures to a file.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
BBC = ROOT.parent / "shared" / "data" / "bbc-news" / "bbc"
HOST = "127.0.0.1"

# Realistic queries: names (linked to entities), phrases, paraphrases, boolean syntax, and a few that match
# nothing. Each is sent in several modes/filters below.
QUERIES = [
    "lavrov", "Sergei Lavrov", "Rubio", "Marco Rubio Riyadh", "\"rare earth metals\"", "rare earth metals",
    "what did the Russian foreign minister say about Ukraine", "peace talks in Saudi Arabia",
    "US and Russia meet to discuss the war", "Trump Putin summit", "sanctions on Moscow", "Zelensky",
    "European leaders react", "minerals deal", "ceasefire negotiations", "Kremlin statement",
    "lavrov AND rubio", "ukraine NOT europe", "\"foreign minister\" talks", "oil prices", "election results",
    "government budget plans", "mobile phone technology", "football match final", "film awards ceremony",
    "economy growth slows", "prime minister Blair", "record company profits", "new video game console",
    "quarterly earnings fell", "zzzz no such word qqqq",
]
SEARCH_VARIANTS = [
    {}, {"mode": "keyword"}, {"mode": "vector"}, {"group": "true"}, {"fusion": "weighted"},
    {"limit": "20"}, {"offset": "10"},
]


@dataclass
class Result:
    label: str
    clients: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    conn_errors: int
    timeouts: int
    tool: str
    statuses: dict[str, int] = field(default_factory=dict)
    starved: int = -1  # clients that completed no request (python client only; -1: not measured)
    limit_hit: bool = False  # the server log says waitress stopped accepting connections


# ------------------------------------------------------------------------------------------- the index


def personae_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "personae", *args]


def index_ok(index_dir: Path) -> bool:
    """True when ``personae verify --quick`` accepts the build in ``index_dir``."""
    if not index_dir.exists():
        return False
    proc = subprocess.run(personae_cmd("verify", "--quick", "--index-dir", str(index_dir)), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode == 0


def bbc_subset(n: int, dest: Path) -> int:
    """Copy ``n`` BBC documents, round-robin over the categories (category/NNN.txt kept), into ``dest``."""
    cats = sorted(p for p in BBC.iterdir() if p.is_dir())
    files = {c: sorted(c.glob("*.txt")) for c in cats}
    copied, i = 0, 0
    while copied < n and any(i < len(f) for f in files.values()):
        for c in cats:
            if copied < n and i < len(files[c]):
                (dest / c.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(files[c][i], dest / c.name / files[c][i].name)
                copied += 1
        i += 1
    return copied


def ensure_index(args: argparse.Namespace, tmp: Path) -> Path:
    index_dir = Path(args.index_dir) if args.index_dir else tmp / "index"
    if index_ok(index_dir):
        print(f"reusing the index in {index_dir}", flush=True)
        return index_dir
    if args.bbc:
        corpus = tmp / "bbc-corpus"
        n = bbc_subset(args.bbc, corpus)
        print(f"copied {n} BBC documents to {corpus}", flush=True)
    else:
        corpus = Path(args.corpus)
    print(f"building: personae build --corpus {corpus} --index-dir {index_dir} --quiet", flush=True)
    t0 = time.perf_counter()
    subprocess.run(personae_cmd("build", "--corpus", str(corpus), "--index-dir", str(index_dir), "--quiet"),
                   cwd=ROOT, check=True, timeout=args.build_timeout)
    print(f"built in {time.perf_counter() - t0:.0f} s", flush=True)
    return index_dir


# ------------------------------------------------------------------------------------------ the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Server:
    """``personae serve`` as a subprocess in its own process group; ``stop`` always ends it."""

    def __init__(self, index_dir: Path, threads: int, log: Path, workers: int = 1):
        self.port = free_port()
        self.log = log.open("wb")
        cmd = personae_cmd("serve", "--host", HOST, "--port", str(self.port), "--index-dir", str(index_dir),
                           "--threads", str(threads), "--workers", str(workers))
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_healthy(self, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                status, body = get(self.port, "/api/health", timeout=5)
                if status == 200:
                    return dict(json.loads(body))
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"no healthy server on port {self.port} after {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self.log.close()


# ---------------------------------------------------------------------------------------- the requests


def request_mix(port: int, seed: int = 7) -> list[str]:
    """~80% searches, 10% entity pages, 5% home page, 5% health, shuffled with a fixed seed."""
    status, body = get(port, "/api/entities?limit=20")
    entity_ids = [e["id"] for e in json.loads(body)["entities"]] if status == 200 else []
    searches = []
    for i, q in enumerate(QUERIES):
        for j, extra in enumerate(SEARCH_VARIANTS):
            if (i + j) % 2:  # half of the query x variant grid keeps the list short but varied
                continue
            searches.append("/api/search?" + urllib.parse.urlencode({"q": q, **extra}))
    for eid in entity_ids[:5]:
        searches.append("/api/search?" + urllib.parse.urlencode({"q": "talks", "entity": eid}))
        searches.append("/api/search?" + urllib.parse.urlencode({"entity": eid, "group": "true"}))
    n = len(searches)
    entities = [f"/api/entities/{urllib.parse.quote(e, safe='')}" for e in entity_ids] or ["/api/entities"]
    mix = searches + [entities[i % len(entities)] for i in range(max(1, n // 8))]
    mix += ["/"] * max(1, n // 16) + ["/api/health"] * max(1, n // 16)
    random.Random(seed).shuffle(mix)
    return mix


def warm_up(port: int, paths: list[str], seconds: float) -> None:
    """Every distinct request once (loads the encoder and the linker), then a short concurrent burst."""
    bad = Counter()
    for path in dict.fromkeys(paths):
        status, _ = get(port, path, timeout=120)
        if status != 200:
            bad[status] += 1
    if bad:
        print(f"warning: warm-up got non-200 answers {dict(bad)}", flush=True)
    if seconds > 0:
        python_load(port, paths, clients=8, duration=seconds)


# ------------------------------------------------------------------------------------- load generators


LUA = r"""
local paths = {%s}
local counter = 0
statuses = {}  -- a global: done() reads it from each thread with thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counter = math.random(#paths) - 1
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do merged[k] = (merged[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(merged) do table.insert(parts, string.format('"%%s": %%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d, "status": %%d, ' ..
    '"statuses": {%%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ", ")))
end
"""


def wrk_load(port: int, paths: list[str], clients: int, duration: float, tmp: Path,
             timeout_s: float) -> Result:
    script = tmp / "load.lua"
    script.write_text(LUA % ", ".join(json.dumps(p) for p in paths), encoding="utf-8")
    threads = max(1, min(os.cpu_count() or 1, clients))
    cmd = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{int(duration)}s", "--timeout",
           f"{int(timeout_s)}s", "-s", str(script), f"http://{HOST}:{port}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 60)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    d = json.loads(line[len("WRK_JSON "):])
    secs = d["duration_us"] / 1e6
    statuses = {str(k): int(v) for k, v in sorted(d["statuses"].items())}
    return Result(
        label="", clients=clients, duration_s=round(secs, 1), requests=d["requests"],
        rps=round(d["requests"] / secs, 1), p50_ms=d["p50_us"] / 1000, p95_ms=d["p95_us"] / 1000,
        p99_ms=d["p99_us"] / 1000, max_ms=d["max_us"] / 1000,
        non_2xx=sum(v for k, v in statuses.items() if not k.startswith("2")),
        conn_errors=d["connect"] + d["read"] + d["write"], timeouts=d["timeout"], tool="wrk",
        statuses=statuses,
    )


def python_load(port: int, paths: list[str], clients: int, duration: float,
                timeout_s: float = 30.0) -> Result:
    """One thread per client, each with its own keep-alive connection; stops at the deadline."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[Counter[str]] = [Counter() for _ in range(clients)]
    errors = [0] * clients
    timeouts = [0] * clients
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(i: int) -> None:
        rng = random.Random(i)
        k = rng.randrange(len(paths))
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
        start.wait()
        while time.monotonic() < deadline[0]:  # bounded: at most duration + one timeout per client
            path = paths[k % len(paths)]
            k += 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                latencies[i].append(time.perf_counter() - t0)
                statuses[i][str(resp.status)] += 1
                if resp.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
            except TimeoutError:
                timeouts[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
                time.sleep(0.05)
        conn.close()

    workers = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for w in workers:
        w.start()
    t0 = time.monotonic()
    deadline[0] = t0 + duration
    start.wait()
    for w in workers:
        w.join(timeout=duration + timeout_s + 30)
    secs = time.monotonic() - t0
    lat = sorted(x for lst in latencies for x in lst)
    merged: Counter[str] = Counter()
    for c in statuses:
        merged.update(c)

    def pct(p: float) -> float:
        if not lat:
            return float("nan")
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 1)

    return Result(
        label="", clients=clients, duration_s=round(secs, 1), requests=len(lat),
        rps=round(len(lat) / secs, 1), p50_ms=pct(50), p95_ms=pct(95), p99_ms=pct(99), max_ms=pct(100),
        non_2xx=sum(v for k, v in merged.items() if not k.startswith("2")), conn_errors=sum(errors),
        timeouts=sum(timeouts), tool="python", statuses=dict(sorted(merged.items())),
        starved=sum(1 for lst in latencies if not lst),
    )


# ------------------------------------------------------------------------------------------------ main


def table(results: list[Result]) -> str:
    head = ("index", "clients", "secs", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
            "non-2xx", "conn err", "timeouts", "starved", "conn limit", "tool")
    rows = [head] + [(r.label, str(r.clients), f"{r.duration_s:g}", str(r.requests), f"{r.rps:.1f}",
                      f"{r.p50_ms:.0f}", f"{r.p95_ms:.0f}", f"{r.p99_ms:.0f}", f"{r.max_ms:.0f}",
                      str(r.non_2xx), str(r.conn_errors), str(r.timeouts),
                      "n/a" if r.starved < 0 else str(r.starved), "HIT" if r.limit_hit else "ok", r.tool)
                     for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(row, widths, strict=True))) for row in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(SEEDS), help="Corpus to build when no index is reused [seeds].")
    ap.add_argument("--bbc", type=int, default=0, help="Build from N BBC news documents instead.")
    ap.add_argument("--index-dir", help="Reuse the index here when it verifies; else build it here.")
    ap.add_argument("--clients", type=int, nargs="+", default=[50], help="Concurrent clients, one run each.")
    ap.add_argument("--duration", type=float, default=60.0, help="Seconds per run [60].")
    ap.add_argument("--warmup", type=float, default=5.0, help="Seconds of concurrent warm-up [5].")
    ap.add_argument("--threads", type=int, default=8, help="Server threads per worker [8].")
    ap.add_argument("--workers", type=int, default=1, help="Server processes (>1: gunicorn) [1].")
    ap.add_argument("--timeout", type=float, default=30.0, help="Per-request timeout in seconds [30].")
    ap.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--build-timeout", type=float, default=3600.0)
    ap.add_argument("--build-only", action="store_true", help="Build (or verify) the index, then stop.")
    ap.add_argument("--json", help="Also write the results here.")
    args = ap.parse_args(argv)

    if args.bbc and not BBC.is_dir():
        print(f"skipped: --bbc needs the BBC news set at {BBC}, which is not present", file=sys.stderr)
        return 0
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    elif tool == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk); use --tool python", file=sys.stderr)
        return 2

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="personae-load-") as tmp_name:
        tmp = Path(tmp_name)
        index_dir = ensure_index(args, tmp)
        if args.build_only:
            return 0
        server = Server(index_dir, args.threads, tmp / "server.log", workers=args.workers)
        try:
            health = server.wait_healthy()
            counts = health["index"]["counts"]
            label = f"{counts.get('documents', '?')} docs/{counts.get('paragraphs', '?')} paras"
            print(f"server pid {server.proc.pid} on http://{HOST}:{server.port}/ ({label})", flush=True)
            paths = request_mix(server.port)
            print(f"{len(paths)} requests in the mix ({len(set(paths))} distinct); warming up", flush=True)
            warm_up(server.port, paths, args.warmup)
            for clients in args.clients:
                print(f"running {clients} clients for {args.duration:.0f} s with {tool}", flush=True)
                if tool == "wrk":
                    r = wrk_load(server.port, paths, clients, args.duration, tmp, args.timeout)
                else:
                    r = python_load(server.port, paths, clients, args.duration, args.timeout)
                r.label = label
                server.log.flush()
                r.limit_hit = "connection limit" in (tmp / "server.log").read_text(errors="replace")
                if r.limit_hit:
                    print("  WARNING: waitress reached its connection limit (100 by default) and stopped "
                          "accepting connections; clients beyond it waited in the listen backlog", flush=True)
                results.append(r)
                print(f"  {r.rps:.1f} req/s, p50 {r.p50_ms:.0f} ms, p99 {r.p99_ms:.0f} ms, statuses "
                      f"{r.statuses}, conn errors {r.conn_errors}, timeouts {r.timeouts}", flush=True)
                if server.proc.poll() is not None:
                    raise RuntimeError(f"the server died during the run (exit {server.proc.returncode})")
            status, _ = get(server.port, "/api/health")
            if status != 200:
                raise RuntimeError(f"the server answers /api/health with {status} after the runs")
        except Exception:
            server.log.flush()
            print((tmp / "server.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            server.stop()

    server_kind = f"gunicorn --workers {args.workers}" if args.workers > 1 else "waitress"
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{server_kind} --threads {args.threads}, load generator {tool} on the same machine\n")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8")
    failed = any(r.non_2xx or r.conn_errors or r.timeouts or r.starved > 0 or r.limit_hit for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
