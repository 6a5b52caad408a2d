"""The default backend: the Whoosh keyword index and FAISS vector index inside a build folder.

A thin wrapper, so the query side behaves exactly as it did before backends existed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from index import layout
from index.keyword import KeywordIndex, Matches, Restrict
from search.backends.base import Hits

EXACT_SUBSET = 20_000  # allowed paragraphs up to which a restricted vector search scores them all exactly


@contextmanager
def _one_faiss_thread() -> Iterator[None]:
    """FAISS with one OpenMP thread in the calling thread (OpenMP's thread count is per thread), restored
    after. One query vector gives FAISS nothing to split, yet each parallel region waits at a barrier for a
    thread the other core may not have free: a filtered search measured 12–13 ms median with two threads
    and 3.4–4.2 ms with one on the shared 2-core box, the same hits (benchmarks/README.md)."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _entity_query(entity_ids: Sequence[str]) -> Any:
    from whoosh.query import Or, Term

    return Or([Term("entity", e) for e in entity_ids])


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, keyword: KeywordIndex, vectors: Any, folder: Path | None = None):
        self.folder = folder  # the build folder, when opened from one
        self.keyword_index = keyword
        self.vectors = vectors  # a VectorIndex, or None when the build has no vectors
        self._rows: np.ndarray | None = None

    @classmethod
    def open(cls, folder: Path, *, b: float = 0.75, k1: float = 1.2) -> EmbeddedBackend:
        keyword = KeywordIndex(folder / layout.WHOOSH_DIR, b=b, k1=k1, postings=folder / layout.POSTINGS_DIR)
        vectors = None
        if (folder / layout.VECTORS).exists():
            from index.vectors import VectorIndex

            vectors = VectorIndex.open(folder)
        return cls(keyword, vectors, folder)

    def parse(self, text: str) -> Any:
        return self.keyword_index.parse(text)

    def _query(self, query: Any) -> Any:
        return self.keyword_index.parse(query) if isinstance(query, str) else query

    def keyword(self, query: Any, k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
                restrict: Restrict | None = None) -> Hits:
        return self.keyword_index.search(self._query(query), k, entities=entities, said=said,
                                         restrict=restrict)

    def vector(
        self, qvec: np.ndarray, k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> Hits:
        if self.vectors is None or not len(self.vectors):
            return []
        with _one_faiss_thread():
            return self._vector(qvec, k, entities=entities, said=said, restrict=restrict)

    def _vector(self, qvec: np.ndarray, k: int, *, entities: Sequence[str], said: Sequence[str],
                restrict: Restrict | None) -> Hits:
        if not (entities or said or restrict):
            return self.vectors.search(qvec, k)
        ki = self.keyword_index
        # Filtered: score only the allowed paragraphs, exactly (so a filter never loses a hit to HNSW).
        mask = ki.allowed(restrict or Restrict(), entities=entities, said=said)
        n_ok = int(mask.sum())
        if restrict and n_ok > EXACT_SUBSET and n_ok * 2 > len(mask):
            # Most paragraphs allowed (an exclusion, a wide date range): the ANN over-fetches, and the mask
            # (a lookup per hit) keeps the allowed ones; too few left means the exact scan below.
            fetch = min(len(self.vectors), int(1.5 * k * len(mask) / n_ok) + 50)  # ~k allowed expected
            hits = self.vectors.search(qvec, fetch)
            docnums = ki.docnums_of([pid for pid, _ in hits])
            kept = [h for h, d in zip(hits, docnums.tolist(), strict=True) if d >= 0 and mask[d]]
            if len(kept) >= min(k, n_ok):
                return kept[:k]
        if not n_ok:
            return []
        rows = self._docnum_rows(len(mask))[np.flatnonzero(mask)]  # docnum order, as ids were listed before
        return self.vectors.search_rows(qvec, rows[rows >= 0], k)

    def warm(self) -> None:
        """Build what the first filtered vector search would build while a user waits (the vector row of
        every keyword docnum), and ask the kernel to read the vector and posting files ahead (the page cache
        is cold after a reboot or when the machine has dropped it)."""
        if self.folder is not None:
            layout.read_ahead([*sorted((self.folder / layout.POSTINGS_DIR).rglob("*.npy")),
                               *(self.folder / name for name in layout.VECTOR_FILES)])
        if self.vectors is not None and len(self.vectors):
            self._docnum_rows(len(self.keyword_index.allowed(Restrict())))

    def _docnum_rows(self, n: int) -> np.ndarray:
        """The vector row of each of the ``n`` keyword docnums (-1: no vector), built once per build."""
        if self._rows is None or len(self._rows) != n:
            self._rows = self.vectors.rows_of(self.keyword_index.allowed_ids(np.ones(n, dtype=bool)))
        return self._rows

    def entity(
        self, entity_ids: Sequence[str], k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> Hits:
        if not entity_ids:
            return []
        return self.keyword_index.search(_entity_query(entity_ids), k, entities=entities, said=said,
                                         restrict=restrict)

    def count(self, query: Any, *, entities: Sequence[str] = (), said: Sequence[str] = (),
              restrict: Restrict | None = None) -> int:
        return self.keyword_index.count(self._query(query), entities=entities, said=said, restrict=restrict)

    def matches(
        self, query: Any, *, entity_ids: Sequence[str] = (), entities: Sequence[str] = (),
        said: Sequence[str] = (), restrict: Restrict | None = None,
    ) -> Matches | None:
        q = _entity_query(entity_ids) if entity_ids else self._query(query)
        if q is None and not (entities or said):
            return None
        return self.keyword_index.matches(q, entities=entities, said=said, restrict=restrict)

    def matching(self, query: Any, pids: Sequence[str]) -> set[str] | None:
        return self.keyword_index.matching(self._query(query), pids) if pids else set()

    def locate(self, pids: Sequence[str]) -> Matches:
        return self.keyword_index.locate(pids)

    def doc_names(self) -> list[str]:
        return self.keyword_index.doc_names()

    def entity_counts(self, docnums: np.ndarray) -> dict[str, int]:
        return self.keyword_index.entity_counts(docnums)

    def entity_count_array(self, docnums: np.ndarray) -> tuple[np.ndarray, list[str]]:
        return self.keyword_index.entity_count_array(docnums)

    def doc_name(self, ordinal: int) -> str:
        return self.keyword_index.doc_name(ordinal)

    def paragraph_ids(self, docnums: Sequence[int]) -> list[str]:
        return self.keyword_index.paragraph_ids(docnums)

    def entity_paragraphs(self, entity_id: str, field: str = "entity") -> list[str]:
        return self.keyword_index.entity_paragraphs(entity_id, field)

    def vector_count(self) -> int:
        return 0 if self.vectors is None else len(self.vectors)

    def close(self) -> None:
        self.keyword_index.close()
