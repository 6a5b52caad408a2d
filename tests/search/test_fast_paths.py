"""The latency paths give the results of the straightforward ones, call for call, on the generated news
archive: posting arrays vs Whoosh's own postings, the exact-phrase guard's window test vs a full phrase
search, the filtered vector leg's faiss-picked candidates vs scoring every allowed paragraph, the match
lists read while the vector leg runs vs after fusion, snippet terms from one regex scan vs Whoosh's
analyzer."""

from __future__ import annotations

from typing import Any

import pytest

import index.vectors
import search.snippets
from search.searcher import Searcher

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("peace talks in Riyadh", {}),
    ("peace talks in Riyadh", {"group": True}),
    ("peace talks in Riyadh", {"group": True, "offset": 10}),
    ('"gas prices" pipeline', {"group": True}),
    ("storm damage -Russia", {"group": True}),
    ("storm damage -Russia", {}),
    ('football final NOT "league title"', {"group": True}),
    ("Marco Rubio summit", {"group": True, "entities": ["paris"]}),
    ("ceasefire negotiators", {"entities": ["ukraine"]}),
    ("ceasefire negotiators", {"group": True, "date_from": "2024-02", "date_to": "2024-06"}),
    ("heatwave in Europe",
     {"group": True, "entities": ["europe"], "date_from": "2023-05", "date_to": "2024-09"}),
    ("oil exports and tariffs", {"group": True, "sort": "date"}),
    ("oil exports and tariffs", {"sort": "date"}),
    ("transfer news", {"group": True, "duplicates": "show"}),
    ("power grid failure", {"mode": "keyword", "group": True}),
    ("drought forecast", {"mode": "vector", "entities": ["california"]}),
]


def _plain(settings) -> Searcher:  # type: ignore[no-untyped-def]
    """A searcher on the same build that reads postings through Whoosh and finds the window's exact phrase
    matches with a full phrase search."""
    searcher = Searcher.open(settings)
    backend = searcher._state.backend
    keyword = backend.keyword_index
    keyword._arrays = None

    def matching(query, pids):  # type: ignore[no-untyped-def]
        return {hit["id"] for hit in keyword._searcher().search(query, limit=None)} & set(pids)

    backend.matching = matching
    retrieve = searcher.retrieve
    searcher.retrieve = lambda *a, meanwhile=None, **kw: retrieve(*a, **kw)  # type: ignore[method-assign]
    return searcher


def _result(searcher: Searcher, q: str, params: dict[str, Any]) -> dict[str, Any]:
    result = searcher.search(q, limit=10, **params)
    result.pop("took_ms")
    return result


@pytest.mark.parametrize(("q", "params"), CALLS, ids=[f"{q} {p}" for q, p in CALLS])
def test_each_call_is_what_the_straightforward_paths_return(news_index, monkeypatch, q, params) -> None:
    settings, _ = news_index
    fast, plain = Searcher.open(settings), _plain(settings)
    assert fast._state.backend.keyword_index._arrays is not None  # the build wrote the posting arrays
    with monkeypatch.context() as m:
        m.setattr(search.snippets, "_CHAIN", None)  # snippet terms through Whoosh's analyzer
        want = _result(plain, q, params)
    assert want["total"] > 0
    monkeypatch.setattr(index.vectors, "_SELECT_FROM", 1)  # every filtered vector search: faiss picks
    assert _result(fast, q, params) == want
    monkeypatch.setattr(index.vectors, "_SELECT_FROM", 10**12)  # never: every allowed paragraph scored
    assert _result(fast, q, params) == want


def test_facets_are_each_types_most_counted_entities(news_index) -> None:
    """Facets: each type's most counted entities, ties by id, the same lists as sorting every count."""
    from search.query import parse_query
    from search.searcher import FACET_TYPES, _restrict

    settings, _ = news_index
    searcher = Searcher.open(settings)
    state = searcher._state
    query = parse_query("peace talks storm gas prices football final Riyadh Moscow Paris")
    r = searcher.retrieve(query, state=state, restrict=_restrict(query, whole_documents=True))
    matched = searcher._matched(state, query, r, "hybrid")
    counts = matched.entity_counts()
    briefs = state.store.entity_briefs(counts)
    want: dict[str, list[dict[str, Any]]] = {t: [] for t in FACET_TYPES}
    for eid, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        name, typ = briefs.get(eid, (eid, "other"))
        bucket = want.get(typ, want["other"])
        if len(bucket) < 2:
            bucket.append({"id": eid, "name": name, "type": typ, "count": n})
    assert sum(len(v) for v in want.values()) >= 4 and len(counts) > 4  # the cut at 2 per type bites
    assert searcher._facets(state, r, matched, top=2) == want


def test_vector_leg_runs_faiss_on_one_thread_and_restores_the_callers(news_index, monkeypatch) -> None:
    """A query's vector search gives FAISS one OpenMP thread (per calling thread, restored after): the same
    hits as with the caller's thread count."""
    import faiss

    from index.dates import date_bounds
    from index.keyword import Restrict

    settings, _ = news_index
    searcher = Searcher.open(settings)
    backend = searcher._state.backend
    qvec = searcher.encoder().encode(["ceasefire negotiators"])[0]
    date_from, date_to = date_bounds("2024-02", "2024-06")
    restrict = Restrict(date_from=date_from, date_to=date_to)
    seen: list[int] = []

    def recording(inner):  # noqa: ANN001, ANN202
        def call(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            seen.append(faiss.omp_get_max_threads())
            return inner(*a, **kw)

        return call

    faiss.omp_set_num_threads(2)
    for flt in ({"restrict": restrict}, {"entities": ["ukraine"]}, {}):
        want = backend._vector(qvec, 50, entities=flt.get("entities", ()), said=(),
                               restrict=flt.get("restrict"))  # the caller's two threads
        with monkeypatch.context() as m:
            m.setattr(backend.vectors, "search_rows", recording(backend.vectors.search_rows))
            m.setattr(backend.vectors, "search", recording(backend.vectors.search))
            assert backend.vector(qvec, 50, **flt) == want
        assert seen and set(seen) == {1} and faiss.omp_get_max_threads() == 2
        seen.clear()
