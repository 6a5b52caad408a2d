"""The on-disk index folder: versioned builds under one directory, a CURRENT pointer swapped atomically.

::

    <index_dir>/
      CURRENT                 # name of the live build folder, replaced with os.replace (atomic)
      build-<stamp>/          # one complete build
        manifest.json         # written last: a folder without it is not a build
        documents.jsonl
        paragraphs.jsonl      # paragraph + links + quotes, one per line
        entities.json         # entity table as it was at build time (registry + local clusters)
        whoosh/               # keyword index
        vectors.faiss, vector_ids.json
      .tmp-<stamp>/           # a build in progress; never read
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.errors import IndexFormatMismatch, IndexMissing

INDEX_FORMAT = 1
POINTER = "CURRENT"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
PARAGRAPHS = "paragraphs.jsonl"
ENTITIES = "entities.json"
WHOOSH_DIR = "whoosh"
VECTORS = "vectors.faiss"
VECTOR_IDS = "vector_ids.json"
KEEP_BUILDS = 2  # the live one and the one before it, so a reader that opened the old one keeps working


@dataclass
class Manifest:
    format: int
    version: str
    created: str
    corpus: str
    corpus_fingerprint: str
    counts: dict[str, int]
    settings: dict[str, Any]
    models: dict[str, str]
    skipped: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256, for integrity checks
    build_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexMissing(f"no index at {folder} (manifest.json missing); run `personae build`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(**data)
    except (ValueError, TypeError) as err:
        raise IndexFormatMismatch(f"index at {folder} has an unreadable manifest ({err}); run `personae build`") from None
    if manifest.format != INDEX_FORMAT:
        raise IndexFormatMismatch(
            f"index format {manifest.format}, this Personae reads {INDEX_FORMAT}; run `personae build`"
        )
    return manifest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def current_build(index_dir: Path) -> Path:
    """The live build folder, following the CURRENT pointer."""
    pointer = index_dir / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissing(f"no index in {index_dir}; run `personae build`") from None
    folder = index_dir / name
    if not name or "/" in name or not folder.is_dir():
        raise IndexMissing(f"index pointer {pointer} names a missing build {name!r}; run `personae build`")
    return folder


def swap_current(index_dir: Path, build_folder: Path) -> None:
    """Point CURRENT at ``build_folder`` atomically, then drop builds older than the last KEEP_BUILDS."""
    tmp = index_dir / (POINTER + ".tmp")
    tmp.write_text(build_folder.name + "\n", encoding="utf-8")
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, index_dir / POINTER)
    builds = sorted(p for p in index_dir.glob("build-*") if p.is_dir())
    for old in builds[:-KEEP_BUILDS]:
        if old != build_folder:
            shutil.rmtree(old, ignore_errors=True)
    for stale in index_dir.glob(".tmp-*"):
        # Left by a killed build. Only remove ones whose owner is gone (pid in the name).
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
