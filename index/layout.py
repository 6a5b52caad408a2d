"""The on-disk index folder: versioned builds under one directory, a CURRENT pointer swapped atomically.

::

    <index_dir>/
      CURRENT                 # name of the live build folder, replaced with os.replace (atomic)
      build-<stamp>/          # one complete build
        manifest.json         # written last: a folder without it is not a build
        store.sqlite          # documents, paragraphs (+ links, quotes), entities; read by id (index/store.py)
        store-<gen>.sqlite    # its layers (the rows); most are hard links shared with the build before
        whoosh/               # keyword index: a base segment (shared by hard link), maybe a delta segment
        postings/             # its posting lists as numpy arrays, read by the query side (index/postings.py)
        vectors.faiss, vector_ids.json   # the vector index's base (hard links to the previous build's
                              # in an incremental build, index/vectors.py)
        vectors-delta.faiss, vectors-delta.json   # an incremental build's delta (absent in a full one)
        mentions-<gen>.jsonl  # detector output per document text (layers), reused by the next build
        linking.pkl           # corpus-pass outcome, its linking-<gen>.pkl layers (optional; same use)
        linking-<gen>.pkl     # per-document resolution, quotes, language
        registry.jsonl        # the entity registry the build linked with (query linking uses this copy)
        duplicates.json       # near-duplicate document clusters and pairs (index/duplicates.py)
        duplicates-keys.npz   # their LSH band keys per document, reused by the next build (optional)
      .tmp-<stamp>-<pid>/     # a build in progress; never read
      .build.lock             # flock held by the one running build (holds its pid, for the message)

Shared files: an incremental build hard-links the previous build's layer files it still uses (same name,
same inode) and writes only new layers. No build ever writes a published file, so sharing cannot change
the build before, which keeps serving; deleting a build only drops its names for the inodes.

Durability: a build's files and folders are fsynced before it is renamed into place, and the pointer file and
the index folder are fsynced around the swap, so after a power loss CURRENT names either the old build or a
complete new one.

``verify(folder)`` checks a build before it is served: every file the manifest lists exists with the recorded
size (cheap, at start-up), and with ``deep=True`` also its sha256 and the row counts of every part
(``personae verify``). An incremental build checks the build it reuses with ``trust_unchanged=True``: like
git's index, a file whose inode and mtime are those the manifest recorded, and older than the manifest, has
not been written since its checksum was taken and is not read again; when no file was, the parts are not
parsed and counted again either (SQLite's page check of a large store alone takes seconds).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.errors import BuildLocked, IndexFormatMismatch, IndexMissing
from index.store import STORE, StoreReader
from index.vectors import VECTOR_IDS, VECTORS, VECTORS_DELTA, VECTORS_EXACT, VectorIndex

# 2: optional quote speakers, link candidates, dated titles, registry copy; 3: ISO dates, duplicates.json;
# 4: documents, paragraphs and entities in store.sqlite (was documents/paragraphs.jsonl, entities.json)
# 5: postings/ (the keyword index's posting lists as arrays)
# 6: incremental builds share a base with the previous build (hard links) plus a delta: vectors-delta.*,
#    Whoosh segments with deletions, postings/<segment>/, rows-<segment>.json; vector_ids.json keys; the
#    store, mentions and linking state as layers (store-<gen>.sqlite, mentions-<gen>.jsonl, linking-<gen>.pkl)
INDEX_FORMAT = 6
POINTER = "CURRENT"
MANIFEST = "manifest.json"
WHOOSH_DIR = "whoosh"
POSTINGS_DIR = "postings"  # index/postings.py: Whoosh's posting lists as numpy arrays
MENTIONS = "mentions"  # index/build.py: detector output, layers mentions-<gen>.jsonl
LINKING_STATE = "linking.pkl"  # index/linking/incremental.py; optional: without it linking starts afresh
REGISTRY = "registry.jsonl"  # copy of the entity registry the build linked with
LOCK = ".build.lock"
DUPLICATES = "duplicates.json"  # near-duplicate document clusters (index/duplicates.py); optional to read
DUPLICATE_KEYS = "duplicates-keys.npz"  # their band keys, for the next build (index/duplicates.py); optional
REQUIRED = (STORE, VECTORS, VECTOR_IDS)
VECTOR_FILES = (VECTORS, VECTORS_DELTA, VECTORS_EXACT)  # what a vector search reads (those present)
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
    sizes: dict[str, int] = field(default_factory=dict)  # relative path -> bytes, the cheap start-up check
    snapshot: dict[str, Any] = field(default_factory=dict)  # what reusable parts depend on (incremental)
    stats: dict[str, list[int]] = field(default_factory=dict)  # relative path -> [mtime_ns, inode], hashed

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
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        manifest = Manifest(**data)
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise IndexFormatMismatch(
            f"index at {folder} has an unreadable manifest ({err}); run `personae build`"
        ) from None
    if manifest.format != INDEX_FORMAT or isinstance(manifest.format, bool):
        raise IndexFormatMismatch(
            f"index format {manifest.format}, this Personae reads {INDEX_FORMAT}; run `personae build`"
        )
    return manifest


def verify(folder: Path, *, deep: bool = False, trust_unchanged: bool = False) -> Manifest:
    """The build's manifest, after checking the build is whole; raises ``IndexFormatMismatch`` otherwise.

    Cheap (start-up): the manifest reads, names the required parts, and every file it lists exists with the
    recorded size. ``deep``: also every sha256, and that documents, paragraphs, vectors and keyword rows
    agree in number with each other and with the manifest's counts; with ``trust_unchanged``, the sha256 of
    only the files written since the manifest recorded them (:func:`unchanged_since_hashed`), and the counts
    only when there is such a file.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    written = _mtime_ns(folder / MANIFEST) if trust_unchanged else 0
    problems: list[str] = []
    if not isinstance(manifest.files, dict) or not isinstance(manifest.sizes, dict):
        raise IndexFormatMismatch(f"index at {folder} has a malformed manifest; run `personae build --full`")
    listed = set(manifest.files)
    untrusted = 0  # files read again: a build whose every file is as hashed is as it was counted, too
    problems += [f"manifest lists no {name}" for name in REQUIRED if name not in listed]
    if not any(rel.startswith(WHOOSH_DIR + "/") for rel in listed):
        problems.append(f"manifest lists no {WHOOSH_DIR}/ files")
    for rel in sorted(listed):
        path = folder / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            problems.append(f"{rel}: path outside the build")
            continue
        if not path.is_file():
            problems.append(f"{rel} is missing")
            continue
        size = manifest.sizes.get(rel)
        trusted = trust_unchanged and unchanged_since_hashed(path, manifest.stats.get(rel), written)
        untrusted += not trusted
        if size is not None and path.stat().st_size != size:
            problems.append(f"{rel} is {path.stat().st_size} bytes, the manifest says {size}")
        elif deep and not trusted and sha256_file(path) != manifest.files[rel]:
            problems.append(f"{rel} does not match its checksum")
    if deep and not problems and untrusted:
        problems += _count_problems(folder, manifest)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        hint = "" if any("personae build" in p for p in problems[:5]) else (
            "; rebuild it with `personae build --full`")  # a part's own message may already say it
        raise IndexFormatMismatch(f"index at {folder} is damaged: {'; '.join(problems[:5])}{more}{hint}")
    return manifest


