"""The query side: open the current build, run the legs, fuse, group, snippet.

``Searcher.open(settings)`` reads the manifest and everything needed to answer queries; it never writes.
``Searcher.refresh()`` notices a new build behind the CURRENT pointer and switches to it atomically: a
query in flight keeps using the state it started with.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from index import layout
from index.dates import date_bounds
from index.duplicates import read_clusters
from index.errors import BadQuery, NotFound
from index.keyword import UNDATED, Matches, Restrict, day_number
from index.settings import Settings
from index.store import StoreReader, open_store
from search.backends import Backend, open_backend
from search.fusion import leg_ranks, rrf, weighted
from search.paging import first_occurrences, ordered_units, timeline
from search.query import Query, parse_query
from search.results import GROUP_HITS, Group, Hit, SearchRequest, SearchResult
from search.snippets import highlight, query_stems

MODES = ("hybrid", "keyword", "vector")
_LEG_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="personae-leg")
QUERY_CACHE = 2048  # query vectors kept (1.5 KB each)
LEG_START_WAIT = 0.005  # seconds a query waits for its vector leg's thread to start (a busy pool: less)
FUSIONS = ("rrf", "weighted")
FACET_TYPES = ("person", "org", "place", "other")
SORTS = ("relevance", "date")
DUPLICATES = ("collapse", "show")
MAX_OFFSET = 10_000  # results (paragraphs, or documents when grouped) a page may skip
EXPORT_MAX = 10_000  # rows an export writes at most
WARM_QUERY = "news from the minister"  # any words: ``warm`` needs every leg to run once, not to match


@dataclass
class Retrieval:
    fused: list[tuple[str, float]]
    legs: dict[str, list[tuple[str, float]]]
    linked: list[dict[str, Any]]
    kw_query: Any
    fusion: str
    window: int = 100
    restrict: Restrict | None = None
    linked_ids: list[str] = field(default_factory=list)


@dataclass
class _State:
    """Everything opened from one build folder; replaced as a whole on refresh.

    ``backend`` answers the keyword, vector and entity legs (``settings.backend``: embedded files or Milvus);
    documents, paragraphs and entities are read by id from the build's store (``index/store.py``), which
    every worker process shares through the page cache. Only the document list (ids, days, duplicate
    clusters: what grouping and timelines index by ordinal) is held in memory.
    """

    folder: Path  # backend=milvus: a path of the build's name only (nothing is read under it)
    manifest: layout.Manifest
    backend: Backend
    store: StoreReader  # or the Milvus twin, search.backends.milvus_store.MilvusStore
    doc_ids: list[str] = field(default_factory=list)  # document ordinal -> id (build order)
    doc_dates: list[str | None] = field(default_factory=list)
    doc_index: dict[str, int] = field(default_factory=dict)
    doc_days: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    clusters: list[list[str]] = field(default_factory=list)  # near-duplicate documents (duplicates.json)
    cluster_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _keyword_docs: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.doc_index = {d: i for i, d in enumerate(self.doc_ids)}
        self.doc_days = np.fromiter((day_number(d) for d in self.doc_dates), dtype=np.int64,
                                    count=len(self.doc_ids))
        self.doc_dates = []  # the days are what is needed; the strings were only read to compute them
        self.cluster_of = np.full(len(self.doc_ids), -1, dtype=np.int64)
        for c, members in enumerate(self.clusters):
            for doc_id in members:
                if doc_id in self.doc_index:
                    self.cluster_of[self.doc_index[doc_id]] = c

    def collapse(self, docs: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Document ordinals in page order with each near-duplicate cluster reduced to its first copy."""
        if not self.clusters or not len(docs):
            return docs, days
        cl = self.cluster_of[docs]
        keep = first_occurrences(np.where(cl >= 0, len(self.doc_ids) + cl, docs))
        return docs[keep], days[keep]

    def copies(self, doc_id: str, docs: np.ndarray) -> list[str]:
        """The other matched documents (``docs``: ordinals in page order) of ``doc_id``'s cluster."""
        c = self.cluster_of[self.doc_index[doc_id]] if doc_id in self.doc_index else -1
        if c < 0:
            return []
        same = docs[self.cluster_of[docs] == c].tolist()
        return [self.doc_ids[o] for o in same if self.doc_ids[o] != doc_id]

    def keyword_doc_map(self) -> np.ndarray:
        """The backend's document ordinals (``Matches.doc_ords``) mapped to this state's, -1 if unknown."""
        if self._keyword_docs is None:
            names = self.backend.doc_names()
            self._keyword_docs = np.fromiter((self.doc_index.get(n, -1) for n in names), dtype=np.int64,
                                             count=len(names))
        return self._keyword_docs


