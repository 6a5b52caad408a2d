"""The vector leg's on-disk index: ``vectors.faiss`` (faiss) + ``vector_ids.json`` (row → paragraph id).

Rows are L2-normalised, so inner product is cosine. Up to ``hnsw_threshold`` rows the index is exact
(``IndexFlatIP``: brute force is sub-millisecond-per-query territory at news-archive sizes and has perfect
recall); above it ``IndexHNSWFlat``. HNSW parameters were measured on 5k random unit vectors in 384-d
(a worst case: real embeddings cluster and are easier): M=32, efConstruction=128, efSearch=256 gives
recall@10 ≈ 0.997 vs exact at ~0.1 ms/query on 2 cores; efSearch=128 only reaches ≈ 0.96.

``vector_ids.json`` also records kind/dim/count so ``open`` can tell a torn or mismatched pair of files
from a good one before a query is ever run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexFormatMismatch, IndexMissing, PersonaeError, StorageError

VECTORS = "vectors.faiss"  # the build folder's files this module owns (index/layout.py lists them all)
VECTOR_IDS = "vector_ids.json"
VECTORS_FORMAT = 1
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
HNSW_EF_SEARCH = 256
_SUBSET_CHUNK = 8192
_SELECT_FROM = 2048  # allowed rows from which a filtered search lets faiss pick candidates (search_rows)


def _faiss() -> Any:
    import faiss  # imported lazily: importing it costs ~0.3 s and not every command needs it

    return faiss


def write_vector_index(folder: Path, vectors: np.ndarray, ids: list[str], *, hnsw_threshold: int) -> dict:
    """Write ``vectors`` (n, dim) with row ``i`` labelled ``ids[i]``; returns ``{"kind", "count", "dim"}``.

    Vectors are expected L2-normalised (the encoder guarantees it); they are not renormalised here so a
    caller's mistake shows up in tests rather than being hidden.
    """
    faiss = _faiss()
    folder = Path(folder)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise PersonaeError(f"vectors must be a 2-d array (n, dim), got shape {vectors.shape}")
    count, dim = vectors.shape
    if count != len(ids):
        raise PersonaeError(f"{count} vectors but {len(ids)} ids")
    if len(set(ids)) != len(ids):
        raise PersonaeError("vector ids are not unique")
    if count and not np.isfinite(vectors).all():
        raise PersonaeError("vectors contain NaN or infinite values")
    vectors = np.ascontiguousarray(vectors)

    if count > hnsw_threshold:
        kind = "hnsw"
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        kind = "flat"
        index = faiss.IndexFlatIP(dim)
    if count:
        index.add(vectors)

    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": VECTORS_FORMAT, "kind": kind, "dim": dim, "count": count, "ids": list(ids)}
    tmp_vectors = folder / (VECTORS + ".tmp")
    tmp_ids = folder / (VECTOR_IDS + ".tmp")
    _write_faiss(faiss, index, tmp_vectors)
    tmp_ids.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp_vectors, folder / VECTORS)
    os.replace(tmp_ids, folder / VECTOR_IDS)
    return {"kind": kind, "count": count, "dim": dim}


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


class VectorIndex:
    """A read-only, thread-safe view of a written vector index."""

    def __init__(self, index: Any, ids: list[str], kind: str, *, ef_search: int = HNSW_EF_SEARCH):
        self._index = index
        self.ids = ids
        self.kind = kind
        self.dim = int(index.d)
        self.ef_search = ef_search
        self._rows = {pid: row for row, pid in enumerate(ids)}
        self._flat_storage: tuple[Any] | None = None

    @classmethod
    def open(cls, folder: Path, *, ef_search: int = HNSW_EF_SEARCH) -> VectorIndex:
        """Load both files, checking they exist and agree with each other."""
        faiss = _faiss()
        folder = Path(folder)
        vec_path, ids_path = folder / VECTORS, folder / VECTOR_IDS
        for path in (vec_path, ids_path):
            if not path.is_file():
                raise IndexMissing(f"vector index file {path} is missing; run `personae build`")
        try:
            meta = json.loads(ids_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise IndexFormatMismatch(f"{ids_path} is unreadable ({err}); run `personae build`") from None
        if isinstance(meta, list):  # tolerate a bare id list
            meta = {"format": VECTORS_FORMAT, "ids": meta}
        ids = meta.get("ids") if isinstance(meta, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise IndexFormatMismatch(f"{ids_path} has no list of string ids; run `personae build`")
        if meta.get("format", VECTORS_FORMAT) != VECTORS_FORMAT:
            raise IndexFormatMismatch(
                f"{ids_path} has vector format {meta.get('format')}, expected {VECTORS_FORMAT}; "
                "run `personae build`"
            )
        try:
            index = faiss.read_index(str(vec_path), _mmap_flag(faiss))
        except Exception as err:  # faiss raises RuntimeError with a C++ backtrace in the message
            raise IndexFormatMismatch(
                f"{vec_path} is unreadable ({_faiss_cause(err)[:200]}); run `personae build`"
            ) from None
        if index.ntotal != len(ids):
            raise IndexFormatMismatch(
                f"vector index at {folder} is inconsistent: {index.ntotal} vectors but {len(ids)} ids; "
                "run `personae build`"
            )
        if "dim" in meta and meta["dim"] != index.d:
            raise IndexFormatMismatch(
                f"vector index at {folder} is inconsistent: dimension {index.d}, ids file says "
                f"{meta['dim']}; run `personae build`"
            )
        kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        return cls(index, ids, kind, ef_search=ef_search)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, qvec: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest paragraph ids to ``qvec`` (dim,) or (1, dim), with cosine scores, best first."""
        return self.search_many(np.asarray(qvec, dtype=np.float32).reshape(1, -1), k)[0]

    def search_subset(self, qvec: np.ndarray, ids: Sequence[str], k: int) -> list[tuple[str, float]]:
        """Exact top ``k`` among ``ids`` only (a filtered search): nothing allowed is ever missed, even on
        an HNSW index. Unknown ids are ignored. Cost is linear in ``len(ids)``; ties keep ``ids`` order.
        """
        rows: list[int] = []
        seen: set[int] = set()
        for pid in ids:
            row = self._rows.get(pid)
            if row is not None and row not in seen:
                seen.add(row)
                rows.append(row)
        return self.search_rows(qvec, np.asarray(rows, dtype=np.int64), k)

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """The row of each id (-1 for an id without a vector)."""
        return np.fromiter((self._rows.get(pid, -1) for pid in ids), dtype=np.int64, count=len(ids))

    def search_rows(self, qvec: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[str, float]]:
        """``search_subset`` over row numbers (distinct, in tie order), as the query side's filters hold
        them: no id lookups.

        Every allowed row is scored by faiss's inner product one row at a time (the same value whatever
        else is scored with it). Large subsets: faiss's flat scan, limited to the rows by a bitmap, finds
        the ``2k + 16`` best without copying vectors; when the last of them scores strictly below the
        ``k``-th, no row left out can reach the top ``k``, so the answer is the full scan's. Otherwise (a
        crowd of equal scores at the cut) every row is scored.
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
        flat = self._flat()
        out = np.empty(len(rows), dtype=np.float32)
        if flat is None:
            for start in range(0, len(rows), _SUBSET_CHUNK):
                chunk = rows[start : start + _SUBSET_CHUNK]
                vecs = self._index.reconstruct_batch(chunk)
                out[start : start + len(chunk)] = np.einsum("ij,j->i", vecs, q)
            return out
        faiss = _faiss()
        q = np.ascontiguousarray(q, dtype=np.float32)
        faiss.fvec_inner_products_by_idx(faiss.swig_ptr(out), faiss.swig_ptr(q), flat.get_xb(),
                                         faiss.swig_ptr(rows), self.dim, 1, len(rows))
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
        """``_scan``'s answer from the rows faiss picks (see ``search_rows``), or None to scan them all."""
        faiss = _faiss()
        flat = self._flat()
        if flat is None:
            return None
        fetch = min(len(rows), 2 * k + 16)
        bitmap = np.zeros(flat.ntotal, dtype=bool)
        bitmap[rows] = True
        packed = np.packbits(bitmap, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(packed), faiss.swig_ptr(packed))
        scores, found = flat.search(q.reshape(1, -1), fetch, params=faiss.SearchParameters(sel=selector))
        found = found[0][found[0] >= 0]
        if len(found) < fetch:
            return None
        position = np.full(flat.ntotal, -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        cand = found[np.argsort(position[found], kind="stable")]  # in ``rows`` order: the same tie rule
        top = self._scan(q, cand, k)
        if fetch < len(rows) and not scores[0][-1] < np.float32(top[-1][1]):
            return None
        return top

    def _flat(self) -> Any:
        """The flat inner-product storage that holds every vector (the index itself, or HNSW's); None
        for another kind of index."""
        if self._flat_storage is None:
            faiss = _faiss()
            index = self._index
            flat = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
            ok = isinstance(flat, faiss.IndexFlat) and flat.metric_type == faiss.METRIC_INNER_PRODUCT
            self._flat_storage = (flat if ok and flat.ntotal == len(self.ids) else None,)
        return self._flat_storage[0]

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
        """``search`` for each row of ``qvecs`` (m, dim) in one call (used by benchmarks and evaluation)."""
        qvecs = self._check_queries(qvecs)
        k = min(int(k), len(self.ids))
        if k <= 0 or len(qvecs) == 0:
            return [[] for _ in range(len(qvecs))]
        if self.kind == "hnsw":
            faiss = _faiss()
            # Per-call params rather than mutating index.hnsw.efSearch: safe under concurrent searches.
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
            scores, rows = self._index.search(qvecs, k, params=params)
        else:
            scores, rows = self._index.search(qvecs, k)
        ids = self.ids
        return [
            [(ids[r], float(s)) for r, s in zip(row_ids, row_scores, strict=True) if r >= 0]
            for row_ids, row_scores in zip(rows.tolist(), scores.tolist(), strict=True)
        ]