def check_counts(folder: Path, manifest: Manifest, **counts: int) -> None:
    """Raise IndexFormatMismatch if loaded parts disagree (``paragraphs=``, ``vectors=``, ``documents=``)."""
    problems = []
    for part in ("vectors", "keyword"):
        if part in counts and "paragraphs" in counts and counts[part] != counts["paragraphs"]:
            problems.append(f"{counts[part]} {part} rows but {counts['paragraphs']} paragraphs")
    for name, n in counts.items():
        expected = manifest.counts.get(name if name in ("documents", "paragraphs") else "paragraphs")
        if expected is not None and expected != n:
            problems.append(f"{n} {name}, the manifest says {expected}")
    if problems:
        raise IndexFormatMismatch(
            f"index at {folder} is inconsistent: {'; '.join(problems)}; "
            "rebuild it with `personae build --full`"
        )


def _count_problems(folder: Path, manifest: Manifest) -> list[str]:
    """Parse every part and compare row counts (deep verification only)."""
    try:
        store = StoreReader.open(folder / STORE)
        try:
            store_problems = store.check()  # SQLite's own page check, and rows against the store's counts
            paragraphs = store.paragraph_ids()
            n_docs = store.counts()["documents"]
        finally:
            store.close()
        meta = json.loads((folder / VECTOR_IDS).read_text(encoding="utf-8"))
    except IndexFormatMismatch as err:
        return [str(err)]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [f"unreadable part ({type(err).__name__}: {err})"]
    from whoosh import index as whoosh_index

    try:
        vectors = VectorIndex.open(folder)  # also checks the faiss file against its ids
        ix = whoosh_index.open_dir(str(folder / WHOOSH_DIR))
        try:
            keyword_rows = ix.doc_count()
        finally:
            ix.close()
    except IndexFormatMismatch as err:
        return [str(err)]
    except Exception as err:  # whoosh raises many kinds of errors on damaged segments
        return [f"unreadable index part ({type(err).__name__}: {str(err)[:200]})"]
    problems = list(store_problems)
    if len(vectors) != len(paragraphs) or set(vectors.live_ids()) != set(paragraphs):
        problems.append(f"{len(vectors)} vectors but {len(paragraphs)} paragraphs")
    if keyword_rows != len(paragraphs):
        problems.append(f"{keyword_rows} keyword rows but {len(paragraphs)} paragraphs")
    if isinstance(meta, dict) and meta.get("count", vectors.base_count) != vectors.base_count:
        problems.append(f"{VECTOR_IDS} says {meta.get('count')} vectors, the faiss file has "
                        f"{vectors.base_count}")
    for name, n in (("documents", n_docs), ("paragraphs", len(paragraphs))):
        expected = manifest.counts.get(name)
        if expected is not None and expected != n:
            problems.append(f"{n} {name}, the manifest says {expected}")
    return problems


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def unchanged_since_hashed(path: Path, recorded: list[int] | None, manifest_written: int) -> bool:
    """Whether ``path`` is the very file (inode) its manifest hashed, not written since (mtime), and was
    written before the manifest — a file changed in the manifest's own clock tick could keep its mtime, so
    it is read again (git's "racily clean" rule)."""
    if not recorded or len(recorded) != 2:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return [st.st_mtime_ns, st.st_ino] == list(recorded) and st.st_mtime_ns < manifest_written