class Searcher:
    def __init__(self, settings: Settings, state: _State):
        self.settings = settings
        self._state = state
        self._lock = threading.Lock()
        self._linker_lock = threading.Lock()
        self._encoder: Any = None
        self._qcache: OrderedDict[str, Any] = OrderedDict()
        self._qcache_lock = threading.Lock()  # not self._lock: refresh() holds that while loading a build
        self._linker: Any = None
        self._facet_cache: tuple[_State, list[str], np.ndarray, np.ndarray, dict] | None = None

    # ------------------------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, settings: Settings) -> Searcher:
        if settings.backend == "milvus":  # everything from the engine: no local build folder is read
            return cls(settings, _load_milvus_state(settings))
        return cls(settings, _load_state(layout.current_build(settings.index_path), settings))

    @property
    def manifest(self) -> layout.Manifest:
        return self._state.manifest

    @property
    def build_folder(self) -> Path:
        """The live build's folder; with ``backend=milvus``, a path of the build's name only."""
        return self._state.folder

    def refresh(self) -> bool:
        """Switch to a newer build if CURRENT moved (``backend=milvus``: if the engine's live pointer names
        another build, after a re-export). Returns True when it switched."""
        folder = self._live()
        if folder == self._state.folder:
            return False
        with self._lock:
            if folder == self._state.folder:
                return False
            # the old state stays valid for queries in flight
            if self.settings.backend == "milvus":
                client = self._state.backend.client  # type: ignore[attr-defined]
                self._state = _load_milvus_state(self.settings, folder.name, client=client)
            else:
                self._state = _load_state(folder, self.settings)
        return True

    def _live(self) -> Path:
        if self.settings.backend == "milvus":
            from search.backends import DEFAULT_COLLECTION
            from search.backends.milvus_store import live_build

            return Path(live_build(self._state.backend.client, DEFAULT_COLLECTION, self.settings.milvus_uri))
        return layout.current_build(self.settings.index_path)

    def encoder(self) -> Any:
        if self._encoder is None:
            from index.encoder import load_encoder

            self._encoder = load_encoder(self._state.manifest.models.get("encoder") or self.settings.model)
        return self._encoder

    def linker(self) -> Any:
        """The live build's linker (its registry copy and entity table); a new one after a build swap."""
        state = self._state
        if self._linker is None or self._linker[0] is not state:
            from index.linking.resolve import build_linker

            with self._linker_lock:
                if self._linker is None or self._linker[0] is not state:
                    copy = getattr(state.store, "registry_copy", None)  # Milvus: the registry is a record
                    with copy() if copy else nullcontext(state.folder) as folder:
                        linker = build_linker(folder, state.store.entity_table(), self.settings.ner_model,
                                              self.settings.ner_window)
                    self._linker = (state, linker)
        return self._linker[1]

    def warm(self) -> None:
        """Load what a first query would otherwise load while a user waits (the query encoder, the query
        linker and its NER model, the keyword index's per-build caches), by answering one grouped hybrid
        query the way the search page asks it. Servers call this before they accept traffic."""
        self._state.backend.warm()
        self.run(SearchRequest(q=WARM_QUERY, group=True))
        with self._qcache_lock:
            self._qcache.pop(WARM_QUERY, None)
        try:  # a capitalised query that names no known entity runs NER: its model loads now, not then
            detector = getattr(self.linker(), "detector", None)
        except ImportError:
            detector = None
        if detector is not None:
            detector.detect(WARM_QUERY.title())
        _release_free_heap()

    # ------------------------------------------------------------------------------------- search
    def search(self, q: str, **kwargs: Any) -> dict[str, Any]:
        """Run a query; the JSON-ready result (the API shape; see ``web/openapi.py``).

        Keyword arguments are the fields of ``SearchRequest`` (``entities``/``said`` as any sequence).
        """
        for name in ("entities", "said"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        return self.run(SearchRequest(q=q, **kwargs)).to_dict()

    def run(self, req: SearchRequest) -> SearchResult:
        """Run a query: the typed result the API, the page and the exports serialise."""
        t0 = time.perf_counter()
        s = self.settings
        state = self._state
        mode, fusion = _check_params(req.limit, req.offset, req.mode, req.fusion or s.fusion, s.max_limit)
        _check_choice("sort", req.sort, SORTS)
        _check_choice("duplicates", req.duplicates, DUPLICATES)
        date_from, date_to = date_bounds(req.date_from, req.date_to)
        query = parse_query(req.q, entities=req.entities, said=req.said, max_chars=s.max_query_chars)
        restrict = _restrict(query, date_from, date_to, whole_documents=req.group)
        # Grouped pages come from one fixed window plus the full match lists, so every page sees the same
        # order; ungrouped paging widens the window to reach the page, as each leg ranks its own list.
        window = s.candidates if req.group else max(s.candidates, req.offset + req.limit)
        early: list[tuple[Matches | None, Matches | None]] = []  # the legs' match lists, while encoding
        r = self.retrieve(query, mode=mode, fusion=fusion, window=window, link_query=req.link_query,
                          state=state, restrict=restrict,
                          meanwhile=lambda legs: early.append(self._leg_matches(state, query, legs, mode)))
        names = list(r.legs)
        render = _HitRenderer(
            state, names, leg_ranks([r.legs[n] for n in names]),
            stems=query_stems(query.plain) if query.plain else set(),
            linked=set(r.linked_ids), snippet_chars=s.snippet_chars,
        )
        matched = self._matched(state, query, r, mode, early[0] if early else None)
        named = [*query.entities, *query.said]
        known = state.store.known(named)
        result = SearchResult(
            query=req.q,
            mode=mode,
            fusion=fusion if len(names) > 1 else None,
            offset=req.offset,
            limit=req.limit,
            filters={"entities": list(query.entities), "said": list(query.said),
                     "exclude": list(query.exclude), "exclude_entities": list(query.exclude_entities),
                     "exclude_said": list(query.exclude_said), "from": date_from, "to": date_to},
            unknown_entities=[e for e in named if e not in known],
            linked=[self._entity_ref(x["entity_id"], x) for x in r.linked],
            legs=names,
            facets=self._facets(state, r, matched),
            facet_scope="matches" if matched.complete else "window",
            total=0,
            sort=req.sort,
        )
        docs, days = matched.documents(by_date=req.sort == "date")
        copies = docs
        if req.group and req.duplicates == "collapse":
            docs, days = state.collapse(docs, days)
        result.timeline_unit, result.timeline = timeline(days)
        page = slice(req.offset, req.offset + req.limit)
        if req.group:
            result.total = len(docs)
            groups = [self._doc_group(state, int(o), matched) for o in docs[page]]
            # the page's shown paragraphs and their documents' heads in one read each, not one per group
            render.prefetch([pid for g, _ in groups for pid, _ in g.paragraphs[:GROUP_HITS]])
            result.groups = [render.group(g, explain) for g, explain in groups]
            if req.duplicates == "collapse":
                for g in result.groups:
                    g.similar = [self._similar_ref(state, d) for d in state.copies(g.doc_id, copies)]
        elif req.sort == "date":
            pids, result.total = matched.paragraphs_by_date(page)
            render.prefetch(pids)
            fused = dict(r.fused)
            result.hits = [render.hit(pid, fused.get(pid, 0.0)) for pid in pids]
        else:
            result.total = self._total(state, query, r, mode)  # grouped results count documents instead
            render.prefetch([pid for pid, _ in r.fused[page]])
            result.hits = [render.hit(pid, sc) for pid, sc in r.fused[page]]
        result.took_ms = round((time.perf_counter() - t0) * 1000, 2)
        return result

    def export(self, req: SearchRequest, *, cap: int = EXPORT_MAX) -> Iterator[Hit]:
        """Every hit of the result set ``req`` describes, page after page from its offset, up to ``cap``
        rows (grouped: each document's shown paragraphs); stops at the offset limit too."""
        n, offset, size = 0, req.offset, self.settings.max_limit
        while n < cap and offset <= MAX_OFFSET:
            res = self.run(replace(req, limit=size, offset=offset))
            hits = [h for g in res.groups or [] for h in g.hits] if req.group else res.hits
            yield from hits[: cap - n]
            n += min(len(hits), cap - n)
            offset += size
            if offset >= res.total or not hits:
                return

    def entity_name(self, entity_id: str) -> str:
        brief = self._state.store.entity_briefs([entity_id]).get(entity_id)
        return brief[0] if brief else entity_id

    def _matched(self, state: _State, query: Query, r: Retrieval, mode: str,
                 leg_matches: tuple[Matches | None, Matches | None] | None = None) -> _Matched:
        """The fused window plus, where the backend can list them, every keyword and entity leg match.
        ``leg_matches``: ``_leg_matches`` of these legs, when it ran while the vector leg did."""
        backend = state.backend
        kw, ent = leg_matches if leg_matches is not None else self._leg_matches(state, query, r, mode)
        complete = (kw is not None or "keyword" not in r.legs) and (ent is not None or "entity" not in r.legs)
        complete = complete and mode != "vector" and (kw is not None or ent is not None)
        window = backend.locate([pid for pid, _ in r.fused]) if complete else None
        return _Matched(state, r, window, kw if complete else None, ent if complete else None, complete)

    @staticmethod
    def _leg_matches(state: _State, query: Query, r: Retrieval, mode: str
                     ) -> tuple[Matches | None, Matches | None]:
        """Every match of the keyword and of the entity leg (None: no such leg, or the backend cannot
        list them). Needs only those legs of ``r``: the vector leg may still be running."""
        kw = ent = None
        filters = {"entities": query.entities, "said": query.said, "restrict": r.restrict}
        if mode in ("hybrid", "keyword") and "keyword" in r.legs:
            kw = state.backend.matches(r.kw_query, **filters)
        if mode == "hybrid" and "entity" in r.legs:
            ent = state.backend.matches(None, entity_ids=r.linked_ids, **filters)
        return kw, ent

    def _doc_group(self, state: _State, ordinal: int, matched: _Matched
                   ) -> tuple[_DocGroup, dict[str, dict[str, Any]]]:
        """The group of one document on the page: its window paragraphs (fused order), then the ones only
        the full keyword / entity match lists hold; and the leg ranks of the latter."""
        doc_id = state.doc_ids[ordinal]
        in_window = matched.window_paragraphs(ordinal)
        extra = matched.doc_paragraphs(ordinal, exclude={pid for pid, _ in in_window})
        paragraphs = in_window + [(p, sc) for p, sc, _ in extra]
        g = _DocGroup(doc_id, in_window[0][1] if in_window else 0.0, paragraphs)
        return g, {pid: ex for pid, _, ex in extra}

    def retrieve(
        self,
        query: Query,
        *,
        mode: str = "hybrid",
        fusion: str = "rrf",
        window: int = 100,
        link_query: bool = True,
        state: _State | None = None,
        restrict: Restrict | None = None,
        meanwhile: Callable[[Retrieval], None] | None = None,
    ) -> Retrieval:
        """Run the legs for a parsed query and fuse them: paragraph ids, best first (no rendering).

        Every leg applies the query's filters and ``restrict`` (exclusions, dates) itself; nothing is
        filtered after fusion. Default ``restrict``: the query's exclusions, paragraph by paragraph.
        ``meanwhile(partial)`` is called once the other legs are in, while the vector leg may still run
        (``partial``: those legs, nothing fused): work that needs only them can use that time."""
        if restrict is None:
            restrict = _restrict(query)
        s = self.settings
        state = state or self._state
        # The vector leg (encode + ANN) starts first and runs beside the query linking and the keyword and
        # entity legs: torch and FAISS release the GIL, and the encode is the longest part of a query.
        vector_future = None
        if mode in ("hybrid", "vector") and query.plain:
            started = threading.Event()
            vector_future = _LEG_POOL.submit(self._vector_leg, state, query, window, restrict, started)
            # Let it take the GIL first: a thread asking for the GIL while this one runs Python waits out
            # the switch interval (5 ms), and the encode would start only after the keyword leg.
            started.wait(LEG_START_WAIT)
        try:
            linked = self._link_query(query) if link_query and query.plain else []
            kw_query = state.backend.parse(query.text) if query.text else None
            keyword = (
                state.backend.keyword(kw_query, window, entities=query.entities, said=query.said,
                                      restrict=restrict)
                if mode in ("hybrid", "keyword") else None
            )
            known = state.store.known(x["entity_id"] for x in linked) if linked else set()
            linked_ids = [x["entity_id"] for x in linked if x["entity_id"] in known]
            entity = (
                state.backend.entity(linked_ids, window, entities=query.entities, said=query.said,
                                     restrict=restrict)
                if mode == "hybrid" and linked_ids else None
            )
            if meanwhile is not None and vector_future is not None:
                partial = {"keyword": keyword, "entity": entity}
                meanwhile(Retrieval(fused=[], legs={n: v for n, v in partial.items() if v is not None},
                                    linked=linked, kw_query=kw_query, fusion=fusion, window=window,
                                    restrict=restrict, linked_ids=linked_ids))
        except BaseException:
            if vector_future is not None:
                vector_future.cancel()  # no-op once started; its result is dropped either way
            raise
        legs: dict[str, list[tuple[str, float]]] = {}
        if mode in ("hybrid", "keyword"):
            legs["keyword"] = keyword
        if vector_future is not None:
            legs["vector"] = vector_future.result()
        if mode == "hybrid" and linked_ids:
            legs["entity"] = entity
        if mode == "vector" and not query.plain:
            legs["vector"] = []
        names = list(legs)
        lists = [legs[n] for n in names]
        if len(lists) == 1:
            fused = lists[0]
        elif fusion == "weighted":
            w = {"keyword": s.keyword_weight, "vector": 1 - s.keyword_weight, "entity": s.keyword_weight}
            fused = weighted(lists, [w[n] for n in names])
        else:
            fused = rrf(lists, k=s.rrf_k)
        fused = self._protect_exact(state, query, fused, legs, restrict)
        return Retrieval(
            fused=fused, legs=legs, linked=linked, kw_query=kw_query, fusion=fusion, window=window,
            restrict=restrict, linked_ids=linked_ids,
        )

    def _link_query(self, query: Query) -> list[dict[str, Any]]:
        try:
            links = self.linker().link_query(query.plain)
        except ImportError:
            return []
        return [x.to_dict() for x in links]

    def embed_query(self, text: str) -> Any:
        """The query's vector. Real query streams repeat (popular names, paging, facet clicks), and the
        encoder is most of a hybrid query's cost, so the last ``QUERY_CACHE`` vectors are kept."""
        with self._qcache_lock:
            vec = self._qcache.get(text)
            if vec is not None:
                self._qcache.move_to_end(text)
                return vec
        vec = self.encoder().encode([text], batch_size=1)[0]
        with self._qcache_lock:
            self._qcache[text] = vec
            while len(self._qcache) > QUERY_CACHE:
                self._qcache.popitem(last=False)
        return vec

    def _vector_leg(
        self, state: _State, query: Query, k: int, restrict: Restrict, started: threading.Event | None = None
    ) -> list[tuple[str, float]]:
        if started is not None:
            started.set()
        if not state.backend.vector_count():
            return []
        qvec = self.embed_query(query.plain)
        # Filtered searches never lose an allowed paragraph to the filter (see Backend.vector).
        return state.backend.vector(qvec, k, entities=query.entities, said=query.said, restrict=restrict)

    def _protect_exact(
        self,
        state: _State,
        query: Query,
        fused: list[tuple[str, float]],
        legs: dict[str, list[tuple[str, float]]],
        restrict: Restrict,
    ) -> list[tuple[str, float]]:
        """An exact phrase or exact name match is never ranked below a hit only the vector leg found.

        Exact = matches a quoted phrase, or the whole multi-word query as a phrase, or is linked to an
        entity named in the query (the entity leg). Vector-only hits ranked above the last exact hit move
        just below it. Where the backend cannot test the window's paragraphs (Milvus), exact phrase matches
        are those among its ``len(fused)`` best phrase matches.
        """
        if "vector" not in legs or len(legs) < 2:
            return fused
        exact: set[str] = {pid for pid, _ in legs.get("entity", [])}
        phrases = list(query.phrases)
        if len(query.plain.split()) > 1 and not phrases:
            phrases.append(query.plain)
        window = [pid for pid, _ in fused]
        for ph in phrases:
            pq = state.backend.parse(f'"{ph}"')
            if pq is None:
                continue
            # Every leg applied the filters, so the window holds only allowed paragraphs: asking which of
            # them match the phrase is enough (the embedded backend reads positions at those paragraphs).
            found = state.backend.matching(pq, window)
            if found is None:  # the engine cannot tell: its best phrase matches stand in
                found = {pid for pid, _ in state.backend.keyword(
                    pq, len(fused) or 1, entities=query.entities, said=query.said, restrict=restrict)}
            exact |= found
        if not exact:
            return fused
        non_vector = {pid for n, lst in legs.items() if n != "vector" for pid, _ in lst}
        last_exact = max((i for i, (pid, _) in enumerate(fused) if pid in exact), default=-1)
        if last_exact < 0:
            return fused
        head, moved = [], []
        for item in fused[: last_exact + 1]:
            (head if item[0] in non_vector or item[0] in exact else moved).append(item)
        return head + moved + fused[last_exact + 1 :]

    def _total(self, state: _State, query: Query, r: Retrieval, mode: str) -> int:
        """Number of results reachable by paging: every keyword/entity match plus the vector window."""
        if mode == "vector":
            return len(r.fused)
        kw = r.legs.get("keyword", [])
        if len(kw) < r.window:
            kw_total = len(kw)  # the leg came back short: it has seen every match, no count needed
        elif r.kw_query is not None or query.entities or query.said:
            kw_total = state.backend.count(
                r.kw_query, entities=query.entities, said=query.said, restrict=r.restrict
            )
        else:
            kw_total = 0
        if mode == "keyword":
            return kw_total
        if kw_total <= len(kw):
            return len(r.fused)
        # keyword matches beyond its window, plus everything else in the fused window
        kw_window = {pid for n, lst in r.legs.items() if n != "vector" for pid, _ in lst}
        return kw_total + len({pid for pid, _ in r.fused} - kw_window)

    def _facets(self, state: _State, r: Retrieval, matched: _Matched,
                top: int = 12) -> dict[str, list[dict[str, Any]]]:
        """Entity counts over ``matched.facet_scope``: every paragraph the keyword or entity legs match
        plus the vector leg's hits in the fused window (``complete``), else the fused window. Per type,
        the ``top`` most counted entities, ties by id."""
        array = matched.entity_count_array()
        if array is None:
            return self._facets_ranked(state, matched.entity_counts(), top)
        counts, names = array  # every match counted: each type's top picked on the count array
        buckets, rank, briefs = self._facet_keys(state, names)
        facets: dict[str, list[dict[str, Any]]] = {}
        for code, t in enumerate(FACET_TYPES):
            idx = np.flatnonzero((counts > 0) & (buckets == code))
            idx = idx[np.lexsort((rank[idx], -counts[idx]))][:top]
            facets[t] = []
            for i in idx.tolist():
                name, typ = briefs.get(names[i], (names[i], "other"))
                facets[t].append({"id": names[i], "name": name, "type": typ, "count": int(counts[i])})
        return facets

    @staticmethod
    def _facets_ranked(state: _State, counts: dict[str, int], top: int) -> dict[str, list[dict[str, Any]]]:
        """``_facets`` from a dict of counts (the fused window's, when not every match is listed)."""
        facets: dict[str, list[dict[str, Any]]] = {t: [] for t in FACET_TYPES}
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        chunk = 4 * top * len(FACET_TYPES)
        for start in range(0, len(ranked), chunk):  # names and types read until every bucket is full
            part = ranked[start : start + chunk]
            briefs = state.store.entity_briefs(eid for eid, _ in part)
            for eid, n in part:
                name, typ = briefs.get(eid, (eid, "other"))
                bucket = facets.get(typ, facets["other"])
                if len(bucket) < top:
                    bucket.append({"id": eid, "name": name, "type": typ, "count": n})
            if all(len(b) >= top for b in facets.values()):
                break
        return facets

    def _facet_keys(self, state: _State, names: list[str]
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[str, str]]]:
        """For the backend's entity ordinals: the facet bucket (``FACET_TYPES`` index; other types and
        unknown ids go to "other"), the rank of the id in sorted order (the tie-break), and every entity's
        (name, type) from the store. Read once per build."""
        cached = self._facet_cache
        if cached is None or cached[0] is not state or cached[1] is not names:
            briefs = state.store.entity_briefs(names)
            other = FACET_TYPES.index("other")
            codes = {t: i for i, t in enumerate(FACET_TYPES)}
            buckets = np.fromiter((codes.get(briefs.get(eid, (eid, "other"))[1], other) for eid in names),
                                  dtype=np.int64, count=len(names))
            rank = np.empty(len(names), dtype=np.int64)
            rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
            cached = self._facet_cache = (state, names, buckets, rank, briefs)
        return cached[2], cached[3], cached[4]

    @staticmethod
    def _similar_ref(state: _State, doc_id: str) -> dict[str, Any]:
        d = state.store.doc_heads([doc_id]).get(doc_id) or {"title": doc_id}
        return {"doc_id": doc_id, "title": d["title"], "date": d.get("date"), "source": d.get("source")}

    def _entity_ref(self, eid: str, link: dict[str, Any] | None = None,
                    briefs: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
        """``briefs``: (name, type) by id, when the caller read many at once."""
        brief = (briefs if briefs is not None else self._state.store.entity_briefs([eid])).get(eid)
        name, typ = brief or (eid, "other")
        ref = {"id": eid, "name": name, "type": typ, "known": brief is not None}
        if link:
            ref.update(text=link.get("text"), rule=link.get("rule"), confidence=link.get("confidence"))
        return ref

    # ------------------------------------------------------------------------------- browse / read
    def stats(self) -> dict[str, Any]:
        m = self._state.manifest
        return {
            "build": self._state.folder.name,
            "created": m.created,
            "counts": m.counts,
            "models": m.models,
            "format": m.format,
            "version": m.version,
        }

    def document(self, doc_id: str) -> dict[str, Any]:
        store = self._state.store
        doc = store.document(doc_id)
        if doc is None:
            raise NotFound(f"no document {doc_id!r}")
        paras = store.doc_paragraphs(doc_id)
        ents = Counter(x["entity_id"] for p in paras for x in p["links"])
        briefs = store.entity_briefs(ents)
        return {
            **{k: v for k, v in doc.items() if k != "fingerprint"},
            "paragraphs": paras,
            "entities": [dict(self._entity_ref(e, briefs=briefs), count=n) for e, n in ents.most_common()],
        }

    def entities(
        self, *, type: str | None = None, q: str | None = None, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        if type is not None and type not in FACET_TYPES:
            raise BadQuery(f"type must be one of {', '.join(FACET_TYPES)}")
        _check_params(limit, offset, "hybrid", "rrf", 10**6)
        total, rows = self._state.store.find_entities(type=type, q=q, limit=limit, offset=offset)
        return {"total": total, "offset": offset, "limit": limit, "entities": rows}

    def entity(self, entity_id: str, *, limit: int = 50) -> dict[str, Any]:
        store = self._state.store
        ent = store.entity(entity_id)
        if ent is None:
            raise NotFound(f"no entity {entity_id!r}")
        count, paras, dates = store.entity_mentions(entity_id, limit)
        mentions = [
            {
                "paragraph_id": p["id"],
                "doc_id": p["doc_id"],
                "title": p["_doc"]["title"],
                "date": p["_doc"].get("date"),
                "snippet": highlight(p["text"], links=p["links"]),
                "links": [x for x in p["links"] if x["entity_id"] == entity_id],
            }
            for p in paras
        ]
        quotes: list[dict[str, Any]] = []
        whole: dict[tuple[str, str], dict[str, Any]] = {}  # a quote across paragraphs is listed once
        for p in store.quoted(entity_id):
            for qt in p["quotes"]:
                if qt["speaker"] == entity_id:
                    key = (p["doc_id"], qt.get("quote_id") or f"{p['id']}/{qt['start']}")
                    if key in whole:
                        whole[key]["text"] += " … " + qt["text"]
                        continue
                    whole[key] = {
                        "paragraph_id": p["id"],
                        "doc_id": p["doc_id"],
                        "title": p["_doc"]["title"],
                        "date": p["_doc"].get("date"),
                        "text": qt["text"],
                        "confidence": qt.get("confidence"),
                        "cue": qt.get("cue", ""),
                        "how": qt.get("how", ""),
                    }
                    quotes.append(whole[key])
        days = np.fromiter((day_number(d) for d in dates), dtype=np.int64, count=len(dates))
        unit, bins = timeline(days)
        co = store.co_mentioned(entity_id, 20)
        briefs = store.entity_briefs(e for e, _ in co)
        return {
            **ent,
            "mention_count": count,
            "timeline": {"unit": unit, "bins": [{"period": p, "count": n} for p, n in bins],
                         "undated": int((days == UNDATED).sum())},
            "mentions": mentions,
            "quotes": quotes,
            "co_mentioned": [dict(self._entity_ref(e, briefs=briefs), count=n) for e, n in co],
        }

    def link(self, text: str) -> list[dict[str, Any]]:
        if not isinstance(text, str) or not text.strip():
            raise BadQuery("text must be a non-empty string")
        if len(text) > 20_000:
            raise BadQuery("text is longer than 20000 characters")
        if any("\ud800" <= ch <= "\udfff" for ch in text):
            raise BadQuery("text contains lone surrogate code points (invalid Unicode)")
        from index.records import Document

        links, _quotes = self.linker().link_text(Document(id="_", title="", text=text))
        return [dict(x.to_dict(), entity=self._entity_ref(x.entity_id)) for x in links]


def _check_params(limit: Any, offset: Any, mode: str, fusion: str, max_limit: int) -> tuple[str, str]:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= max_limit:
        raise BadQuery(f"limit must be an integer from 1 to {max_limit}")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise BadQuery(f"offset must be an integer from 0 to {MAX_OFFSET}")
    if mode not in MODES:
        raise BadQuery(f"mode must be one of {', '.join(MODES)}")
    if fusion not in FUSIONS:
        raise BadQuery(f"fusion must be one of {', '.join(FUSIONS)}")
    return mode, fusion


@dataclass
class _DocGroup:
    doc_id: str
    score: float
    paragraphs: list[tuple[str, float]]


class _HitRenderer:
    """Turns paragraph ids into ``Hit``s and document groups into ``Group``s for one query."""

    def __init__(self, state: _State, legs: list[str], ranks: dict[str, list[tuple[int, float] | None]], *,
                 stems: set[str], linked: set[str], snippet_chars: int):
        self.state, self.legs, self.ranks = state, legs, ranks
        self.stems, self.linked, self.snippet_chars = stems, linked, snippet_chars
        self._paragraphs: dict[str, dict[str, Any]] = {}
        self._heads: dict[str, dict[str, Any]] = {}

    def prefetch(self, pids: Sequence[str]) -> None:
        """Read the paragraphs ``pids`` and their documents' heads from the store in one query each."""
        self._paragraphs.update(self.state.store.paragraphs(p for p in pids if p not in self._paragraphs))
        self._head_of(p["doc_id"] for p in self._paragraphs.values())

    def _head_of(self, doc_ids: Iterable[str]) -> None:
        todo = [d for d in doc_ids if d not in self._heads]
        if todo:
            self._heads.update(self.state.store.doc_heads(todo))

    def hit(self, pid: str, score: float, explain: dict[str, Any] | None = None) -> Hit:
        """``explain``: leg ranks for a paragraph outside the fused window (its rank in a full match list)."""
        if pid not in self._paragraphs:
            self.prefetch([pid])
        p = self._paragraphs[pid]
        d = self._heads[p["doc_id"]]
        ranks = self.ranks.get(pid, [None] * len(self.legs))
        ents = {x["entity_id"] for x in p["links"]}
        return Hit(
            paragraph_id=pid, doc_id=p["doc_id"], n=p["n"], title=d["title"], date=d.get("date"),
            source=d.get("source"), url=d.get("url"), score=round(score, 6), text=p["text"],
            snippet=highlight(p["text"], stems=self.stems, links=p["links"], size=self.snippet_chars),
            entities=sorted(ents), matched_entities=sorted(ents & self.linked), quotes=p["quotes"],
            page=p.get("page"), page_end=p.get("page_end"),
            explain={n: ({"rank": rk[0], "score": round(rk[1], 6)} if rk else None)
                     for n, rk in zip(self.legs, ranks, strict=True)}
            if explain is None else {n: explain.get(n) for n in self.legs},
        )

    def group(self, g: _DocGroup, explain: dict[str, dict[str, Any]] | None = None) -> Group:
        self.prefetch([pid for pid, _ in g.paragraphs[:GROUP_HITS]])
        self._head_of([g.doc_id])
        d = self._heads[g.doc_id]
        explain = explain or {}
        return Group(
            doc_id=g.doc_id, title=d["title"], date=d.get("date"), source=d.get("source"),
            score=round(g.score, 6),
            hits=[self.hit(pid, sc, explain.get(pid)) for pid, sc in g.paragraphs[:GROUP_HITS]],
            more=max(0, len(g.paragraphs) - GROUP_HITS),
        )


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise BadQuery(f"{name} must be one of {', '.join(choices)}")


def _restrict(query: Query, date_from: str | None = None, date_to: str | None = None, *,
              whole_documents: bool = False) -> Restrict:
    return Restrict(exclude=query.exclude_text, exclude_entities=query.exclude_entities,
                    exclude_said=query.exclude_said, date_from=date_from, date_to=date_to,
                    whole_documents=whole_documents)


class _Matched:
    """What a query matched, for paging, facets and the timeline.

    ``complete``: the backend listed every keyword / entity leg match (``Backend.matches``), and
    ``window`` locates the fused window's paragraphs among them; otherwise only the fused window is known
    (Milvus, vector mode) and paging, facets and the timeline cover the window.
    """

    def __init__(self, state: _State, r: Retrieval, window: Matches | None, kw: Matches | None,
                 ent: Matches | None, complete: bool):
        self.state, self.r, self.window, self.complete = state, r, window, complete
        self.legs = [(name, m) for name, m in (("keyword", kw), ("entity", ent)) if m is not None]
        self._fused_docs: np.ndarray | None = None
        self._leg_ords: list[np.ndarray] | None = None

    def _leg_docs(self) -> list[np.ndarray]:
        """Each leg's matches as this state's document ordinals (computed once per query)."""
        if self._leg_ords is None:
            to_state = self.state.keyword_doc_map()
            self._leg_ords = [to_state[m.doc_ords] for _, m in self.legs]
        return self._leg_ords

    def window_paragraphs(self, ordinal: int) -> list[tuple[str, float]]:
        """A document's paragraphs in the fused window, in fused order."""
        return [self.r.fused[i] for i in np.flatnonzero(self._window_docs() == ordinal).tolist()]

    def _window_docs(self) -> np.ndarray:
        """The document ordinal of each fused paragraph: from the located window's columns where the
        backend listed it, else read from the store (-1: unknown)."""
        if self._fused_docs is None:
            st, w = self.state, self.window
            docs = st.keyword_doc_map()[w.doc_ords] if w is not None and len(w.docnums) == len(self.r.fused) \
                else None
            if docs is None or (docs < 0).any():
                found = st.store.paragraph_docs([pid for pid, _ in self.r.fused])
                docs = np.fromiter((found.get(pid, -1) for pid, _ in self.r.fused), dtype=np.int64,
                                   count=len(self.r.fused))
            self._fused_docs = docs
        return self._fused_docs

    def documents(self, *, by_date: bool) -> tuple[np.ndarray, np.ndarray]:
        """Document ordinals (``_State.doc_ids``) in page order, and their day numbers."""
        st = self.state
        win = self._window_docs()
        parts = [(win, st.doc_days[win])]
        if self.complete:
            parts += [(docs, m.days) for (_, m), docs in zip(self.legs, self._leg_docs(), strict=True)]
        return ordered_units(parts, by_date=by_date)

    def paragraphs_by_date(self, page: slice) -> tuple[list[str], int]:
        """Paragraph ids of one page of the matched set, newest first, and the set's size."""
        if self.complete and self.window is not None:
            parts = [(self.window.docnums, self.window.days)] + [(m.docnums, m.days) for _, m in self.legs]
            keys, _ = ordered_units(parts, by_date=True)
            return self.state.backend.paragraph_ids(keys[page].tolist()), len(keys)
        fused = self.r.fused
        docs = self._window_docs()
        keys, _ = ordered_units([(np.arange(len(fused)), self.state.doc_days[docs])], by_date=True)
        return [fused[i][0] for i in keys[page].tolist()], len(keys)

    def doc_paragraphs(self, ordinal: int, exclude: set[str]) -> list[tuple[str, float, dict[str, Any]]]:
        """A document's matches outside the fused window: (paragraph id, leg score, explain), leg order."""
        if not self.complete:
            return []
        out: list[tuple[str, float, dict[str, Any]]] = []
        seen = set(exclude)
        for (name, m), docs in zip(self.legs, self._leg_docs(), strict=True):
            sel = np.flatnonzero(docs == ordinal)
            if not len(sel):
                continue
            pids = self.state.backend.paragraph_ids(m.docnums[sel].tolist())
            for i, pid in zip(sel.tolist(), pids, strict=True):
                if pid not in seen:
                    seen.add(pid)
                    score = float(m.scores[i])
                    out.append((pid, score, {name: {"rank": i + 1, "score": round(score, 6)}}))
        return out

    def entity_count_array(self) -> tuple[np.ndarray, list[str]] | None:
        """Counts over every match as the backend's per-entity array (None unless ``complete``)."""
        if self.complete and self.window is not None:
            docnums = np.concatenate([self.window.docnums] + [m.docnums for _, m in self.legs])
            return self.state.backend.entity_count_array(docnums)
        return None

    def entity_counts(self) -> dict[str, int]:
        if self.complete and self.window is not None:
            # repeats are harmless: the backend counts each paragraph once (a mask over docnums)
            docnums = np.concatenate([self.window.docnums] + [m.docnums for _, m in self.legs])
            return self.state.backend.entity_counts(docnums)
        return self.state.store.entity_counts([pid for pid, _ in self.r.fused])


def _load_state(folder: Path, settings: Settings) -> _State:
    from index.errors import IndexFormatMismatch

    manifest = layout.verify(folder)  # cheap: files present with their recorded sizes
    store = open_store(folder)  # IndexFormatMismatch if missing, not SQLite or another store format
    try:
        doc_ids, doc_dates = store.document_list()
        clusters = read_clusters(folder)
    except (ValueError, KeyError, TypeError) as err:  # UnicodeDecodeError is a ValueError
        store.close()
        raise IndexFormatMismatch(
            f"index at {folder} is damaged ({type(err).__name__}: {str(err)[:200]}); "
            "rebuild it with `personae build --full`"
        ) from None
    except BaseException:
        store.close()
        raise
    try:
        backend = open_backend(folder, settings)
    except BaseException:
        store.close()
        raise
    try:
        stored = store.counts()
        sizes = {"documents": len(doc_ids), "paragraphs": stored.get("paragraphs", -1)}
        keyword = getattr(backend, "keyword_index", None)  # embedded: the Whoosh row count is checked too
        if keyword is not None:
            sizes["keyword"] = len(keyword)
        if backend.vector_count() or (folder / layout.VECTORS).exists():
            sizes["vectors"] = backend.vector_count()
        layout.check_counts(folder, manifest, **sizes)
    except IndexFormatMismatch:
        backend.close()
        store.close()
        raise
    return _State(folder, manifest, backend, store, doc_ids, doc_dates, clusters=clusters)


def _load_milvus_state(settings: Settings, build: str | None = None, client: Any = None) -> _State:
    """The state of build ``build`` (default: the live one) from Milvus alone (``backend=milvus``):
    manifest, records, legs and duplicate clusters are all read from the engine."""
    from search.backends import DEFAULT_COLLECTION
    from search.backends.milvus_store import open_live

    live = open_live(settings.milvus_uri, DEFAULT_COLLECTION, build, client=client)
    try:
        doc_ids, doc_dates = live.store.document_list()
        paragraphs = live.store.counts().get("paragraphs", -1)
        layout.check_counts(Path(live.name), live.manifest, documents=len(doc_ids), paragraphs=paragraphs,
                            vectors=live.backend.vector_count())
    except BaseException:
        if client is None:
            live.backend.close()
        raise
    return _State(Path(live.name), live.manifest, live.backend, live.store, doc_ids, doc_dates,
                  clusters=live.clusters)


def _release_free_heap() -> None:
    """Hand the C heap's free pages back to the kernel (glibc's ``malloc_trim``). Opening an index parses
    big JSON lists and builds tables from them; glibc would keep what those transients freed for as long
    as the server runs. Elsewhere (no glibc) nothing happens."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)
