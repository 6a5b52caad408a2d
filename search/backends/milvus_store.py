"""A build's records in Milvus, and which build is live: what a milvus-backed server reads instead of a
local build folder.

``personae export-milvus`` writes, next to the build's paragraph collection (``search/backends/milvus.py``),

- ``<collection>__<build>__records``: one row per document, paragraph and entity, plus the build files a
  server needs at query time (``manifest.json``, ``registry.jsonl``, ``duplicates.json``) and the store's row
  counts. A record whose JSON is longer than a VARCHAR holds (64 KiB) is split into ``part`` rows.
- ``<collection>_live``: the live-build pointer. Each export inserts one row (``seq`` one above the last,
  the build name) once both of the build's collections are loaded; the row with the highest ``seq`` names
  the live build. One insert is the commit, so a reader sees the old build or the new one, never a half.
  Milvus collection aliases would do the same job on a cluster, but milvus-lite 2.5.1 does not implement
  them (``create_alias`` answers UNIMPLEMENTED), and one mechanism serves both.

``MilvusStore`` reads these with the interface of ``index.store.StoreReader``, so the searcher and the web
layer use either without knowing which; ``open_live`` opens everything a ``Searcher`` state needs from the
engine alone. Lookups by entity (mentions, quotes, co-mentions) filter the paragraph collection's ``entity``
and ``said`` arrays and order client-side, as SQLite's ``ORDER BY`` did.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index import layout
from index.errors import IndexFormatMismatch, IndexMissing, PersonaeError
from index.store import HEAD, STORE_FORMAT, entity_names

RECORDS = "__records"  # suffix of a build's records collection
LIVE = "_live"  # suffix of the live-build pointer collection
FILES = (layout.MANIFEST, layout.REGISTRY, layout.DUPLICATES)  # build files a server reads at query time
COUNTS = "store-counts"  # the ``file`` record holding the store's row counts
EXPORT = "export-info"  # the ``file`` record saying how the export encoded what (``spaced_ids``)
_WS = re.compile(r"\s")
PART_BYTES = 60_000  # a record's JSON per row (VARCHAR holds 65,535 bytes)
MAX_ID = 1024  # bytes of a record id (document, paragraph or entity id)
_CHUNK = 500  # ids per ``in [...]`` expression, as the SQLite store
_SCAN = 4096  # rows per ``query_iterator`` batch
_KEEP_POINTERS = 16  # pointer rows kept (the newest decides; older ones are history)
_BY_CACHE = 64  # per-entity paragraph lists kept by a reader (``MilvusStore._by``)


def records_collection(search_collection: str) -> str:
    return f"{search_collection}{RECORDS}"


def live_collection(collection: str) -> str:
    return f"{collection}{LIVE}"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _parts(text: str, size: int = PART_BYTES) -> list[str]:
    """``text`` cut into pieces of at most ``size`` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    out, start = [], 0
    while start < len(data) or not out:
        end = min(start + size, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: back to the lead byte
            end -= 1
        out.append(data[start:end].decode("utf-8"))
        start = end
    return out


def _clip(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def _q(value: str) -> str:
    """A string literal for a Milvus boolean expression."""
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- writing
def create_records(client: Any, name: str, *, local: bool) -> None:
    """(Re)create a records collection. Milvus collections need a vector field: ``_v`` is a constant."""
    from search.backends.milvus import _milvus

    DataType = _milvus().DataType
    if client.has_collection(name):
        client.drop_collection(name)
    s = client.create_schema(auto_id=False, description=_dumps({"personae-records": STORE_FORMAT}))
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=MAX_ID + 64)
    s.add_field("kind", DataType.VARCHAR, max_length=16)  # document | paragraph | entity | file
    s.add_field("rid", DataType.VARCHAR, max_length=MAX_ID)
    s.add_field("part", DataType.INT64)
    s.add_field("body", DataType.VARCHAR, max_length=65_535)
    s.add_field("ord", DataType.INT64)  # document / paragraph: build order; entity: rank (mentions desc, id)
    s.add_field("doc", DataType.INT64)  # paragraph: its document's ord; entity: rank within its type
    s.add_field("n", DataType.INT64)
    s.add_field("doc_id", DataType.VARCHAR, max_length=MAX_ID)
    s.add_field("date", DataType.VARCHAR, max_length=64)
    s.add_field("type", DataType.VARCHAR, max_length=64)
    s.add_field("names", DataType.VARCHAR, max_length=65_535)  # entity: index.store.entity_names
    s.add_field("head", DataType.VARCHAR, max_length=65_535)  # document: its head (HEAD); entity: name
    s.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
    ip = client.prepare_index_params()
    ip.add_index("_v", index_type="FLAT", metric_type="L2")
    if not local:
        for field in ("kind", "rid", "doc_id"):
            ip.add_index(field, index_type="INVERTED")
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")


def _row(kind: str, rid: str, body: str, **cols: Any) -> Iterator[dict[str, Any]]:
    if len(rid.encode("utf-8")) > MAX_ID:
        raise PersonaeError(f"{kind} id {rid[:80]!r}… is longer than {MAX_ID} bytes; Milvus cannot key it")
    base = {"kind": kind, "rid": rid, "ord": 0, "doc": 0, "n": 0, "doc_id": "", "date": "", "type": "",
            "names": "", "head": "", "_v": [0.0, 0.0], **cols}
    for i, piece in enumerate(_parts(body)):
        yield {**base, "pk": f"{kind}\x1f{rid}\x1f{i}", "part": i, "body": piece}


def _entity_ranks(entities: dict[str, dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """Each entity's position in the entity list's order (mentions desc, then id), overall and in its type."""
    def typ(eid: str) -> str:
        return entities[eid].get("type") or "other"

    order = sorted(entities, key=lambda e: (-int(entities[e].get("mentions", 0)), e))
    seen: Counter[str] = Counter()
    in_type = {}
    for eid in order:
        in_type[eid] = seen[typ(eid)]
        seen[typ(eid)] += 1
    return {eid: i for i, eid in enumerate(order)}, in_type


def _head(doc: dict[str, Any]) -> str:
    """The document's ``HEAD`` fields as JSON for the ``head`` column: each string cut to 8,000 bytes, so
    the four fit a VARCHAR (a longer title is shortened in results, never in the document page)."""
    head = {k: _clip(v, 8000) if isinstance(v, str) else v for k, v in ((k, doc.get(k)) for k in HEAD)}
    text = _dumps(head)
    if len(text.encode("utf-8")) > 65_535:
        raise PersonaeError(f"document {doc['id'][:80]!r}: its title, source and url do not fit a Milvus "
                            "VARCHAR even cut to 8,000 bytes each")
    return text


def record_rows(folder: Path) -> Iterator[dict[str, Any]]:
    """Every records row of build ``folder``: documents, paragraphs, entities, then the files."""
    from index.store import open_store

    store = open_store(folder)
    try:
        doc_ord: dict[str, int] = {}
        for i, d in enumerate(store.iter_documents()):
            doc_ord[d["id"]] = i
            yield from _row("document", d["id"], _dumps(d), ord=i, date=(d.get("date") or "")[:64],
                            head=_head(d))
        spaced = False  # a linked id holding whitespace: ``entity_text`` cannot give the ids back
        for i, p in enumerate(store.iter_paragraphs()):
            spaced = spaced or any(_WS.search(x["entity_id"]) for x in p.get("links", ()))
            yield from _row("paragraph", p["id"], _dumps(p), ord=i, doc=doc_ord[p["doc_id"]], n=int(p["n"]),
                            doc_id=p["doc_id"])
        entities = store.entity_table()
        rank, in_type = _entity_ranks(entities)
        for eid, e in entities.items():
            yield from _row("entity", eid, _dumps(e), ord=rank[eid], doc=in_type[eid],
                            type=(e.get("type") or "other")[:64], names=_clip(entity_names(e), 65_535),
                            head=_clip(e.get("name") or eid, 65_535))
        yield from _row("file", COUNTS, _dumps(store.counts()))
        yield from _row("file", EXPORT, _dumps({"spaced_ids": spaced}))
    finally:
        store.close()
    for name in FILES:
        path = folder / name
        if path.is_file():
            yield from _row("file", name, path.read_text(encoding="utf-8"))


def write_records(client: Any, name: str, folder: Path, *, local: bool, batch: int = 1000) -> int:
    """Create the records collection ``name`` and load build ``folder``'s records into it; rows written."""
    create_records(client, name, local=local)
    n, chunk = 0, []
    for row in record_rows(folder):
        chunk.append(row)
        if len(chunk) >= batch:
            client.insert(name, chunk)
            n, chunk = n + len(chunk), []
    if chunk:
        client.insert(name, chunk)
        n += len(chunk)
    client.flush(name)
    client.load_collection(name)
    return n


def _create_pointer(client: Any, name: str) -> None:
    from search.backends.milvus import _milvus

    DataType = _milvus().DataType
    s = client.create_schema(auto_id=False, description=_dumps({"personae-live": 1}))
    s.add_field("seq", DataType.INT64, is_primary=True)
    s.add_field("build", DataType.VARCHAR, max_length=MAX_ID)
    s.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
    ip = client.prepare_index_params()
    ip.add_index("_v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")


def _pointers(client: Any, name: str) -> list[dict[str, Any]]:
    from search.backends.milvus import _milvus

    def read() -> list[dict[str, Any]]:
        return list(client.query(name, filter="seq >= 0", output_fields=["seq", "build"]))

    try:
        rows = read()
    except _milvus().exceptions.MilvusException:  # not loaded (a restarted engine): load once, read again
        client.load_collection(name)
        rows = read()
    return sorted(rows, key=lambda r: r["seq"])


def set_live(client: Any, collection: str, build: str) -> int:
    """Make ``build`` the live one (its collections must be loaded): one inserted pointer row. Returns its
    ``seq``. Exports are expected one at a time per collection, as builds are (the build lock)."""
    name = live_collection(collection)
    if not client.has_collection(name):
        _create_pointer(client, name)
        client.load_collection(name)
    rows = _pointers(client, name)
    seq = rows[-1]["seq"] + 1 if rows else 1
    client.insert(name, [{"seq": seq, "build": build, "_v": [0.0, 0.0]}])
    client.flush(name)
    old = [r["seq"] for r in rows[: max(0, len(rows) + 1 - _KEEP_POINTERS)]]
    if old:
        client.delete(name, filter=f"seq in {json.dumps(old)}")
    return seq


def live_build(client: Any, collection: str, uri: str = "") -> str:
    """The name of the live build at this Milvus; ``IndexMissing`` if nothing was exported yet."""
    from search.backends.milvus import _milvus

    name = live_collection(collection)
    try:
        if not client.has_collection(name):
            raise IndexMissing(f"no build exported to Milvus {uri} (no {name!r} collection); run "
                               "`personae build` and `personae export-milvus`")
        rows = _pointers(client, name)
    except _milvus().exceptions.MilvusException as err:  # the engine is down or unreachable: one line, 503
        raise IndexMissing(f"cannot read the live build from Milvus {uri}: {err.message}") from None
    if not rows:
        raise IndexMissing(f"Milvus {uri} names no live build; run `personae export-milvus`")
    return rows[-1]["build"]


# ---------------------------------------------------------------------------------------------- reading
class MilvusStore:
    """The records of one exported build, read from Milvus with ``index.store.StoreReader``'s interface.

    ``client`` is shared with the build's ``MilvusBackend`` (pymilvus clients are thread-safe); closing
    the backend closes it. ``paragraph_collection`` is the build's search collection, whose ``entity`` /
    ``said`` arrays answer the lookups by entity.
    """

    def __init__(self, client: Any, records: str, paragraph_collection: str):
        self.client = client
        self.records = records
        self.paragraph_collection = paragraph_collection
        self.path = Path(records)  # what error messages name, as the SQLite reader names its file
        self._by_cache: OrderedDict[tuple[str, str], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self._linked: str | None = None

    @classmethod
    def open(cls, client: Any, paragraph_collection: str) -> MilvusStore:
        records = records_collection(paragraph_collection)
        if not client.has_collection(records):
            raise IndexFormatMismatch(f"Milvus has no records collection {records!r} (an export by an older "
                                      "Personae?); run `personae export-milvus`")
        from search.backends.milvus import collection_info

        info = collection_info(client, records)
        if info.get("personae-records") != STORE_FORMAT:
            raise IndexFormatMismatch(f"Milvus collection {records!r} has another record format; run "
                                      "`personae export-milvus`")
        client.load_collection(records)
        return cls(client, records, paragraph_collection)

    # ---------------------------------------------------------------------------------- plumbing
    def _get(self, collection: str, filt: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        """The rows matching ``filt``, for filters that bound them (ids of one chunk): one request."""
        return list(self.client.query(collection, filter=filt, output_fields=list(fields)))

    def _query(self, collection: str, filt: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Every row matching ``filt``: one request when they are fewer than ``_SCAN`` (the common case: a
        document's paragraphs, an entity's mentions), else an iterator past Milvus' 16384-row query limit."""
        rows = list(self.client.query(collection, filter=filt, output_fields=list(fields), limit=_SCAN))
        if len(rows) < _SCAN:
            return rows
        from search.backends.milvus import query_all

        return query_all(self.client, collection, filt, fields, batch_size=_SCAN)

    def _bodies(self, kind: str, ids: Iterable[str], extra: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        """Records of ``kind`` among ``ids`` by id: ``body`` joined from its parts, plus ``extra`` columns."""
        keys = list(dict.fromkeys(ids))
        rows: list[dict[str, Any]] = []
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            rows += self._get(self.records, f"kind == {_q(kind)} and rid in {_dumps(part)}",
                                ["rid", "part", "body", *extra])
        return _joined(rows)

    def _json(self, kind: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {rid: json.loads(r["body"]) for rid, r in self._bodies(kind, ids).items()}

    def _heads_of(self, kind: str, ids: Iterable[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """First-part rows of ``kind`` among ``ids`` with ``fields`` (no body read)."""
        keys = list(dict.fromkeys(ids))
        rows: list[dict[str, Any]] = []
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            rows += self._get(self.records, f"kind == {_q(kind)} and part == 0 and rid in {_dumps(part)}",
                                ["rid", *fields])
        return rows

    def close(self) -> None:
        """Nothing of its own: the client belongs to the build's backend, which closes it."""

    def build_file(self, name: str) -> str | None:
        """The text of a build file the export carried (``FILES``), or None if the build had none."""
        row = self._bodies("file", [name]).get(name)
        return row["body"] if row else None

    @contextmanager
    def registry_copy(self) -> Iterator[Path]:
        """A temporary folder holding the build's ``registry.jsonl`` (what ``build_linker`` reads); it is
        removed once the linker is built: the registry lives in the linker's memory, not on disk."""
        with tempfile.TemporaryDirectory(prefix="personae-registry-") as tmp:
            text = self.build_file(layout.REGISTRY)
            if text is not None:
                (Path(tmp) / layout.REGISTRY).write_text(text, encoding="utf-8")
            yield Path(tmp)

    def meta(self) -> dict[str, str]:
        return {"format": str(STORE_FORMAT), **{k: str(v) for k, v in self.counts().items()}}

    def counts(self) -> dict[str, int]:
        text = self.build_file(COUNTS)
        if text is None:
            raise IndexFormatMismatch(f"Milvus collection {self.records!r} has no row counts; run "
                                      "`personae export-milvus`")
        return {k: int(v) for k, v in json.loads(text).items()}

    def check(self) -> list[str]:
        """Record counts against the counts the export carried."""
        counts = self.counts()
        problems = []
        for key, kind in (("documents", "document"), ("paragraphs", "paragraph"), ("entities", "entity")):
            res = self.client.query(self.records, filter=f"kind == {_q(kind)} and part == 0",
                                    output_fields=["count(*)"])
            n = int(res[0]["count(*)"])
            if counts.get(key) != n:
                problems.append(f"{self.records} has {n} {key}, its counts say {counts.get(key)}")
        return problems

    # --------------------------------------------------------------------------------- documents
    def document_list(self) -> tuple[list[str], list[str | None]]:
        rows = sorted(self._query(self.records, 'kind == "document" and part == 0', ["rid", "ord", "date"]),
                      key=lambda r: r["ord"])
        return [r["rid"] for r in rows], [r["date"] or None for r in rows]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        return self._json("document", [doc_id]).get(doc_id)

    def documents(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._json("document", doc_ids)

    def doc_heads(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {r["rid"]: json.loads(r["head"]) for r in self._heads_of("document", doc_ids, ["head"])}

    def doc_paragraphs(self, doc_id: str) -> list[dict[str, Any]]:
        rows = self._query(self.records, f'kind == "paragraph" and doc_id == {_q(doc_id)}',
                           ["rid", "part", "body", "n"])
        joined = sorted(_joined(rows).values(), key=lambda r: r["n"])
        return [json.loads(r["body"]) for r in joined]

    # -------------------------------------------------------------------------------- paragraphs
    def paragraph(self, pid: str) -> dict[str, Any] | None:
        return self._json("paragraph", [pid]).get(pid)

    def paragraphs(self, pids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._json("paragraph", pids)

    def paragraph_docs(self, pids: Iterable[str]) -> dict[str, int]:
        return {r["rid"]: int(r["doc"]) for r in self._heads_of("paragraph", pids, ["doc"])}

    def _ids_field(self) -> str:
        """Where the linked ids of a paragraph row are read: ``entity_text`` (space-separated), which
        milvus-lite returns an order of magnitude faster than the ``entity`` array, unless some id holds
        whitespace (then the array)."""
        if self._linked is None:
            info = json.loads(self.build_file(EXPORT) or '{"spaced_ids": true}')
            self._linked = "entity" if info.get("spaced_ids", True) else "entity_text"
        return self._linked

    def _ids(self, row: dict[str, Any]) -> list[str]:
        value = row[self._ids_field()]
        return value.split() if isinstance(value, str) else list(value)

    def _links(self, pids: Iterable[str]) -> list[dict[str, Any]]:
        keys = list(dict.fromkeys(pids))
        rows: list[dict[str, Any]] = []
        for i in range(0, len(keys), _CHUNK):
            rows += self._get(self.paragraph_collection, f"id in {_dumps(keys[i : i + _CHUNK])}",
                              ["id", self._ids_field()])
        return rows

    def entity_counts(self, pids: Iterable[str]) -> dict[str, int]:
        return dict(Counter(e for r in self._links(pids) for e in self._ids(r)))

    def iter_paragraphs(self) -> Iterator[dict[str, Any]]:
        return self._iter("paragraph")

    def iter_documents(self) -> Iterator[dict[str, Any]]:
        return self._iter("document")

    def _iter(self, kind: str) -> Iterator[dict[str, Any]]:
        rows = _joined(self._query(self.records, f"kind == {_q(kind)}", ["rid", "part", "body", "ord"]))
        for r in sorted(rows.values(), key=lambda r: r["ord"]):
            yield json.loads(r["body"])

    def paragraph_ids(self) -> list[str]:
        rows = self._query(self.records, 'kind == "paragraph" and part == 0', ["rid", "ord"])
        return [r["rid"] for r in sorted(rows, key=lambda r: r["ord"])]

    # ---------------------------------------------------------------------------------- entities
    def entity(self, entity_id: str) -> dict[str, Any] | None:
        return self._json("entity", [entity_id]).get(entity_id)

    def entity_briefs(self, entity_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        rows = self._heads_of("entity", entity_ids, ["head", "type"])
        return {r["rid"]: (r["head"], r["type"]) for r in rows}

    def known(self, entity_ids: Iterable[str]) -> set[str]:
        return {r["rid"] for r in self._heads_of("entity", entity_ids, [])}

    def entity_table(self) -> dict[str, dict[str, Any]]:
        rows = _joined(self._query(self.records, 'kind == "entity"', ["rid", "part", "body"]))
        return {eid: json.loads(rows[eid]["body"]) for eid in sorted(rows)}

    def find_entities(self, *, type: str | None, q: str | None, limit: int,
                      offset: int) -> tuple[int, list[dict[str, Any]]]:
        """As ``StoreReader.find_entities``. Without ``q`` a page is a range of the rank the export wrote;
        with ``q`` Milvus' ``like`` narrows the rows and the exact casefolded substring test runs here."""
        where = ['kind == "entity"', "part == 0"]
        rank = "ord"
        if type:
            where.append(f"type == {_q(type)}")
            rank = "doc"
        if not q:
            filt = " and ".join(where)
            res = self.client.query(self.records, filter=filt, output_fields=["count(*)"])
            total = int(res[0]["count(*)"])
            page = self._query(self.records, f"{filt} and {rank} >= {int(offset)} and {rank} < "
                               f"{int(offset) + int(limit)}", ["rid", rank])
            ids = [r["rid"] for r in sorted(page, key=lambda r: r[rank])]
        else:
            needle = q.casefold()
            literal = max(_literal_runs(needle), key=len)
            if literal:
                where.append(f"names like {_q('%' + literal + '%')}")
            rows = self._query(self.records, " and ".join(where), ["rid", "ord", "names"])
            hits = sorted((r for r in rows if needle in r["names"]), key=lambda r: r["ord"])
            total = len(hits)
            ids = [r["rid"] for r in hits[offset : offset + limit]]
        bodies = self._json("entity", ids)
        return total, [bodies[i] for i in ids if i in bodies]

    # ------------------------------------------------------------------------ lookups by entity
    def _by(self, field: str, entity_id: str) -> list[dict[str, Any]]:
        """Paragraphs whose ``field`` array holds ``entity_id`` (with their linked ids), oldest document
        first (undated first, then document id and paragraph number), as ``StoreReader.entity_mentions``
        orders them. The last ``_BY_CACHE`` lists are kept: a build's rows never change, and an entity page
        asks twice (mentions, co-mentions)."""
        key = (field, entity_id)
        with self._lock:
            if key in self._by_cache:
                self._by_cache.move_to_end(key)
                return self._by_cache[key]
        rows = self._query(self.paragraph_collection, f"ARRAY_CONTAINS({field}, {_q(entity_id)})",
                           ["id", "doc_id", "n", "date", self._ids_field()])
        rows.sort(key=lambda r: (r["date"], r["doc_id"], r["n"]))
        with self._lock:
            self._by_cache[key] = rows
            while len(self._by_cache) > _BY_CACHE:
                self._by_cache.popitem(last=False)
        return rows

    def _with_docs(self, pids: list[str]) -> list[dict[str, Any]]:
        paras = self.paragraphs(pids)
        heads = self.doc_heads(p["doc_id"] for p in paras.values())
        return [dict(paras[pid], _doc=heads[paras[pid]["doc_id"]]) for pid in pids if pid in paras]

    def entity_mentions(
        self, entity_id: str, limit: int
    ) -> tuple[int, list[dict[str, Any]], list[str | None]]:
        rows = self._by("entity", entity_id)
        return len(rows), self._with_docs([r["id"] for r in rows[:limit]]), [r["date"] or None for r in rows]

    def co_mentioned(self, entity_id: str, top: int) -> list[tuple[str, int]]:
        rows = self._by("entity", entity_id)
        counts = Counter(e for r in rows for e in set(self._ids(r)) if e != entity_id)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]

    def quoted(self, speaker: str) -> list[dict[str, Any]]:
        return self._with_docs([r["id"] for r in self._by("said", speaker)])


def _literal_runs(text: str) -> list[str]:
    """The runs of ``text`` free of characters a ``like`` pattern or a string literal treats specially."""
    return re.split(r'[%_\\"\']+', text)


def _joined(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows by ``rid`` with the ``body`` of every part joined in part order (other columns: part 0's)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["rid"], []).append(r)
    out = {}
    for rid, parts in by.items():
        parts.sort(key=lambda r: r["part"])
        out[rid] = {**parts[0], "body": "".join(p["body"] for p in parts)}
    return out


@dataclass
class LiveBuild:
    """What a searcher state needs, opened from Milvus alone."""

    name: str
    manifest: layout.Manifest
    store: MilvusStore
    backend: Any  # search.backends.milvus.MilvusBackend
    clusters: list[list[str]]


def read_manifest(store: MilvusStore, build: str) -> layout.Manifest:
    text = store.build_file(layout.MANIFEST)
    where = f"build {build} in Milvus ({store.records})"
    if text is None:
        raise IndexFormatMismatch(f"{where} has no manifest; run `personae export-milvus`")
    try:
        data = json.loads(text)
        manifest = layout.Manifest(**data)
    except (ValueError, TypeError) as err:
        raise IndexFormatMismatch(f"{where} has an unreadable manifest ({err}); run `personae export-milvus`"
                                  ) from None
    if manifest.format != layout.INDEX_FORMAT:
        raise IndexFormatMismatch(f"{where} has index format {manifest.format}, this Personae reads "
                                  f"{layout.INDEX_FORMAT}; run `personae build` and `personae export-milvus`")
    return manifest


def open_live(uri: str, collection: str, build: str | None = None, *, client: Any = None) -> LiveBuild:
    """Open build ``build`` (default: the live one) of ``collection`` at ``uri``: its manifest, records,
    backend and duplicate clusters, from Milvus only."""
    from search.backends.milvus import MilvusBackend, connect

    own = client is None
    client = client or connect(uri)
    try:
        build = build or live_build(client, collection, uri)
        backend = MilvusBackend.open(uri, collection, expect_build=build, client=client)
        store = MilvusStore.open(client, backend.collection)
        manifest = read_manifest(store, build)
        dup = store.build_file(layout.DUPLICATES)
        clusters = [list(c) for c in json.loads(dup).get("clusters", [])] if dup else []
    except BaseException:
        if own:
            client.close()
        raise
    return LiveBuild(build, manifest, store, backend, clusters)
