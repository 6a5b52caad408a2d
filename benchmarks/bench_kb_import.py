"""Peak memory of ``personae entities import`` over a large generated knowledge-base file.

Run::

    .venv/bin/python benchmarks/bench_kb_import.py [--mb 1024] [--format wikidata|ftm] [--keep]

Writes a dump of about ``--mb`` MiB under ``/tmp/personae-bench`` (deleted afterwards unless ``--keep``),
then runs the real CLI (``python -m personae entities import FILE --entities-file REG``) in a child
process and reports its peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), time, and what
it imported, as one table row.

The Wikidata lines are shaped like the official dump's: labels, descriptions and aliases in 30 languages,
sitelinks, P31 / P39 (with P580/P582 qualifiers) / P569 / P27 / P106 claims with references, so a line
averages ~10 KB (the full dump averages ~12 KB per item). About 60% humans (a third of them with
positions), 10% places, 10% organisations, 1% positions, the rest other items. The FtM stream is
Person / Company / Position / Occupancy lines in the same proportions, as OpenSanctions publishes them.
What a knowledge base costs in memory is what it imports (the registry is held whole); what it does not
keep (other languages, claims, sitelinks) is read line by line and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PERSONAE_BENCH_CACHE", "/tmp/personae-bench"))
LANGS = ("en de fr es it nl pl ru uk ja zh ar pt sv fi no da cs hu ro tr ko he el bg sr hr sk sl et"
         ).split()
GIVEN = "Anna Boris Clara David Elena Farid Greta Hugo Irina Jonas Katya Luis Mira Nikolai Olga Pavel".split()
FAMILY = "Adler Brandt Costa Dimitrov Eriksen Fischer Garcia Horvat Ivanova Jansen Kowalski Larsen".split()


def _lab(text: str) -> dict[str, dict[str, str]]:
    return {lang: {"language": lang, "value": text} for lang in LANGS}


def _snak(prop: str, value: object, kind: str) -> dict[str, object]:
    return {"snaktype": "value", "property": prop, "hash": f"{random.getrandbits(160):040x}",
            "datavalue": {"value": value, "type": kind}, "datatype": "wikibase-item"}


def _item_snak(prop: str, qid: int) -> dict[str, object]:
    return _snak(prop, {"entity-type": "item", "numeric-id": qid, "id": f"Q{qid}"}, "wikibase-entityid")


def _time(year: int) -> dict[str, object]:
    return {"time": f"+{year}-01-01T00:00:00Z", "timezone": 0, "before": 0, "after": 0, "precision": 11,
            "calendarmodel": "http://www.wikidata.org/entity/Q1985727"}


def _statement(prop: str, snak: dict[str, object], quals: dict[str, object] | None = None) -> object:
    url = f"https://example.org/source/{random.getrandbits(48)}"
    ref = {"hash": f"{random.getrandbits(160):040x}", "snaks": {"P854": [_snak("P854", url, "string")]},
           "snaks-order": ["P854"]}
    st: dict[str, object] = {"mainsnak": snak, "type": "statement", "rank": "normal",
                             "id": f"Q${random.getrandbits(128):032x}", "references": [ref]}
    if quals:
        st["qualifiers"] = quals
    return st


def lean(item: dict[str, object]) -> dict[str, object]:
    """Only what the import reads: English strings, P31 and P39 (a pre-filtered dump, ~10x more items/MiB)."""
    claims = item["claims"]
    assert isinstance(claims, dict)
    return {"type": "item", "id": item["id"],
            **{k: {"en": v["en"]} for k in ("labels", "descriptions", "aliases")
               if isinstance(v := item[k], dict)},
            "claims": {k: v for k, v in claims.items() if k in ("P31", "P39")}}


def wikidata_item(qid: int, kind: str, positions: list[int]) -> dict[str, object]:
    if kind == "person":
        name, p31 = f"{random.choice(GIVEN)} {random.choice(FAMILY)} {qid}", 5
    elif kind == "place":
        name, p31 = f"Place {qid}", random.choice((515, 6256, 3957))
    elif kind == "org":
        name, p31 = f"Organisation {qid}", random.choice((43229, 783794, 7278))
    elif kind == "position":
        name, p31 = f"Minister of Affairs {qid}", 4164871
    else:
        name, p31 = f"Scholarly article {qid}", 13442814
    claims: dict[str, list[object]] = {"P31": [_statement("P31", _item_snak("P31", p31))]}
    for prop in ("P17", "P27", "P106", "P361", "P463", "P1343"):
        claims[prop] = [_statement(prop, _item_snak(prop, random.randint(1, 10**7)))
                        for _ in range(random.randint(1, 4))]
    if kind == "person" and positions and random.random() < 0.33:
        start = random.randint(1950, 2020)
        claims["P39"] = [_statement("P39", _item_snak("P39", random.choice(positions)),
                                    {"P580": [_snak("P580", _time(start), "time")],
                                     "P582": [_snak("P582", _time(start + random.randint(1, 8)), "time")]})
                         for _ in range(random.randint(1, 3))]
    return {
        "type": "item", "id": f"Q{qid}", "labels": _lab(name), "descriptions": _lab(f"{kind} number {qid}"),
        "aliases": {lang: [{"language": lang, "value": f"{name} ({lang})"}] for lang in LANGS[:10]},
        "claims": claims,
        "sitelinks": {f"{lang}wiki": {"site": f"{lang}wiki", "title": name, "badges": []}
                      for lang in LANGS[:20]},
        "lastrevid": random.getrandbits(31), "modified": "2025-01-01T00:00:00Z",
    }


def ftm_lines(n: int, positions: list[int]) -> list[dict[str, object]]:
    kind = _kind(n)
    if kind == "position":
        return [{"id": f"pos-{n}", "schema": "Position", "properties": {
            "name": [f"Minister of Affairs {n}"], "country": ["xx"], "sourceUrl": ["https://example.org/p"]}}]
    schema = {"person": "Person", "org": "Company", "place": "Address"}.get(kind, "LegalEntity")
    props: dict[str, list[str]] = {"name": [f"{random.choice(GIVEN)} {random.choice(FAMILY)} {n}"],
                                   "alias": [f"Alias {n} {i}" for i in range(5)],
                                   "notes": ["x" * 2000], "sourceUrl": [f"https://example.org/{n}"],
                                   "country": ["xx"], "topics": ["role.pep"]}
    if schema == "Address":
        props = {"full": [f"{n} Main Street"], "city": ["Town"]}
    out: list[dict[str, object]] = [{"id": f"e-{n}", "schema": schema, "properties": props,
                                     "datasets": ["bench"], "first_seen": "2024-01-01T00:00:00"}]
    if kind == "person" and positions and random.random() < 0.33:
        out.append({"id": f"occ-{n}", "schema": "Occupancy", "properties": {
            "holder": [f"e-{n}"], "post": [f"pos-{random.choice(positions)}"],
            "startDate": ["2001-02-03"], "endDate": ["2005"]}})
    return out


def _kind(n: int) -> str:
    r = (n * 2654435761) % 100
    return ("person" if r < 60 else "place" if r < 70 else "org" if r < 80 else "position" if r < 81
            else "other")


def generate(path: Path, fmt: str, size: int, lean_items: bool = False) -> int:
    """Write about ``size`` bytes of ``fmt`` lines to ``path``; returns the number of lines."""
    random.seed(13)
    written = n = 0
    positions: list[int] = []
    with path.open("w", encoding="utf-8") as f:
        if fmt == "wikidata":
            f.write("[\n")
        while written < size:
            n += 1
            if _kind(n) == "position":
                positions.append(n)
            objs = [wikidata_item(n, _kind(n), positions)] if fmt == "wikidata" else ftm_lines(n, positions)
            if lean_items and fmt == "wikidata":
                objs = [lean(o) for o in objs]
            for obj in objs:
                line = json.dumps(obj, ensure_ascii=False) + (",\n" if fmt == "wikidata" else "\n")
                written += f.write(line)
        if fmt == "wikidata":
            f.write("]\n")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=1024, help="size of the generated file in MiB")
    ap.add_argument("--format", choices=("wikidata", "ftm"), default="wikidata")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--lean", action="store_true", help="Wikidata items with English strings, P31, P39 only")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    label = f"{args.format}{' (lean)' if args.lean else ''}"
    suffix = "json" if args.format == "wikidata" else "jsonl"
    dump = CACHE / f"kb-{args.format}-{args.mb}mb{'-lean' if args.lean else ''}.{suffix}"
    registry = CACHE / f"kb-{args.format}-registry.jsonl"
    registry.unlink(missing_ok=True)
    try:
        t = time.perf_counter()
        items = generate(dump, args.format, args.mb * 1024 * 1024, lean_items=args.lean)
        gen_s = time.perf_counter() - t
        print(f"generated {items} items ({dump.stat().st_size / 2**20:.0f} MiB) in {gen_s:.0f}s")
        print("| run | format | lines | entities | added | unchanged | titles | import s | peak RSS MiB |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for run in ("first", "again"):  # the second import of the same file must change nothing
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "personae", "entities", "import", str(dump), "--format", args.format,
                 "--entities-file", str(registry), "--json"],
                cwd=ROOT, capture_output=True, text=True, check=False)
            import_s = time.perf_counter() - t
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
            if proc.returncode != 0:
                sys.exit(f"import failed:\n{proc.stderr}")
            r = json.loads(proc.stdout)
            print(f"| {run} | {label} | {r['lines']} | {sum(r['types'].values())} | {r['added']} | "
                  f"{r['unchanged']} | {r['titles']} | {import_s:.0f} | {peak_mb:.0f} |")
        print(f"registry {registry.stat().st_size / 2**20:.0f} MiB; peak RSS is the larger of the two runs "
              "(getrusage of children)")
    finally:
        if not args.keep:
            dump.unlink(missing_ok=True)
        registry.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
