"""The shapes a search returns: ``SearchRequest`` in, ``SearchResult`` (of ``Group`` and ``Hit``) out.

The API serialises these with ``to_dict()`` (the JSON shape described in ``web/openapi.py``); the page
and the exports read the same objects, so a new parameter or field is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GROUP_HITS = 3  # paragraphs shown per document in grouped results


@dataclass(frozen=True)
class SearchRequest:
    """Everything a caller can ask of ``Searcher.run``. Checked by ``Searcher.run`` (BadQuery)."""

    q: str = ""
    limit: int = 10
    offset: int = 0
    mode: str = "hybrid"
    fusion: str | None = None
    entities: tuple[str, ...] = ()
    said: tuple[str, ...] = ()
    group: bool = False
    link_query: bool = True
    date_from: str | None = None  # ISO date (YYYY, YYYY-MM or YYYY-MM-DD), inclusive
    date_to: str | None = None  # ISO date, inclusive (YYYY-MM means to the end of that month)
    sort: str = "relevance"  # or "date": newest first, undated last
    duplicates: str = "collapse"  # or "show"

    def with_page(self, *, limit: int, offset: int) -> SearchRequest:
        from dataclasses import replace

        return replace(self, limit=limit, offset=offset)


@dataclass
class Hit:
    """One paragraph in the results."""

    paragraph_id: str
    doc_id: str
    n: int
    title: str
    date: str | None
    source: str | None
    url: str | None
    score: float
    text: str
    snippet: str  # HTML: escaped text with <mark> and entity links (search.snippets.highlight)
    entities: list[str]
    matched_entities: list[str]
    quotes: list[dict[str, Any]]
    explain: dict[str, dict[str, float] | None]
    page: int | None = None  # PDFs: the page (1-based) the paragraph starts on
    page_end: int | None = None  # and the last page, when it runs across a page break

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Group:
    """One document in grouped results: its best paragraphs and how many more matched."""

    doc_id: str
    title: str
    date: str | None
    source: str | None
    score: float
    hits: list[Hit]
    more: int = 0
    similar: list[dict[str, Any]] = field(default_factory=list)  # near-duplicate documents collapsed here

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["hits"] = [h.to_dict() for h in self.hits]
        return d


@dataclass
class SearchResult:
    """A page of results plus what the page needs around it (facets, linked names, the histogram)."""

    query: str
    mode: str
    fusion: str | None
    offset: int
    limit: int
    filters: dict[str, Any]
    unknown_entities: list[str]
    linked: list[dict[str, Any]]
    legs: list[str]
    facets: dict[str, list[dict[str, Any]]]
    total: int
    hits: list[Hit] = field(default_factory=list)
    groups: list[Group] | None = None
    took_ms: float = 0.0
    facet_scope: str = "window"  # "matches": keyword/entity matches + vector window; "window": fused window
    sort: str = "relevance"
    timeline_unit: str = "month"
    timeline: list[tuple[str, int]] = field(default_factory=list)  # (period, documents), every period

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "query": self.query,
            "mode": self.mode,
            "fusion": self.fusion,
            "offset": self.offset,
            "limit": self.limit,
            "filters": self.filters,
            "unknown_entities": self.unknown_entities,
            "linked": self.linked,
            "legs": self.legs,
            "facets": self.facets,
            "facet_scope": self.facet_scope,
            "total": self.total,
            "sort": self.sort,
            "timeline": {"unit": self.timeline_unit,
                         "bins": [{"period": p, "count": n} for p, n in self.timeline]},
            "hits": [h.to_dict() for h in self.hits],
        }
        if self.groups is not None:
            d["groups"] = [g.to_dict() for g in self.groups]
        d["took_ms"] = self.took_ms
        return d
