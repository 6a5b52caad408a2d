"""The default backend: the Whoosh keyword index and FAISS vector index inside a build folder.

A thin wrapper, so the query side behaves exactly as it did before backends existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index import layout
from index.keyword import KeywordIndex
from search.backends.base import Hits


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, keyword: KeywordIndex, vectors: Any):
        self.keyword_index = keyword
        self.vectors = vectors  # a VectorIndex, or None when the build has no vectors

    @classmethod
    def open(cls, folder: Path, *, b: float = 0.75, k1: float = 1.2) -> EmbeddedBackend:
        keyword = KeywordIndex(folder / layout.WHOOSH_DIR, b=b, k1=k1)
        vectors = None
        if (folder / layout.VECTORS).exists():
            from index.vectors import VectorIndex

            vectors = VectorIndex.open(folder)
        return cls(keyword, vectors)

    def parse(self, text: str) -> Any:
        return self.keyword_index.parse(text)

    def _query(self, query: Any) -> Any:
        return self.keyword_index.parse(query) if isinstance(query, str) else query

    def keyword(self, query: Any, k: int, *, entities: Sequence[str] = (), said: Sequence[str] = ()) -> Hits:
        return self.keyword_index.search(self._query(query), k, entities=entities, said=said)

    def vector(
        self, qvec: np.ndarray, k: int, *, entities: Sequence[str] = (), said: Sequence[str] = ()
    ) -> Hits:
        if self.vectors is None or not len(self.vectors):
            return []
        if not (entities or said):
            return self.vectors.search(qvec, k)
        # Filtered: score only the allowed paragraphs, exactly (so a filter never loses a hit to HNSW).
        allowed = [pid for pid, _ in self.keyword_index.search(None, 10**9, entities=entities, said=said)]
        return self.vectors.search_subset(qvec, allowed, k) if allowed else []

    def entity(
        self, entity_ids: Sequence[str], k: int, *, entities: Sequence[str] = (), said: Sequence[str] = ()
    ) -> Hits:
        if not entity_ids:
            return []
        from whoosh.query import Or, Term

        return self.keyword_index.search(Or([Term("entity", e) for e in entity_ids]), k,
                                         entities=entities, said=said)

    def count(self, query: Any, *, entities: Sequence[str] = (), said: Sequence[str] = ()) -> int:
        return self.keyword_index.count(self._query(query), entities=entities, said=said)

    def entity_paragraphs(self, entity_id: str, field: str = "entity") -> list[str]:
        return self.keyword_index.entity_paragraphs(entity_id, field)

    def vector_count(self) -> int:
        return 0 if self.vectors is None else len(self.vectors)

    def close(self) -> None:
        self.keyword_index.close()
