"""The one interface the query side needs from a storage engine.

Every method returns paragraph ids with scores, best first; filters are conjunctive: ``entities`` = every
id must be linked in the paragraph, ``said`` = every id must be a quote's speaker in it, and ``restrict``
(exclusions, a date range; ``index.keyword.Restrict``) says what else a result may not be. Scores are only
comparable within one call (fusion works on ranks or min-max normalised scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from index.keyword import Matches, Restrict

Hits = list[tuple[str, float]]
__all__ = ["Backend", "Hits", "Matches", "Restrict"]


@runtime_checkable
class Backend(Protocol):
    name: str

    def warm(self) -> None:
        """Load or read ahead what the first queries would otherwise wait for (servers call it at start)."""
        ...

    def parse(self, text: str) -> Any:
        """User query text (quoted phrases, AND/OR/NOT, -term) → this engine's query; None if no terms."""
        ...

    def keyword(
        self, query: Any, k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> Hits:
        """BM25 top ``k``. ``query`` is text or what ``parse`` returned; None with filters = every match."""
        ...

    def vector(
        self, qvec: np.ndarray, k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> Hits:
        """Nearest ``k`` by cosine; a filtered search never loses an allowed paragraph to the filter."""
        ...

    def entity(
        self, entity_ids: Sequence[str], k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> Hits:
        """Paragraphs linked to any of ``entity_ids``, BM25 on the entity field (fewer links rank higher)."""
        ...

    def count(
        self, query: Any, *, entities: Sequence[str] = (), said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> int:
        """How many paragraphs ``keyword`` could return (0 for no query and no filter)."""
        ...

    def matches(
        self, query: Any, *, entity_ids: Sequence[str] = (), entities: Sequence[str] = (),
        said: Sequence[str] = (), restrict: Restrict | None = None,
    ) -> Matches | None:
        """Every paragraph the keyword leg (``query``) or, with ``entity_ids``, the entity leg could
        return, with its document and date: what grouped results page through. None where the engine
        cannot enumerate matches (the caller then pages through the fused window only)."""
        ...

    def matching(self, query: Any, pids: Sequence[str]) -> set[str] | None:
        """Which of ``pids`` match ``query`` (what ``parse`` returned), filters aside; None where the engine
        cannot tell without a search (the caller then searches)."""
        ...

    # Needed only where ``matches`` returns ``Matches`` (the searcher calls them for those results):
    def locate(self, pids: Sequence[str]) -> Matches:
        """``Matches`` (scores 0) for the given paragraph ids, in their order."""
        ...

    def doc_names(self) -> list[str]:
        """Every document id, indexed by ``Matches.doc_ords`` value."""
        ...

    def entity_counts(self, docnums: np.ndarray) -> dict[str, int]:
        """Per entity id, how many of the paragraphs ``docnums`` (``Matches.docnums``; a repeat counts
        once) link to it."""
        ...

    def entity_count_array(self, docnums: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """``entity_counts`` as counts per entity ordinal, and the entity id of each ordinal."""
        ...

    def doc_name(self, ordinal: int) -> str:
        """The document id of a ``Matches.doc_ords`` value."""
        ...

    def paragraph_ids(self, docnums: Sequence[int]) -> list[str]:
        """Paragraph ids of ``Matches.docnums`` values."""
        ...

    def entity_paragraphs(self, entity_id: str, field: str = "entity") -> list[str]:
        """Every paragraph linked to (``field="entity"``) or quoting (``"said"``) ``entity_id``."""
        ...

    def vector_count(self) -> int:
        """Number of paragraphs with a vector (0: the vector leg is off)."""
        ...

    def close(self) -> None: ...
