"""The query side: open the current build, run the legs, fuse, group, snippet.

``Searcher.open(settings)`` reads the manifest and everything needed to answer queries; it never writes.
``Searcher.refresh()`` notices a new build behind the CURRENT pointer and switches to it atomically: a
query in flight keeps using the state it started with.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index import layout
from index.errors import BadQuery, NotFound
from index.jsonl import read_jsonl
from index.settings import Settings
from search.backends import Backend, open_backend
from search.fusion import leg_ranks, rrf, weighted
from search.query import Query, parse_query
from search.snippets import highlight, query_stems

MODES = ("hybrid", "keyword", "vector")
_LEG_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="personae-leg")
QUERY_CACHE = 2048  # query vectors kept (1.5 KB each)
FUSIONS = ("rrf", "weighted")
FACET_TYPES = ("person", "org", "place", "other")


@dataclass
class Retrieval:
    fused: list[tuple[str, float]]
    legs: dict[str, list[tuple[str, float]]]
    linked: list[dict[str, Any]]
    kw_query: Any
    fusion: str
    window: int = 100


@dataclass
class _State:
    """Everything read from one build folder; replaced as a whole on refresh.

    ``backend`` answers the keyword, vector and entity legs (``settings.backend``: embedded files or Milvus);
    documents, paragraphs and entities are always read from the build folder.
    """

    folder: Path
    manifest: layout.Manifest
    backend: Backend
    documents: dict[str, dict[str, Any]]
    paragraphs: dict[str, dict[str, Any]]
    doc_paragraphs: dict[str, list[str]]
    entities: dict[str, dict[str, Any]]
    alias_index: dict[str, list[str]] = field(default_factory=dict)


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

    # ------------------------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, settings: Settings) -> Searcher:
        return cls(settings, _load_state(layout.current_build(settings.index_path), settings))

    @property
    def manifest(self) -> layout.Manifest:
        return self._state.manifest

    @property
    def build_folder(self) -> Path:
        return self._state.folder

    def refresh(self) -> bool:
        """Switch to a newer build if CURRENT moved. Returns True when it switched."""
        folder = layout.current_build(self.settings.index_path)
        if folder == self._state.folder:
            return False
        with self._lock:
            if folder == self._state.folder:
                return False
            self._state = _load_state(folder, self.settings)  # old state stays valid for queries in flight
        return True

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
                    self._linker = (state, build_linker(state.folder, state.entities, self.settings.ner_model,
                                                        self.settings.ner_window))
        return self._linker[1]

    # ------------------------------------------------------------------------------------- search
    def search(
        self,
        q: str,
        *,
        limit: int = 10,
        offset: int = 0,
        mode: str = "hybrid",
        fusion: str | None = None,
        entities: Sequence[str] = (),
        said: Sequence[str] = (),
        group: bool = False,
        link_query: bool = True,
    ) -> dict[str, Any]:
        """Run a query. Returns the JSON-ready result (the API shape; see ``web/openapi.py``)."""
        t0 = time.perf_counter()
        s = self.settings
        state = self._state
        mode, fusion = _check_params(limit, offset, mode, fusion or s.fusion, s.max_limit)
        query = parse_query(q, entities=tuple(entities), said=tuple(said), max_chars=s.max_query_chars)
        r = self.retrieve(
            query,
            mode=mode,
            fusion=fusion,
            window=max(s.candidates, offset + limit),
            link_query=link_query,
            state=state,
        )
        fused, legs, names, linked = r.fused, r.legs, list(r.legs), r.linked
        lists = [legs[n] for n in names]
        ranks = leg_ranks(lists)
        unknown = [e for e in (*query.entities, *query.said) if e not in state.entities]
        linked_ids = [x["entity_id"] for x in linked if x["entity_id"] in state.entities]

        stems = query_stems(query.plain) if query.plain else set()
        linked_set = set(linked_ids)

        def hit(pid: str, score: float) -> dict[str, Any]:
            p = state.paragraphs[pid]
            d = state.documents[p["doc_id"]]
            explain = {
                n: ({"rank": rank[0], "score": round(rank[1], 6)} if rank else None)
                for n, rank in zip(names, ranks.get(pid, [None] * len(names)), strict=True)
            }
            return {
                "paragraph_id": pid,
                "doc_id": p["doc_id"],
                "n": p["n"],
                "page": p.get("page"),  # PDFs: the page (1-based) the paragraph starts on
                "page_end": p.get("page_end"),  # and the last page, when it runs across a page break
                "title": d["title"],
                "date": d.get("date"),
                "source": d.get("source"),
                "url": d.get("url"),
                "score": round(score, 6),
                "text": p["text"],
                "snippet": highlight(p["text"], stems=stems, links=p["links"], size=s.snippet_chars),
                "entities": sorted({x["entity_id"] for x in p["links"]}),
                "matched_entities": sorted({x["entity_id"] for x in p["links"]} & linked_set),
                "quotes": p["quotes"],
                "explain": explain,
            }

        result: dict[str, Any] = {
            "query": q,
            "mode": mode,
            "fusion": fusion if len(lists) > 1 else None,
            "offset": offset,
            "limit": limit,
            "filters": {"entities": list(query.entities), "said": list(query.said)},
            "unknown_entities": unknown,
            "linked": [self._entity_ref(x["entity_id"], x) for x in linked],
            "legs": names,
            "facets": self._facets(state, [pid for pid, _ in fused]),
        }
        if group:
            groups = _group(fused, state)
            result["total"] = len(groups)
            result["groups"] = [
                {
                    "doc_id": g["doc_id"],
                    "title": state.documents[g["doc_id"]]["title"],
                    "date": state.documents[g["doc_id"]].get("date"),
                    "source": state.documents[g["doc_id"]].get("source"),
                    "score": round(g["score"], 6),
                    "hits": [hit(pid, sc) for pid, sc in g["paragraphs"][:3]],
                    "more": max(0, len(g["paragraphs"]) - 3),
                }
                for g in groups[offset : offset + limit]
            ]
            result["hits"] = []
        else:
            result["total"] = self._total(state, query, r, mode)  # grouped results count documents instead
            result["hits"] = [hit(pid, sc) for pid, sc in fused[offset : offset + limit]]
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return result

    def retrieve(
        self,
        query: Query,
        *,
        mode: str = "hybrid",
        fusion: str = "rrf",
        window: int = 100,
        link_query: bool = True,
        state: _State | None = None,
    ) -> Retrieval:
        """Run the legs for a parsed query and fuse them: paragraph ids, best first (no rendering)."""
        s = self.settings
        state = state or self._state
        linked = self._link_query(query) if link_query and query.plain else []
        legs: dict[str, list[tuple[str, float]]] = {}
        kw_query = state.backend.parse(query.text) if query.text else None
        # The vector leg (encode + ANN) runs beside the keyword leg: torch and FAISS release the GIL.
        # Measured at 100k paragraphs: retrieve p50 28 -> 21 ms (benchmarks/README.md).
        vector_future = (
            _LEG_POOL.submit(self._vector_leg, state, query, window)
            if mode in ("hybrid", "vector") and query.plain
            else None
        )
        if mode in ("hybrid", "keyword"):
            legs["keyword"] = state.backend.keyword(
                kw_query, window, entities=query.entities, said=query.said
            )
        if vector_future is not None:
            legs["vector"] = vector_future.result()
        linked_ids = [x["entity_id"] for x in linked if x["entity_id"] in state.entities]
        if mode == "hybrid" and linked_ids:
            legs["entity"] = state.backend.entity(
                linked_ids, window, entities=query.entities, said=query.said
            )
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
        fused = self._protect_exact(state, query, fused, legs)
        return Retrieval(
            fused=fused, legs=legs, linked=linked, kw_query=kw_query, fusion=fusion, window=window
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

    def _vector_leg(self, state: _State, query: Query, k: int) -> list[tuple[str, float]]:
        if not state.backend.vector_count():
            return []
        qvec = self.embed_query(query.plain)
        # Filtered searches never lose an allowed paragraph to the filter (see Backend.vector).
        return state.backend.vector(qvec, k, entities=query.entities, said=query.said)

    def _protect_exact(
        self,
        state: _State,
        query: Query,
        fused: list[tuple[str, float]],
        legs: dict[str, list[tuple[str, float]]],
    ) -> list[tuple[str, float]]:
        """An exact phrase or exact name match is never ranked below a hit only the vector leg found.

        Exact = matches a quoted phrase, or the whole multi-word query as a phrase, or is linked to an
        entity named in the query (the entity leg). Vector-only hits ranked above the last exact hit move
        just below it.
        """
        if "vector" not in legs or len(legs) < 2:
            return fused
        exact: set[str] = {pid for pid, _ in legs.get("entity", [])}
        phrases = list(query.phrases)
        if len(query.plain.split()) > 1 and not phrases:
            phrases.append(query.plain)
        for ph in phrases:
            pq = state.backend.parse(f'"{ph}"')
            if pq is not None:
                exact |= {
                    pid
                    for pid, _ in state.backend.keyword(
                        pq, len(fused) or 1, entities=query.entities, said=query.said
                    )
                }
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
            kw_total = state.backend.count(r.kw_query, entities=query.entities, said=query.said)
        else:
            kw_total = 0
        if mode == "keyword":
            return kw_total
        if kw_total <= len(kw):
            return len(r.fused)
        # keyword matches beyond its window, plus everything else in the fused window
        kw_window = {pid for n, lst in r.legs.items() if n != "vector" for pid, _ in lst}
        return kw_total + len({pid for pid, _ in r.fused} - kw_window)

    def _facets(self, state: _State, pids: Sequence[str], top: int = 12) -> dict[str, list[dict[str, Any]]]:
        counts: Counter[str] = Counter()
        for pid in pids:
            counts.update({x["entity_id"] for x in state.paragraphs[pid]["links"]})
        facets: dict[str, list[dict[str, Any]]] = {t: [] for t in FACET_TYPES}
        for eid, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            ent = state.entities.get(eid, {})
            bucket = facets.get(ent.get("type", "other"), facets["other"])
            if len(bucket) < top:
                bucket.append(
                    {"id": eid, "name": ent.get("name", eid), "type": ent.get("type", "other"), "count": n}
                )
        return facets

    def _entity_ref(self, eid: str, link: dict[str, Any] | None = None) -> dict[str, Any]:
        ent = self._state.entities.get(eid, {})
        ref = {"id": eid, "name": ent.get("name", eid), "type": ent.get("type", "other"), "known": bool(ent)}
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
        state = self._state
        doc = state.documents.get(doc_id)
        if doc is None:
            raise NotFound(f"no document {doc_id!r}")
        paras = [state.paragraphs[pid] for pid in state.doc_paragraphs.get(doc_id, [])]
        ents = Counter(x["entity_id"] for p in paras for x in p["links"])
        return {
            **{k: v for k, v in doc.items() if k != "fingerprint"},
            "paragraphs": paras,
            "entities": [dict(self._entity_ref(e), count=n) for e, n in ents.most_common()],
        }

    def entities(
        self, *, type: str | None = None, q: str | None = None, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        if type is not None and type not in FACET_TYPES:
            raise BadQuery(f"type must be one of {', '.join(FACET_TYPES)}")
        _check_params(limit, offset, "hybrid", "rrf", 10**6)
        rows = list(self._state.entities.values())
        if type:
            rows = [e for e in rows if e.get("type") == type]
        if q:
            needle = q.casefold()
            rows = [
                e
                for e in rows
                if needle in e["name"].casefold()
                or any(needle in a.casefold() for a in (*e.get("aliases", []), *e.get("surfaces", [])))
            ]
        rows.sort(key=lambda e: (-e.get("mentions", 0), e["id"]))
        return {
            "total": len(rows),
            "offset": offset,
            "limit": limit,
            "entities": rows[offset : offset + limit],
        }

    def entity(self, entity_id: str, *, limit: int = 50) -> dict[str, Any]:
        state = self._state
        ent = state.entities.get(entity_id)
        if ent is None:
            raise NotFound(f"no entity {entity_id!r}")
        pids = state.backend.entity_paragraphs(entity_id)
        paras = [state.paragraphs[p] for p in pids if p in state.paragraphs]

        def date_key(p: dict[str, Any]) -> tuple[str, str, int]:
            d = state.documents[p["doc_id"]]
            return (d.get("date") or "", p["doc_id"], p["n"])

        paras.sort(key=date_key)
        co: Counter[str] = Counter()
        for p in paras:
            co.update({x["entity_id"] for x in p["links"]} - {entity_id})
        mentions = []
        for p in paras[:limit]:
            d = state.documents[p["doc_id"]]
            mentions.append(
                {
                    "paragraph_id": p["id"],
                    "doc_id": p["doc_id"],
                    "title": d["title"],
                    "date": d.get("date"),
                    "snippet": highlight(p["text"], links=p["links"]),
                    "links": [x for x in p["links"] if x["entity_id"] == entity_id],
                }
            )
        quotes: list[dict[str, Any]] = []
        whole: dict[tuple[str, str], dict[str, Any]] = {}  # a quote across paragraphs is listed once
        for p in paras:
            for qt in p["quotes"]:
                if qt["speaker"] == entity_id:
                    key = (p["doc_id"], qt.get("quote_id") or f"{p['id']}/{qt['start']}")
                    if key in whole:
                        whole[key]["text"] += " … " + qt["text"]
                        continue
                    d = state.documents[p["doc_id"]]
                    whole[key] = {
                        "paragraph_id": p["id"],
                        "doc_id": p["doc_id"],
                        "title": d["title"],
                        "date": d.get("date"),
                        "text": qt["text"],
                        "confidence": qt.get("confidence"),
                        "cue": qt.get("cue", ""),
                        "how": qt.get("how", ""),
                    }
                    quotes.append(whole[key])
        return {
            **ent,
            "mention_count": len(paras),
            "mentions": mentions,
            "quotes": quotes,
            "co_mentioned": [dict(self._entity_ref(e), count=n) for e, n in co.most_common(20)],
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
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 10_000:
        raise BadQuery("offset must be an integer from 0 to 10000")
    if mode not in MODES:
        raise BadQuery(f"mode must be one of {', '.join(MODES)}")
    if fusion not in FUSIONS:
        raise BadQuery(f"fusion must be one of {', '.join(FUSIONS)}")
    return mode, fusion


def _group(fused: list[tuple[str, float]], state: _State) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for pid, score in fused:
        doc_id = state.paragraphs[pid]["doc_id"]
        g = groups.setdefault(doc_id, {"doc_id": doc_id, "score": score, "paragraphs": []})
        g["paragraphs"].append((pid, score))
    return list(groups.values())  # insertion order = best paragraph's rank


def _load_state(folder: Path, settings: Settings) -> _State:
    from index.errors import IndexFormatMismatch

    manifest = layout.verify(folder)  # cheap: files present with their recorded sizes
    try:
        documents = {d["id"]: d for d in read_jsonl(folder / layout.DOCUMENTS)}
        paragraphs: dict[str, dict[str, Any]] = {}
        doc_paragraphs: dict[str, list[str]] = defaultdict(list)
        for p in read_jsonl(folder / layout.PARAGRAPHS):
            paragraphs[p["id"]] = p
            doc_paragraphs[p["doc_id"]].append(p["id"])
        entities = json.loads((folder / layout.ENTITIES).read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as err:  # UnicodeDecodeError is a ValueError
        raise IndexFormatMismatch(
            f"index at {folder} is damaged ({type(err).__name__}: {str(err)[:200]}); "
            "rebuild it with `personae build --full`"
        ) from None
    backend = open_backend(folder, settings)
    try:
        sizes = {"documents": len(documents), "paragraphs": len(paragraphs)}
        keyword = getattr(backend, "keyword_index", None)  # embedded: the Whoosh row count is checked too
        if keyword is not None:
            sizes["keyword"] = len(keyword)
        if backend.vector_count() or (folder / layout.VECTORS).exists():
            sizes["vectors"] = backend.vector_count()
        layout.check_counts(folder, manifest, **sizes)
    except IndexFormatMismatch:
        backend.close()
        raise
    return _State(folder, manifest, backend, documents, paragraphs, dict(doc_paragraphs), entities)
