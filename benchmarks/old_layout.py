"""A copy of a build in the in-heap layout before #17 (index format 3), to serve it with that code.

Run (from the repository root)::

    .venv/bin/python benchmarks/old_layout.py --index-dir /tmp/scale1m/index-1000000 \
        --out /tmp/scale1m/copy-1m-format3
    .venv/bin/python benchmarks/scale_serve.py --index-dir /tmp/scale1m/copy-1m-format3 \
        --source /tmp/personae-before

#17 asks for today's layout to be measured beside the store-backed one "at 100k and 1M, or until it runs
out". Building a million paragraphs with the old code takes an hour; its server only reads the build, so
this writes what that server reads from a build of this code: ``documents.jsonl`` and ``paragraphs.jsonl``
(each paragraph with its links and quotes, one per line) and ``entities.json`` exported from the store, the
Whoosh folder, the float32 HNSW files (a format-1 vector base: the build must not have been upgraded) and
the registry and near-duplicate files hard-linked, and a format-3 manifest listing their sizes (that server
checks sizes at start; its checksums are not re-read).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import layout  # noqa: E402
from index.store import open_store  # noqa: E402

LINKED = ("vectors.faiss", "vector_ids.json", "registry.jsonl", "duplicates.json")


def export(build: Path, out: Path) -> Path:
    """Write the format-3 copy of ``build`` into ``out`` (a fresh index folder); returns its build folder."""
    manifest = layout.read_manifest(build)
    meta = json.loads((build / "vector_ids.json").read_text(encoding="utf-8"))
    if meta.get("format", 1) != 1:
        raise SystemExit(f"{build} has vector format {meta.get('format')}: the old server reads only 1")
    folder = out / f"build-{build.name.removeprefix('build-')}"
    folder.mkdir(parents=True)
    store = open_store(build)
    try:
        with (folder / "documents.jsonl").open("w", encoding="utf-8") as f:
            for doc in store.iter_documents():
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
        with (folder / "paragraphs.jsonl").open("w", encoding="utf-8") as f:
            for row in store.iter_paragraphs():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        (folder / "entities.json").write_text(json.dumps(store.entity_table(), ensure_ascii=False),
                                              encoding="utf-8")
    finally:
        store.close()
    for name in LINKED:
        if (build / name).is_file():
            os.link(build / name, folder / name)
    (folder / layout.WHOOSH_DIR).mkdir()
    for path in (build / layout.WHOOSH_DIR).iterdir():
        if path.is_file() and not path.name.startswith("rows-"):
            os.link(path, folder / layout.WHOOSH_DIR / path.name)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    old = {
        "format": 3, "version": "0.1.0", "created": manifest.created, "corpus": manifest.corpus,
        "corpus_fingerprint": manifest.corpus_fingerprint, "counts": manifest.counts,
        "settings": manifest.settings, "models": manifest.models, "skipped": [],
        "files": {rel: "not re-read" for rel in files}, "build_seconds": 0.0,
        "sizes": {rel: (folder / rel).stat().st_size for rel in files}, "snapshot": {},
    }
    (folder / layout.MANIFEST).write_text(json.dumps(old, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / layout.POINTER).write_text(folder.name + "\n", encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-dir", type=Path, required=True,
                    help="an index folder of this code (format-1 vectors)")
    ap.add_argument("--out", type=Path, required=True, help="a new index folder for the format-3 copy")
    args = ap.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; remove it first")
    folder = export(layout.current_build(args.index_dir), args.out)
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