def read_ahead(paths: Iterable[Path]) -> None:
    """Ask the kernel to read ``paths`` into the page cache in the background (``POSIX_FADV_WILLNEED``):
    the first queries then find the pages there; nothing is mapped into the process. Missing files and
    platforms without ``posix_fadvise`` are skipped."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


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


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold ``index_dir``'s builder lock while the block runs; ``BuildLocked`` if another process holds it.

    An ``flock`` on ``.build.lock``: the kernel releases it when its holder exits or is killed, so a crashed
    build never leaves a stale lock behind. The file is never deleted (that would race with a new holder).
    """
    path = Path(index_dir) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise BuildLocked(
                f"another build is running on {index_dir} (pid {holder}); wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_build(tmp: Path, final: Path) -> None:
    """Make the finished build in ``tmp`` durable, then rename it to ``final`` (not yet current)."""
    for path in sorted(tmp.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # files, then folders
        if not path.is_symlink():
            fsync_path(path)
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)


def swap_current(index_dir: Path, build_folder: Path) -> None:
    """Point CURRENT at ``build_folder`` atomically and durably, then drop builds older than the last
    KEEP_BUILDS."""
    tmp = index_dir / (POINTER + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(build_folder.name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, index_dir / POINTER)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(index_dir)
    builds = sorted(p for p in index_dir.glob("build-*") if p.is_dir())
    for old in builds[:-KEEP_BUILDS]:
        if old != build_folder:
            shutil.rmtree(old, ignore_errors=True)
    for stale in index_dir.glob(".tmp-*"):
        # Left by a killed build. Only remove ones whose owner is gone (pid in the name).
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def points_at(index_dir: Path, build_folder: Path) -> bool:
    """Whether CURRENT names ``build_folder``."""
    try:
        return (index_dir / POINTER).read_text(encoding="utf-8").strip() == build_folder.name
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
