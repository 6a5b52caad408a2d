"""The vector leg's on-disk index: ``vectors.faiss`` (faiss) + ``vector_ids.json`` (row → paragraph id).

Rows are L2-normalised, so inner product is cosine. Up to ``hnsw_threshold`` rows the index is exact
(``IndexFlatIP``: brute force is sub-millisecond-per-query territory at news-archive sizes and has perfect
recall); above it ``IndexHNSWFlat``. HNSW parameters were measured on 5k random unit vectors in 384-d
(a worst case: real embeddings cluster and are easier): M=32, efConstruction=128, efSearch=256 gives
recall@10 ≈ 0.997 vs exact at ~0.1 ms/query on 2 cores; efSearch=128 only reaches ≈ 0.96.

``vector_ids.json`` also records kind/dim/count so ``open`` can tell a torn or mismatched pair of files
from a good one before a query is ever run, and the key of the text each row embeds (``keys``), so that the
next incremental build knows which rows it can keep without reading the store.

Above the threshold the graph's vectors are 8-bit (format 2). The graph is built on the float32 rows
(``IndexHNSWFlat``, as before), then its vectors are replaced by 8-bit codes (faiss's ``QT_8bit``: a
per-dimension min and range, 256 steps) and the float32 rows move to ``vectors-exact.npy``. A query walks
the 8-bit graph (a quarter of the memory pages it touches) and the candidates it finds are scored again on
their float32 rows, read from the file for that query only (positioned reads, no mapping kept: the rows
stay in the page cache, not in the process). Every score a search returns is therefore the exact float32
inner product, as with a flat index. A filtered search (``search_rows``) picks its candidates on the 8-bit
codes and proves them complete with the codes' error bound before it trusts them (see ``_select``). A
format-1 base (float32 graph) is still read; the next incremental build upgrades it (``share_base``)
without rebuilding the graph.

A base and a delta. An incremental build does not rebuild the index: it hard-links the previous build's
``vectors.faiss`` and ``vector_ids.json`` (the *base*, never modified) and writes ``vectors-delta.faiss``
(an exact ``IndexFlatIP`` of the rows added or changed since the base) and ``vectors-delta.json`` (their
ids and keys, and the base rows that are no longer live). A search runs on the base with the dead rows
masked out (a faiss ``IDSelector``) and on the delta, and merges the two by score. Rows are numbered base
first, then delta. The build writes the base anew (compaction) once the delta grows past a share of it.
"""

from __future__ import annotations

import json
import mmap
import os
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexFormatMismatch, IndexMissing, PersonaeError, StorageError
from index.idtable import IdTable

VECTORS = "vectors.faiss"  # the build folder's files this module owns (index/layout.py lists them all)
VECTOR_IDS = "vector_ids.json"
VECTORS_DELTA = "vectors-delta.faiss"  # present only in an incremental build that shares its base
VECTORS_DELTA_IDS = "vectors-delta.json"
VECTORS_EXACT = "vectors-exact.npy"  # the float32 rows of an 8-bit HNSW base (format 2)
VECTORS_FORMAT = 2
_READABLE_FORMATS = (1, 2)  # format 1: the HNSW graph holds float32 vectors, no exact file
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
# candidates a query keeps (faiss's efSearch): at a million paragraphs of news, whose near-duplicate wire
# copies crowd the graph, 256 left recall@10 short of the target; the cost grows about linearly, stays small
HNSW_EF_SEARCH = 1024
_SUBSET_CHUNK = 8192
_SELECT_FROM = 2048  # allowed rows from which a filtered search lets faiss pick candidates (search_rows)
_RERANK = 2  # an 8-bit HNSW search fetches this many times k candidates, re-scored on their float32 rows
_RERANK_MIN = 64
_READ_ROWS = 4096  # float32 rows up to which ``_ExactRows.take`` reads row by row instead of mapping the file


def _faiss() -> Any:
    import faiss  # imported lazily: importing it costs ~0.3 s and not every command needs it

    return faiss


def _checked(vectors: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise PersonaeError(f"vectors must be a 2-d array (n, dim), got shape {vectors.shape}")
    if vectors.shape[0] != len(ids):
        raise PersonaeError(f"{vectors.shape[0]} vectors but {len(ids)} ids")
    if len(set(ids)) != len(ids):
        raise PersonaeError("vector ids are not unique")
    if len(vectors) and not np.isfinite(vectors).all():
        raise PersonaeError("vectors contain NaN or infinite values")
    return np.ascontiguousarray(vectors)


def write_vector_index(
    folder: Path, vectors: np.ndarray, ids: list[str], *, hnsw_threshold: int,
    keys: Sequence[str] | None = None,
) -> dict:
    """Write ``vectors`` (n, dim) with row ``i`` labelled ``ids[i]``; returns ``{"kind", "count", "dim"}``.
    ``keys``: the key of the text each row embeds, kept for the next incremental build.

    Vectors are expected L2-normalised (the encoder guarantees it); they are not renormalised here so a
    caller's mistake shows up in tests rather than being hidden.
    """
    faiss = _faiss()
    folder = Path(folder)
    vectors = _checked(vectors, ids)
    count, dim = vectors.shape

    meta = {"format": VECTORS_FORMAT, "kind": "flat", "dim": dim, "count": count, "ids": list(ids)}
    if keys is not None:
        meta["keys"] = list(keys)
    if count > hnsw_threshold:
        meta["kind"] = "hnsw"
        graph = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        graph.add(vectors)
        index = _eight_bit(faiss, graph, vectors)
        del graph  # its float32 copy of the rows: freed before the files are written
        _write_pair(faiss, index, meta, folder, VECTORS, VECTOR_IDS, exact=vectors)
    else:
        index = faiss.IndexFlatIP(dim)
        if count:
            index.add(vectors)
        _write_pair(faiss, index, meta, folder, VECTORS, VECTOR_IDS)
    return {"kind": meta["kind"], "count": count, "dim": dim}


def _eight_bit(faiss: Any, graph: Any, vectors: np.ndarray) -> Any:
    """``graph`` (an ``IndexHNSWFlat`` holding ``vectors``) with its float32 storage replaced by 8-bit codes;
    the graph itself (built on the float32 rows, the better graph) is kept as it is."""
    index = faiss.IndexHNSWSQ(graph.d, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.storage.train(vectors)  # per-dimension min and range of exactly these rows: every code in range
    index.storage.add(vectors)
    index.hnsw = graph.hnsw  # a copy of the graph's levels and neighbour lists
    index.hnsw.efSearch = HNSW_EF_SEARCH
    index.ntotal = graph.ntotal
    index.is_trained = True
    return index


def share_base(previous: Path, folder: Path) -> bool:
    """Put the base of build ``previous`` into build ``folder``, for a delta to be written beside it: its
    files hard-linked (a base is never modified), or, for a format-1 HNSW base (float32 graph), the same
    graph and rows written anew in this format (no graph is rebuilt: the rows keep their numbers). Returns
    whether it was upgraded."""
    from index.layers import link_or_copy

    # an 8-bit base is this format already: its (large) ids file need not be parsed to tell
    meta = None if (Path(previous) / VECTORS_EXACT).is_file() else _read_meta(Path(previous) / VECTOR_IDS)
    if meta is None or meta.get("format", 1) >= 2 or meta.get("kind") != "hnsw":
        for name in (VECTORS, VECTOR_IDS, VECTORS_EXACT):
            if (Path(previous) / name).is_file():
                link_or_copy(Path(previous) / name, Path(folder) / name)
        return False
    faiss = _faiss()
    graph = faiss.read_index(str(Path(previous) / VECTORS), _mmap_flag(faiss))  # rows read from the map
    vectors = faiss.downcast_index(graph.storage).reconstruct_n(0, graph.ntotal)
    index = _eight_bit(faiss, graph, vectors)
    del graph
    meta["format"] = VECTORS_FORMAT
    _write_pair(faiss, index, meta, Path(folder), VECTORS, VECTOR_IDS, exact=vectors)
    return True


def write_vector_delta(
    folder: Path, vectors: np.ndarray, ids: list[str], keys: Sequence[str], *, removed: Sequence[int]
) -> dict:
    """Write the delta beside a base already in ``folder`` (hard-linked from the previous build): the rows
    ``vectors`` labelled ``ids`` (exact search), and the base rows ``removed`` (dead: changed or deleted).
    Returns what ``write_vector_index`` returns, for the base and delta together."""
    faiss = _faiss()
    folder = Path(folder)
    vectors = _checked(vectors, ids)
    base = json.loads((folder / VECTOR_IDS).read_text(encoding="utf-8"))
    dim = int(base["dim"])
    if len(vectors) and vectors.shape[1] != dim:
        raise PersonaeError(f"delta vectors have dimension {vectors.shape[1]}, the base {dim}")
    index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    dead = sorted({int(r) for r in removed})
    meta = {"format": VECTORS_FORMAT, "dim": dim, "base_count": int(base["count"]), "removed": dead,
            "ids": list(ids), "keys": list(keys)}
    _write_pair(faiss, index, meta, folder, VECTORS_DELTA, VECTORS_DELTA_IDS)
    return {"kind": base["kind"], "count": int(base["count"]) - len(dead) + len(ids), "dim": dim}


def _write_pair(faiss: Any, index: Any, meta: dict, folder: Path, vectors_name: str, ids_name: str, *,
                exact: np.ndarray | None = None) -> None:
    """The faiss file and its ids file (and, for an 8-bit base, ``exact``: its float32 rows), each written
    to a temporary name first; the ids file, which vouches for the others, is put in place last."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp_vectors = folder / (vectors_name + ".tmp")
    tmp_ids = folder / (ids_name + ".tmp")
    _write_faiss(faiss, index, tmp_vectors)
    if exact is not None:
        tmp_exact = folder / (VECTORS_EXACT + ".tmp")
        try:
            with tmp_exact.open("wb") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(exact, np.float32), allow_pickle=False)
        except OSError as err:
            raise OSError(err.errno, err.strerror or str(err), str(tmp_exact)) from None
        os.replace(tmp_exact, folder / VECTORS_EXACT)
    tmp_ids.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp_vectors, folder / vectors_name)
    os.replace(tmp_ids, folder / ids_name)


def stored_keys(folder: Path) -> tuple[list[str], list[str | None], dict[str, tuple[int, str]]] | None:
    """What an incremental build needs of the vectors in build ``folder``: (the base's row ids, the base's
    row keys, and every live id's (row, key), rows numbered as ``VectorIndex`` numbers them); None when the
    files carry no keys (the caller then reads them from the store)."""
    base = json.loads((Path(folder) / VECTOR_IDS).read_text(encoding="utf-8"))
    keys = base.get("keys")
    if not isinstance(keys, list) or len(keys) != len(base["ids"]):
        return None
    live = {pid: (row, key) for row, (pid, key) in enumerate(zip(base["ids"], keys, strict=True))}
    delta_path = Path(folder) / VECTORS_DELTA_IDS
    if delta_path.is_file():
        delta = json.loads(delta_path.read_text(encoding="utf-8"))
        for row in delta["removed"]:
            live.pop(base["ids"][row], None)
        n = len(base["ids"])
        live.update((pid, (n + i, key)) for i, (pid, key) in enumerate(zip(delta["ids"], delta["keys"],
                                                                             strict=True)))
    return base["ids"], keys, live


def _write_faiss(faiss: Any, index: Any, path: Path) -> None:
    """``faiss.write_index`` through a Python file, so that a full disk or a failed write is an ``OSError``
    naming ``path``. (faiss's own file writer only prints a failed final flush to stderr, and reports other
    failures as a ``RuntimeError`` with a C++ location.)"""
    try:
        with path.open("wb") as f:
            faiss.write_index(index, faiss.PyCallbackIOWriter(f.write, 1 << 22))
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None
    except RuntimeError as err:  # a faiss-side failure: keep the cause, drop the C++ location
        raise StorageError(path, _faiss_cause(err), "write") from None


def _faiss_cause(err: BaseException) -> str:
    """The human part of a faiss error ("... failed: could not open x for writing: No such file")."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.rsplit("failed: ", 1)[-1].removeprefix("Error: ")[:300]


def _mmap_flag(faiss: Any) -> int:
    """Read flag that maps the stored vectors (and the HNSW graph) from the file instead of copying them
    into the process: every server worker then shares one copy through the page cache, and opening costs
    no read of the vectors. faiss >= 1.10 has it for the flat and HNSW-flat indexes the build writes; a
    build is never modified after publish, so the mapping stays valid (a deleted old build's file lives on
    until unmapped)."""
    return int(getattr(faiss, "IO_FLAG_MMAP_IFC", 0))


class _ExactRows:
    """The float32 rows of an 8-bit base (``vectors-exact.npy``), read for one call at a time, never kept
    mapped: the rows a query reads stay in the page cache, shared and reclaimable, instead of in every
    process's memory. The file stays open for as long as this object lives, so a build folder removed
    while a search still runs on it (a newer build swapped in) is read to the end of that search."""

    def __init__(self, path: Path, count: int, dim: int):
        self.path = path
        try:
            with path.open("rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
            size = path.stat().st_size
        except (OSError, ValueError) as err:
            raise IndexFormatMismatch(f"{path} is unreadable ({err}); run `personae build`") from None
        if (tuple(shape) != (count, dim) or fortran or dtype != np.float32
                or size != self.offset + 4 * count * dim):
            raise IndexFormatMismatch(f"{path} holds {shape} {dtype} rows, the index {count} x {dim} "
                                      "float32; run `personae build`")
        self.shape = (count, dim)
        self._fd = os.open(path, os.O_RDONLY)
        self._closer = weakref.finalize(self, os.close, self._fd)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Copies of ``rows`` (part-local): a positioned read each when they are few (a query's candidates:
        no mapping to set up and tear down), through a temporary mapping when they are many."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > _READ_ROWS:
            with self.mapped() as mat:
                return np.ascontiguousarray(mat[rows])
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        size = out.itemsize * self.shape[1]
        view = memoryview(out).cast("B")
        for i, row in enumerate(rows.tolist()):
            if os.preadv(self._fd, [view[i * size : (i + 1) * size]], self.offset + row * size) != size:
                raise StorageError(self.path, f"row {row} is cut short", "read")
        return out

    def inner_products(self, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``q``'s inner product with each of ``rows`` (part-local), by ``_inner_products``."""
        faiss = _faiss()
        if len(rows) > _READ_ROWS:
            with self.mapped() as mat:
                return _inner_products(faiss, q, faiss.swig_ptr(mat), np.ascontiguousarray(rows, np.int64))
        mat = self.take(rows)
        return _inner_products(faiss, q, faiss.swig_ptr(mat), np.arange(len(rows), dtype=np.int64))

    @contextmanager
    def mapped(self) -> Iterator[np.ndarray]:
        """All rows as a read-only array, valid inside the ``with``; the mapping goes when the last
        reference to it does (copies of rows taken from it stay valid)."""
        if not self.shape[0]:
            yield np.zeros(self.shape, dtype=np.float32)
            return
        whole = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        yield np.frombuffer(whole, dtype=np.float32, count=self.shape[0] * self.shape[1],
                            offset=self.offset).reshape(self.shape)


@dataclass
class _Part:
    """One faiss index of a ``VectorIndex`` (the base, or the delta) and the first row it holds."""

    index: Any
    start: int
    flat: Any = None  # its flat inner-product storage (the index, or HNSW's); None for another kind
    exact: _ExactRows | None = None  # an 8-bit index's float32 rows
    codes: Any = None  # an 8-bit index's storage (``IndexScalarQuantizer``)
    step: np.ndarray | None = None  # per dimension, the most a code's value is off its row's (half a step)

    @property
    def stop(self) -> int:
        return self.start + int(self.index.ntotal)

    def slack(self, q: np.ndarray) -> float:
        """The most an 8-bit score of ``q`` is off the float32 score, for any row of this part (each
        dimension's error is within half of its quantisation step), with room for float rounding."""
        if self.step is None:
            return 0.0
        return float(np.abs(q).astype(np.float64) @ self.step) * 1.001 + 1e-4


class VectorIndex:
    """A read-only, thread-safe view of a written vector index (a base, and a delta when the build has one).

    ``ids[row]`` is the paragraph id of every row, "" for a base row the delta removed; ``len`` counts the
    live rows."""

    def __init__(self, index: Any, ids: Sequence[str], kind: str, *, ef_search: int = HNSW_EF_SEARCH,
                 delta: Any = None, removed: Sequence[int] = (), exact: _ExactRows | None = None):
        faiss = _faiss()
        self._index = index  # the base
        self.ids = ids if isinstance(ids, IdTable) else IdTable(ids)
        self.kind = kind
        self.dim = int(index.d)
        self.ef_search = ef_search
        self._parts = [_base_part(faiss, index, exact)]
        if delta is not None:
            self._parts.append(_Part(delta, int(index.ntotal), _flat_of(faiss, delta)))
        self._removed = np.asarray(sorted(removed), dtype=np.int64)
        self._live = self.ids.live
        self._base_selector: Any = None
        if len(self._removed):  # the base's live rows, for faiss to search among (kept alive here)
            bitmap = np.ones(int(index.ntotal), dtype=bool)
            bitmap[self._removed] = False
            self._bits = np.packbits(bitmap, bitorder="little")
            self._base_selector = faiss.IDSelectorBitmap(len(self._bits), faiss.swig_ptr(self._bits))

    @classmethod
    def open(cls, folder: Path, *, ef_search: int = HNSW_EF_SEARCH) -> VectorIndex:
        """Load the files, checking they exist and agree with each other."""
        faiss = _faiss()
        folder = Path(folder)
        vec_path, ids_path = folder / VECTORS, folder / VECTOR_IDS
        for path in (vec_path, ids_path):
            if not path.is_file():
                raise IndexMissing(f"vector index file {path} is missing; run `personae build`")
        meta = _read_meta(ids_path)
        ids = meta["ids"]
        index = _read_faiss(faiss, vec_path, len(ids), folder, meta.get("dim"))
        kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        exact = None
        if _flat_of(faiss, index) is None:  # 8-bit: the float32 rows are in their own file
            if not (folder / VECTORS_EXACT).is_file():
                raise IndexMissing(f"vector index file {folder / VECTORS_EXACT} is missing; "
                                   "run `personae build`")
            exact = _ExactRows(folder / VECTORS_EXACT, int(index.ntotal), int(index.d))
        delta, removed = None, ()
        if (folder / VECTORS_DELTA_IDS).is_file():
            meta = _read_meta(folder / VECTORS_DELTA_IDS)
            delta_ids = meta["ids"]
            removed = meta.get("removed", [])
            if meta.get("base_count") != len(ids) or not all(0 <= r < len(ids) for r in removed):
                raise IndexFormatMismatch(f"{folder / VECTORS_DELTA_IDS} does not fit the base "
                                          f"{VECTORS}; run `personae build --full`")
            delta = _read_faiss(faiss, folder / VECTORS_DELTA, len(delta_ids), folder, meta.get("dim"))
            if delta.d != index.d:
                raise IndexFormatMismatch(f"vector index at {folder} is inconsistent: delta dimension "
                                          f"{delta.d}, base {index.d}; run `personae build --full`")
            dead = set(removed)
            ids = [("" if row in dead else pid) for row, pid in enumerate(ids)] + delta_ids
        del meta  # the ids' strings (and the keys') go before the table of them is built
        return cls(index, IdTable(ids), kind, ef_search=ef_search, delta=delta, removed=removed, exact=exact)

    def __len__(self) -> int:
        return self._live

    @property
    def base_count(self) -> int:
        """Rows in the base index (live or not)."""
        return int(self._index.ntotal)

    def live_ids(self) -> list[str]:
        """The paragraph id of every live row, in row order."""
        return [pid for pid in self.ids if pid]

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows`` (float32, exact: flat and HNSW-flat indexes keep raw rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for part in self._parts:
            at = np.flatnonzero((rows >= part.start) & (rows < part.stop))
            if part.exact is not None and len(at):
                out[at] = part.exact.take(rows[at] - part.start)
                continue
            for lo in range(0, len(at), _SUBSET_CHUNK):
                chunk = at[lo : lo + _SUBSET_CHUNK]
                out[chunk] = part.index.reconstruct_batch(rows[chunk] - part.start)
        return out

    def search(self, qvec: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest paragraph ids to ``qvec`` (dim,) or (1, dim), with cosine scores, best first."""
        return self.search_many(np.asarray(qvec, dtype=np.float32).reshape(1, -1), k)[0]

    def search_subset(self, qvec: np.ndarray, ids: Sequence[str], k: int) -> list[tuple[str, float]]:
        """Exact top ``k`` among ``ids`` only (a filtered search): nothing allowed is ever missed, even on
        an HNSW index. Unknown ids are ignored. Cost is linear in ``len(ids)``; ties keep ``ids`` order.
        """
        rows = self.rows_of(ids)
        rows = rows[rows >= 0]
        _, first = np.unique(rows, return_index=True)
        return self.search_rows(qvec, rows[np.sort(first)], k)

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """The row of each id (-1 for an id without a vector)."""
        return self.ids.rows_of(ids)

    def search_rows(self, qvec: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[str, float]]:
        """``search_subset`` over row numbers (distinct, in tie order), as the query side's filters hold
        them: no id lookups.

        Every allowed row is scored by faiss's inner product one row at a time (the same value whatever
        else is scored with it). Large subsets: faiss's flat scan, limited to the rows by a bitmap, finds
        the ``2k + 16`` best without copying vectors; when the last of them scores strictly below the
        ``k``-th, no row left out can reach the top ``k``, so the answer is the full scan's. Otherwise (a
        crowd of equal scores at the cut) every row is scored. (A delta's rows are few: all are scored.)
        """
        q = self._check_queries(np.asarray(qvec, dtype=np.float32).reshape(1, -1))[0]
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        k = min(int(k), len(rows))
        if k <= 0:
            return []
        if len(rows) >= _SELECT_FROM:
            picked = self._select(q, rows, k)
            if picked is not None:
                return picked
        return self._scan(q, rows, k)

    def _scores(self, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Inner products of ``q`` with ``rows``, each computed on its own (faiss's per-vector kernel, or
        numpy row by row for an index without flat storage)."""
        out = np.empty(len(rows), dtype=np.float32)
        faiss = _faiss()
        q = np.ascontiguousarray(q, dtype=np.float32)
        for part in self._parts:
            at = np.flatnonzero((rows >= part.start) & (rows < part.stop))
            if not len(at):
                continue
            local = np.ascontiguousarray(rows[at] - part.start)
            if part.flat is not None:
                out[at] = _inner_products(faiss, q, part.flat.get_xb(), local)
            elif part.exact is not None:
                out[at] = part.exact.inner_products(q, local)
            else:
                out[at] = np.einsum("ij,j->i", self.vectors(rows[at]), q)
        return out

    def _scan(self, q: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Top ``k`` of ``rows`` (every one scored), best first, ties in ``rows`` order, at the cut too."""
        scores = self._scores(q, np.ascontiguousarray(rows, dtype=np.int64))
        if k < len(rows):
            part = np.argpartition(-scores, k - 1)[:k]
            top = np.flatnonzero(scores >= scores[part].min())  # ties at the cut stay: position decides
        else:
            top = np.arange(len(rows))
        top = top[np.lexsort((top, -scores[top]))][:k]  # score descending, then position in ``ids``
        return [(self.ids[rows[i]], float(scores[i])) for i in top.tolist()]

    def _select(self, q: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[str, float]] | None:
        """``_scan``'s answer from the rows faiss picks in the base (see ``search_rows``) and every row
        asked for in the delta, or None to scan them all."""
        faiss = _faiss()
        base = self._parts[0]
        finder = base.flat if base.flat is not None else base.codes
        if finder is None:
            return None
        in_base = rows < base.stop
        base_rows, others = rows[in_base], rows[~in_base]
        fetch = min(len(base_rows), 2 * k + 16)
        if fetch <= 0:
            return None
        bitmap = np.zeros(base.stop, dtype=bool)
        bitmap[base_rows] = True
        packed = np.packbits(bitmap, bitorder="little")
        params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(packed), faiss.swig_ptr(packed)))
        position = np.full(len(self.ids), -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        slack = base.slack(q)
        while True:
            scores, found = finder.search(q.reshape(1, -1), fetch, params=params)
            found = found[0][found[0] >= 0]
            if len(found) < fetch:
                return None
            cand = np.concatenate([found, others])
            cand = cand[np.argsort(position[cand], kind="stable")]  # in ``rows`` order: the same tie rule
            top = self._scan(q, cand, k)
            # a row left out scores (exactly) at most the last picked one's score plus the codes' error
            if fetch == len(base_rows) or float(scores[0][-1]) + slack < float(np.float32(top[-1][1])):
                return top
            if fetch * 4 > len(base_rows) // 2:
                return None
            fetch *= 4

    def _check_queries(self, qvecs: np.ndarray) -> np.ndarray:
        qvecs = np.ascontiguousarray(np.asarray(qvecs, dtype=np.float32))
        if qvecs.ndim != 2:
            raise PersonaeError(f"query vectors must be 2-d (m, dim), got shape {qvecs.shape}")
        if qvecs.shape[1] != self.dim:
            raise IndexFormatMismatch(
                f"query vectors have dimension {qvecs.shape[1]} but the index has {self.dim}: the index was "
                "built with another model; run `personae build`"
            )
        return qvecs

    def search_many(self, qvecs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """``search`` for each row of ``qvecs`` (m, dim) in one call (used by benchmarks and evaluation).

        With a delta: the base is searched among its live rows only, the delta exactly, and the two
        lists merged by score (ties: the lower row first, as within one faiss index)."""
        qvecs = self._check_queries(qvecs)
        k = min(int(k), len(self))
        if k <= 0 or len(qvecs) == 0:
            return [[] for _ in range(len(qvecs))]
        faiss = _faiss()
        found: list[tuple[np.ndarray, np.ndarray]] = []
        for part in self._parts:
            kk = min(k, int(part.index.ntotal))
            if kk <= 0:
                continue
            sel = self._base_selector if part.start == 0 else None
            if self.kind == "hnsw" and part.start == 0:
                fetch = kk if part.exact is None else min(max(_RERANK * kk, _RERANK_MIN), part.stop)
                # Per-call params rather than mutating index.hnsw.efSearch: safe under concurrent searches.
                params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch))
                if sel is not None:
                    params.sel = sel
                scores, rows = part.index.search(qvecs, fetch, params=params)
                if part.exact is not None:
                    scores, rows = self._rescored(part, qvecs, rows, kk)
            elif sel is not None:
                scores, rows = part.index.search(qvecs, kk, params=faiss.SearchParameters(sel=sel))
            else:
                scores, rows = part.index.search(qvecs, kk)
            found.append((scores, np.where(rows >= 0, rows + part.start, -1)))
        if len(found) == 1:
            scores, rows = found[0]
        else:
            scores = np.concatenate([f[0] for f in found], axis=1)
            rows = np.concatenate([f[1] for f in found], axis=1)
            order = np.lexsort((np.where(rows >= 0, rows, np.iinfo(np.int64).max), -scores), axis=1)[:, :k]
            scores, rows = np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)
        ids = self.ids
        return [
            [(ids[r], float(s)) for r, s in zip(row_ids, row_scores, strict=True) if r >= 0]
            for row_ids, row_scores in zip(rows.tolist(), scores.tolist(), strict=True)
        ]


    def _rescored(self, part: _Part, qvecs: np.ndarray, rows: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best of each query's candidate ``rows`` (part-local, -1 for none) by their float32
        scores, best first (ties: the lower row first); -1 and -inf pad a short list."""
        out_scores = np.full((len(qvecs), k), -np.inf, dtype=np.float32)
        out_rows = np.full((len(qvecs), k), -1, dtype=np.int64)
        for i, (q, cand) in enumerate(zip(qvecs, rows, strict=True)):
            cand = np.ascontiguousarray(cand[cand >= 0], dtype=np.int64)
            got = part.exact.inner_products(np.ascontiguousarray(q), cand)
            order = np.lexsort((cand, -got))[:k]
            out_scores[i, : len(order)], out_rows[i, : len(order)] = got[order], cand[order]
        return out_scores, out_rows


def _inner_products(faiss: Any, q: np.ndarray, base: Any, local: np.ndarray) -> np.ndarray:
    """``q``'s inner product with rows ``local`` of the float32 matrix at pointer ``base``, each computed
    on its own (the same value whatever else is scored with it)."""
    got = np.empty(len(local), dtype=np.float32)
    if len(local):
        faiss.fvec_inner_products_by_idx(faiss.swig_ptr(got), faiss.swig_ptr(q), base, faiss.swig_ptr(local),
                                         int(q.shape[-1]), 1, len(local))
    return got


def _base_part(faiss: Any, index: Any, exact: _ExactRows | None) -> _Part:
    """The base's ``_Part``: its flat storage, or its 8-bit codes, float32 rows and quantisation step."""
    part = _Part(index, 0, _flat_of(faiss, index), exact)
    if part.flat is None and exact is not None:
        part.codes = faiss.downcast_index(index.storage)
        trained = faiss.vector_to_array(part.codes.sq.trained)
        part.step = trained[index.d :].astype(np.float64) / 510.0  # half of range / 255 per dimension
    return part


def _read_meta(ids_path: Path) -> dict[str, Any]:
    """An ids file's content, checked: a list of string ids, this vector format, an integer dimension."""
    try:
        meta = json.loads(ids_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise IndexFormatMismatch(f"{ids_path} is unreadable ({err}); run `personae build`") from None
    if isinstance(meta, list):  # tolerate a bare id list
        meta = {"format": VECTORS_FORMAT, "ids": meta}
    ids = meta.get("ids") if isinstance(meta, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise IndexFormatMismatch(f"{ids_path} has no list of string ids; run `personae build`")
    if meta.get("format", VECTORS_FORMAT) not in _READABLE_FORMATS:
        raise IndexFormatMismatch(
            f"{ids_path} has vector format {meta.get('format')}, expected {VECTORS_FORMAT}; "
            "run `personae build`"
        )
    if "dim" in meta and not isinstance(meta["dim"], int):
        raise IndexFormatMismatch(f"{ids_path} has no integer dimension; run `personae build`")
    return meta


def _read_faiss(faiss: Any, vec_path: Path, n_ids: int, folder: Path, meta_dim: Any) -> Any:
    if not vec_path.is_file():
        raise IndexMissing(f"vector index file {vec_path} is missing; run `personae build`")
    try:
        index = faiss.read_index(str(vec_path), _mmap_flag(faiss))
    except Exception as err:  # faiss raises RuntimeError with a C++ backtrace in the message
        raise IndexFormatMismatch(
            f"{vec_path} is unreadable ({_faiss_cause(err)[:200]}); run `personae build`"
        ) from None
    if index.ntotal != n_ids:
        raise IndexFormatMismatch(
            f"vector index at {folder} is inconsistent: {index.ntotal} vectors but {n_ids} ids; "
            "run `personae build`"
        )
    if meta_dim is not None and meta_dim != index.d:
        raise IndexFormatMismatch(
            f"vector index at {folder} is inconsistent: dimension {index.d}, ids file says "
            f"{meta_dim}; run `personae build`"
        )
    return index


def _flat_of(faiss: Any, index: Any) -> Any:
    """The flat inner-product storage that holds every vector of ``index`` (itself, or HNSW's); None for
    another kind of index."""
    flat = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
    ok = isinstance(flat, faiss.IndexFlat) and flat.metric_type == faiss.METRIC_INNER_PRODUCT
    return flat if ok and flat.ntotal == index.ntotal else None
