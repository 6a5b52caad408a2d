"""The Milvus backend: the keyword, vector and entity legs in one Milvus collection.

The same ``MilvusClient`` code serves a local file (``uri="/path/milvus.db"``, milvus-lite: the Milvus 2.5
core in-process, for tests and one-machine trials) and a cluster (``uri="http://host:19530"``: sharded,
replicated, the path for corpora past one machine). Schema, one row per paragraph::

    id            VARCHAR primary key (the paragraph id)
    ord           INT64    position in the build (filter-only results come back in build order)
    doc_id, n, title, date
    text          VARCHAR  "title\\nparagraph", english analyzer  --BM25 function-->  sparse
    entity_text   VARCHAR  linked entity ids, whitespace tokenizer --BM25 function-->  entity_sparse
    entity, said  ARRAY<VARCHAR> (filters: ARRAY_CONTAINS_ALL)
    dense         FLOAT_VECTOR(dim from the manifest), inner product on unit vectors = cosine

Each exported build also has a records collection and the collections share a live-build pointer
(``search/backends/milvus_store.py``): a milvus-backed server reads everything from the engine.

Keyword queries are plain words: Milvus has no Whoosh syntax, so ``parse`` keeps the words, and quoted
phrases / excluded terms (``-x``, ``NOT x``) become a client-side check on the analysed text of an
over-fetched candidate list (milvus-lite 2.5 has no TEXT_MATCH/PHRASE_MATCH). Known differences from the
embedded backend are listed in docs/scale-out.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index import layout
from index.errors import IndexFormatMismatch, IndexMissing, PersonaeError
from index.keyword import Matches, Restrict
from index.store import open_store
from search.backends.base import Hits

SCHEMA_VERSION = 2  # 2: each build's records and the live pointer beside it (milvus_store.py)
MAX_LIMIT = 16_384  # Milvus caps search top-k and query limit at 16384
MAX_VARCHAR = 65_535  # bytes
MAX_IDS = 1024  # entity / speaker ids per paragraph
INSERT_BATCH = 1000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 128, 256  # same as index/vectors.py
BM25_K1, BM25_B = 1.2, 0.75
_TOKEN = re.compile(r'"[^"]*"|\S+')
_SYNTAX = re.compile(r'[()+*^~"]')


def _milvus() -> Any:
    try:
        import pymilvus
    except ImportError as err:
        raise PersonaeError(
            f"the milvus backend needs pymilvus ({err}); pip install 'personae[milvus]'"
        ) from None
    return pymilvus


def is_local(uri: str) -> bool:
    """A file path (milvus-lite) rather than a server address (``http://host:19530``, or a Milvus gRPC
    socket ``unix:/path.sock``, such as the one a milvus-lite server in another process listens on)."""
    return not re.match(r"^([a-z][a-z0-9+.-]*://|unix:)", uri)


def _no_mvcc_warning(record: logging.LogRecord) -> bool:
    """milvus-lite returns no session timestamp to ``query_iterator``, which then uses the client's clock
    (the same snapshot for one process) and warns on every scan; that warning says nothing to act on."""
    return "mvccTs" not in record.getMessage()


def connect(uri: str, token: str | None = None) -> Any:
    """A ``MilvusClient``; for a local file it starts milvus-lite (quietly: its engine logs at INFO)."""
    pymilvus = _milvus()
    if is_local(uri):
        os.environ.setdefault("RUST_LOG", "warn")
        logging.getLogger("pymilvus.orm.iterator").addFilter(_no_mvcc_warning)
        Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        uri = str(Path(uri).expanduser().resolve())
    token = token if token is not None else os.environ.get("PERSONAE_MILVUS_TOKEN", "")
    try:
        return pymilvus.MilvusClient(uri=uri, token=token)
    except pymilvus.exceptions.MilvusException as err:
        if is_local(uri):  # milvus-lite serves one process per file
            raise PersonaeError(
                f"cannot open the milvus-lite file {uri} ({err.message}): is another process (a running "
                "`personae serve`?) using it? milvus-lite allows one process per file; stop that one, or use "
                "a Milvus server, which takes exports while serving"
            ) from None
        raise PersonaeError(f"cannot connect to Milvus at {uri}: {err.message}") from None


# ------------------------------------------------------------------------------------------- query text
@dataclass(frozen=True)
class MilvusQuery:
    """A user query reduced to what Milvus can do: BM25 over ``words``, then exact client-side checks."""

    words: str
    phrases: tuple[tuple[str, ...], ...] = ()  # analysed tokens that must appear in a row, in order
    required: frozenset[str] = frozenset()  # analysed tokens that must all appear (``a AND b``)
    excluded: frozenset[str] = frozenset()  # analysed tokens that must not appear (``-a``, ``NOT a``)
    excluded_phrases: tuple[tuple[str, ...], ...] = ()  # analysed phrases that must not appear

    @property
    def needs_check(self) -> bool:
        return bool(self.phrases or self.required or self.excluded or self.excluded_phrases)


def _stems(text: str) -> list[str]:
    from index.keyword import analyzer  # the embedded backend's analyzer: same stems for the checks

    return [t.text for t in analyzer()(text)]


def parse_text(text: str) -> MilvusQuery | None:
    """Reduce Whoosh syntax to BM25 words plus checks. Words are OR-ed, as Whoosh's default group is.

    Phrases are required only when the query is nothing but phrases (with loose words too, Whoosh ORs the
    phrase with them); ``a AND b`` requires both; ``-a`` and ``NOT a`` exclude (Whoosh's OR group does not).
    """
    items: list[tuple[str, str]] = []  # (kind, text): kind in word / phrase / and / not
    for tok in _TOKEN.findall(text or ""):
        if tok in ("AND", "OR", "NOT"):
            items.append((tok.lower(), tok))
            continue
        neg = tok.startswith("-")
        plain = _SYNTAX.sub(" ", tok.lstrip("-")).strip()
        if plain:
            if neg:
                items.append(("not", "NOT"))
            items.append(("phrase" if tok.startswith('"') else "word", plain))
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    required: set[str] = set()
    excluded: set[str] = set()
    only_phrases = True
    for i, (kind, value) in enumerate(items):
        if kind not in ("word", "phrase"):
            continue
        stems = _stems(value)
        before = items[i - 1][0] if i else ""
        after = items[i + 1][0] if i + 1 < len(items) else ""
        if before == "not":
            excluded.update(stems)
            continue
        words.append(value)
        only_phrases &= kind == "phrase"
        if kind == "phrase" and len(stems) > 1:
            phrases.append(tuple(stems))
        if "and" in (before, after):
            required.update(stems)
    if not any(_stems(w) for w in words):
        return None
    return MilvusQuery(" ".join(words), tuple(phrases) if only_phrases else (), frozenset(required),
                       frozenset(excluded))


def _has_phrase(toks: list[str], ph: tuple[str, ...]) -> bool:
    n = len(ph)
    return any(tuple(toks[i:i + n]) == ph for i in range(len(toks) - n + 1))


def _passes(q: MilvusQuery, text: str) -> bool:
    toks = _stems(text)
    present = set(toks)
    if q.excluded & present or not q.required <= present:
        return False
    if any(_has_phrase(toks, ph) for ph in q.excluded_phrases):
        return False
    return all(_has_phrase(toks, ph) for ph in q.phrases)


def _exclusions(restrict: Restrict | None) -> MilvusQuery | None:
    """The restriction's excluded words and phrases as a check-only query (None: nothing to check)."""
    if not restrict or not restrict.exclude:
        return None
    words: set[str] = set()
    phrases: list[tuple[str, ...]] = []
    for tok in _TOKEN.findall(restrict.exclude):
        stems = _stems(tok.strip('"'))
        if len(stems) > 1 and tok.startswith('"'):
            phrases.append(tuple(stems))
        else:
            words.update(stems)
    if not words and not phrases:
        return None
    return MilvusQuery("", excluded=frozenset(words), excluded_phrases=tuple(phrases))


def _client_side(restrict: Restrict | None) -> bool:
    return bool(restrict and (restrict.exclude or restrict.exclude_entities or restrict.exclude_said))


def _row_allowed(row: dict[str, Any], restrict: Restrict | None, ex: MilvusQuery | None) -> bool:
    """The checks Milvus cannot run: excluded words/phrases in the text, excluded entity/speaker ids."""
    if not restrict:
        return True
    if ex is not None and not _passes(ex, row.get("text", "")):
        return False
    if set(restrict.exclude_entities) & set(row.get("entity") or ()):
        return False
    return not set(restrict.exclude_said) & set(row.get("said") or ())


_CHECK_FIELDS = ["text", "entity", "said"]


def _with_exclusions(q: MilvusQuery, restrict: Restrict | None) -> MilvusQuery:
    ex = _exclusions(restrict)
    if ex is None:
        return q
    return MilvusQuery(q.words, q.phrases, q.required, q.excluded | ex.excluded,
                       q.excluded_phrases + ex.excluded_phrases)


def _filter(entities: Sequence[str], said: Sequence[str], restrict: Restrict | None = None) -> str:
    """A Milvus boolean expression for the filters: entity/speaker ids, excluded ids, the date range
    (ISO days compare as strings; undated rows hold "" and are left out of any range)."""
    parts = [f"ARRAY_CONTAINS_ALL({name}, {json.dumps(list(ids))})"
             for name, ids in (("entity", entities), ("said", said)) if ids]
    if restrict:  # excluded ids are checked client-side: milvus-lite 2.5 cannot negate ARRAY_CONTAINS
        if restrict.date_from:
            parts.append(f"date >= {json.dumps(restrict.date_from)}")
        if restrict.date_to:
            parts.append(f"date <= {json.dumps(restrict.date_to)} and date != \"\"")
    return " and ".join(parts)


def _clip(text: str, limit: int = MAX_VARCHAR) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


# ---------------------------------------------------------------------------------------------- writing
def create_collection(client: Any, collection: str, dim: int, *, local: bool, description: str = "",
                      shards: int = 1) -> None:
    """(Re)create ``collection`` with the Personae schema and its indexes."""
    pymilvus = _milvus()
    DataType, Function, FunctionType = pymilvus.DataType, pymilvus.Function, pymilvus.FunctionType
    if client.has_collection(collection):
        client.drop_collection(collection)
    s = client.create_schema(auto_id=False, description=description)
    s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
    s.add_field("ord", DataType.INT64)
    s.add_field("doc_id", DataType.VARCHAR, max_length=512)
    s.add_field("n", DataType.INT64)
    s.add_field("title", DataType.VARCHAR, max_length=4096)
    s.add_field("date", DataType.VARCHAR, max_length=64)
    s.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                analyzer_params={"type": "english"})
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("entity_text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                analyzer_params={"tokenizer": "whitespace"})
    s.add_field("entity_sparse", DataType.SPARSE_FLOAT_VECTOR)
    for name in ("entity", "said"):
        s.add_field(name, DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_IDS, max_length=256)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    for src, out in (("text", "sparse"), ("entity_text", "entity_sparse")):
        s.add_function(Function(name=f"bm25_{src}", function_type=FunctionType.BM25,
                                input_field_names=[src], output_field_names=[out]))
    ip = client.prepare_index_params()
    for field in ("sparse", "entity_sparse"):
        ip.add_index(field, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"inverted_index_algo": "DAAT_MAXSCORE", "bm25_k1": BM25_K1, "bm25_b": BM25_B})
    if local:  # milvus-lite runs FLAT whatever is asked: exact search, like embedded below 50k rows
        ip.add_index("dense", index_type="FLAT", metric_type="IP")
    else:
        ip.add_index("dense", index_type="HNSW", metric_type="IP",
                     params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})
        for name in ("entity", "said"):
            ip.add_index(name, index_type="INVERTED")
    # Strong: a server that has just read the live pointer sees every row of the export it names
    client.create_collection(collection, schema=s, index_params=ip, num_shards=shards,
                             consistency_level="Strong")


def rows_from_build(folder: Path) -> tuple[list[dict[str, Any]], np.ndarray, dict[str, Any]]:
    """(paragraph rows with title/date, vectors in row order, manifest) read from a build folder."""
    from index.vectors import VectorIndex

    manifest = layout.read_manifest(folder)
    store = open_store(folder)
    try:
        docs = store.doc_heads(store.document_list()[0])
        paragraphs = list(store.iter_paragraphs())
    finally:
        store.close()
    if not (folder / layout.VECTORS).is_file():
        raise IndexMissing(f"{folder} has no {layout.VECTORS}; the milvus backend needs the vectors")
    index = VectorIndex.open(folder)  # the base and an incremental build's delta
    rows = index.rows_of([p["id"] for p in paragraphs])
    missing = [p["id"] for p, row in zip(paragraphs, rows.tolist(), strict=True) if row < 0]
    if missing:
        raise IndexFormatMismatch(f"{len(missing)} paragraphs have no vector (first {missing[0]!r})")
    vectors = index.vectors(rows)
    for p in paragraphs:
        d = docs.get(p["doc_id"], {})
        p.setdefault("title", d.get("title") or "")
        p.setdefault("date", d.get("date") or "")
    return paragraphs, np.asarray(vectors, dtype=np.float32), manifest.to_dict()

def _records(rows: Sequence[dict[str, Any]], vectors: np.ndarray, start: int) -> Iterator[dict[str, Any]]:
    for i, (p, vec) in enumerate(zip(rows, vectors, strict=True)):
        entity = sorted({x["entity_id"] for x in p.get("links", [])})
        said = sorted({q["speaker"] for q in p.get("quotes", []) if q.get("speaker")})
        if len(entity) > MAX_IDS or len(said) > MAX_IDS:
            raise PersonaeError(f"paragraph {p['id']} links more than {MAX_IDS} entities")
        title = p.get("title") or ""
        yield {
            "id": p["id"], "ord": start + i, "doc_id": p["doc_id"], "n": int(p.get("n", 0)),
            "title": _clip(title, 4096), "date": (p.get("date") or "")[:64],
            "text": _clip(f"{title}\n{p['text']}" if title else p["text"]),
            "entity_text": " ".join(entity), "entity": entity, "said": said, "dense": vec.tolist(),
        }


def build_collection(collection: str, build: str) -> str:
    """The collection that holds ``build``: ``personae__build_20261126T…`` (Milvus allows ``[A-Za-z0-9_]``).

    Each build gets its own collection, so an export never touches the one a server is reading: the server
    keeps answering from the previous build (folder and collection) until the new export exists, then
    switches — the CURRENT swap of the embedded backend, for Milvus.
    """
    return f"{collection}__{re.sub(r'[^0-9A-Za-z_]', '_', build)}" if build else collection


def exported(client: Any, collection: str) -> list[str]:
    """The per-build paragraph collections of ``collection`` at this Milvus, oldest first (build names sort
    by time); each build's records collection (``milvus_store.records_collection``) goes with it."""
    from search.backends.milvus_store import RECORDS

    return sorted(c for c in client.list_collections()
                  if c.startswith(f"{collection}__") and not c.endswith(RECORDS))


def _prune(client: Any, collection: str, current: str, keep: int) -> list[str]:
    """Drop per-build collections beyond the newest ``keep``, records included. ``current`` and the live
    build's (the one servers follow) always stay."""
    from search.backends.milvus_store import live_build, live_collection, records_collection

    live = build_collection(collection, live_build(client, collection)) \
        if client.has_collection(live_collection(collection)) else current
    others = [c for c in exported(client, collection) if c not in (current, live)]
    spare = keep - 1 - (live != current)  # newest other builds kept besides current and live
    drop = others[: max(0, len(others) - max(0, spare))]
    for name in drop:
        client.drop_collection(name)
        if client.has_collection(records_collection(name)):
            client.drop_collection(records_collection(name))
    return drop


def write(
    source: Path | tuple[Sequence[dict[str, Any]], np.ndarray],
    uri: str,
    collection: str = "personae",
    *,
    build: str = "",
    shards: int = 1,
    replicas: int = 1,
    keep: int = 2,
    batch: int = INSERT_BATCH,
    client: Any = None,
) -> dict[str, Any]:
    """Load a build folder (or ``(rows, vectors)``: paragraph dicts with title/date, and their vectors) into
    the build's own collection (:func:`build_collection`) at ``uri``, replacing only that one; then drop
    older builds' collections beyond the newest ``keep`` (the previous one stays by default, for servers
    that have not switched yet). ``shards``/``replicas`` only matter on a cluster.

    A build folder also gets its records collection (documents, paragraphs, entities and the build files a
    server reads: ``milvus_store.py``), and once both are loaded the live pointer names the build: servers
    with ``backend=milvus`` switch to it. ``(rows, vectors)`` loads the paragraph collection only (the legs,
    for benchmarks) and leaves the live build as it was."""
    if keep < 1:
        raise PersonaeError(f"keep={keep}: at least the exported build's collection is kept (>= 1)")
    if isinstance(source, (str, Path)):
        folder = Path(source)
        rows, vectors, _ = rows_from_build(folder)
        build = build or folder.name
    else:
        folder = None
        rows, vectors = source
        vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(rows):
        raise PersonaeError(f"{len(rows)} rows but vectors of shape {vectors.shape}")
    local = is_local(uri)
    own = client is None
    client = client or connect(uri)
    target = build_collection(collection, build)
    try:
        desc = json.dumps({"personae": SCHEMA_VERSION, "build": build, "dim": int(vectors.shape[1])})
        create_collection(client, target, int(vectors.shape[1]), local=local, description=desc,
                          shards=shards)
        for start in range(0, len(rows), batch):
            chunk = _records(rows[start:start + batch], vectors[start:start + batch], start)
            client.insert(target, list(chunk))
        client.flush(target)
        if local:
            client.load_collection(target)
        else:
            client.load_collection(target, replica_number=replicas)
        records = 0
        if folder is not None:
            from search.backends.milvus_store import records_collection, set_live, write_records

            records = write_records(client, records_collection(target), folder, local=local, batch=batch)
            set_live(client, collection, build)  # the commit: servers follow from here on
        dropped = _prune(client, collection, target, keep) if build else []
    finally:
        if own:
            client.close()
    return {"collection": target, "rows": len(rows), "dim": int(vectors.shape[1]), "build": build,
            "records": records, "live": folder is not None, "dropped": dropped}


# ---------------------------------------------------------------------------------------------- reading
class MilvusBackend:
    name = "milvus"

    def __init__(self, client: Any, collection: str, *, local: bool, info: dict[str, Any]):
        self.client = client
        self.collection = collection
        self.local = local
        self.info = info
        self._rows: int | None = None

    @classmethod
    def open(cls, uri: str, collection: str = "personae", *, expect_build: str | None = None,
             client: Any = None) -> MilvusBackend:
        """Connect to the collection of build ``expect_build`` (default: the live one, else the newest
        exported) and check it is a Personae one of that build."""
        own = client is None
        client = client or connect(uri)
        try:
            return cls._open(client, uri, collection, expect_build)
        except BaseException:
            if own:
                client.close()
            raise

    @classmethod
    def _open(cls, client: Any, uri: str, collection: str, expect_build: str | None) -> MilvusBackend:
        from search.backends.milvus_store import live_build, live_collection

        if not expect_build and client.has_collection(live_collection(collection)):
            expect_build = live_build(client, collection, uri)
        if expect_build:
            name = build_collection(collection, expect_build)
        else:
            builds = exported(client, collection)
            name = builds[-1] if builds else collection
        if not client.has_collection(name):
            builds = exported(client, collection)  # listed only to explain the error
            if expect_build and (builds or client.has_collection(collection)):
                raise IndexFormatMismatch(
                    f"Milvus at {uri} has no collection for build {expect_build!r} (it has "
                    f"{', '.join(builds) or collection}); run `personae export-milvus`")
            raise IndexMissing(f"no Milvus collection {name!r} at {uri}; run `personae export-milvus`")
        collection = name
        info = collection_info(client, collection)
        if info.get("personae") != SCHEMA_VERSION:
            raise IndexFormatMismatch(f"Milvus collection {collection!r} was not written by this Personae "
                                      "(schema differs); run `personae export-milvus`")
        if expect_build and info.get("build") != expect_build:
            raise IndexFormatMismatch(
                f"Milvus collection {collection!r} holds build {info.get('build')!r}, the current build is "
                f"{expect_build!r}; run `personae export-milvus`")
        client.load_collection(collection)
        return cls(client, collection, local=is_local(uri), info=info)

    # -- helpers
    def _search(self, field: str, data: Any, k: int, filt: str, fields: Sequence[str] = (),
                params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        k = min(int(k), MAX_LIMIT)
        if k <= 0:
            return []
        res = self.client.search(self.collection, data=[data], anns_field=field, limit=k, filter=filt,
                                 output_fields=list(fields) or None, search_params={"params": params or {}})
        return list(res[0]) if res else []

    def _query_all(self, filt: str, fields: Sequence[str] = ("id", "ord")) -> list[dict[str, Any]]:
        """Every row matching ``filt`` (iterates past the 16384-row query limit)."""
        return query_all(self.client, self.collection, filt, fields)

    def _query(self, query: Any) -> MilvusQuery | None:
        return parse_text(query) if isinstance(query, str) else query

    # -- the Backend protocol
    def warm(self) -> None:
        """Nothing to load here: the engine holds the data (and its own caches)."""

    def parse(self, text: str) -> MilvusQuery | None:
        return parse_text(text)

    def keyword(self, query: Any, k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
                restrict: Restrict | None = None) -> Hits:
        q, filt = self._query(query), _filter(entities, said, restrict)
        ex = _exclusions(restrict)
        if q is None:
            if not filt and not restrict:
                return []
            fields = ("id", "ord", *_CHECK_FIELDS) if _client_side(restrict) else ("id", "ord")
            rows = sorted(self._query_all(filt, fields), key=lambda r: r["ord"])
            return [(r["id"], 1.0) for r in rows if _row_allowed(r, restrict, ex)][:max(1, k)]
        if not q.needs_check and not _client_side(restrict):
            return [(h["id"], float(h["distance"])) for h in self._search("sparse", q.words, k, filt)]
        fetch = max(4 * k, k + 500)  # candidates for the client-side phrase/exclusion check
        hits = self._search("sparse", q.words, fetch, filt, fields=_CHECK_FIELDS)
        return [(h["id"], float(h["distance"])) for h in hits
                if _passes(q, h["entity"]["text"]) and _row_allowed(h["entity"], restrict, ex)][:k]

    def _checked(self, field: str, data: Any, k: int, filt: str, restrict: Restrict | None,
                 params: dict[str, Any] | None = None) -> Hits:
        """A search whose exclusions are checked client-side on an over-fetched list."""
        if not _client_side(restrict):
            hits = self._search(field, data, k, filt, params=params)
            return [(h["id"], float(h["distance"])) for h in hits]
        ex = _exclusions(restrict)
        hits = self._search(field, data, max(4 * k, k + 500), filt, fields=_CHECK_FIELDS, params=params)
        return [(h["id"], float(h["distance"])) for h in hits if _row_allowed(h["entity"], restrict, ex)][:k]

    def vector(
        self, qvec: np.ndarray, k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> Hits:
        vec = np.asarray(qvec, dtype=np.float32).reshape(-1).tolist()
        params = None if self.local else {"ef": max(HNSW_EF_SEARCH, min(int(k), MAX_LIMIT))}
        return self._checked("dense", vec, k, _filter(entities, said, restrict), restrict, params)

    def entity(
        self, entity_ids: Sequence[str], k: int, *, entities: Sequence[str] = (), said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> Hits:
        ids = [e for e in entity_ids if e and not any(c.isspace() for c in e)]
        if not ids:
            return []
        return self._checked("entity_sparse", " ".join(ids), k, _filter(entities, said, restrict), restrict)

    def count(self, query: Any, *, entities: Sequence[str] = (), said: Sequence[str] = (),
              restrict: Restrict | None = None) -> int:
        """Exact for filter-only counts; a keyword count is capped at 16384 (Milvus' top-k limit)."""
        q, filt = self._query(query), _filter(entities, said, restrict)
        if q is None:
            if not filt:
                return 0
            if _client_side(restrict):
                return len(self.keyword(None, 10**9, entities=entities, said=said, restrict=restrict))
            res = self.client.query(self.collection, filter=filt, output_fields=["count(*)"])
            return int(res[0]["count(*)"])
        return len(self.keyword(q, MAX_LIMIT, entities=entities, said=said, restrict=restrict))

    def matches(self, query: Any, *, entity_ids: Sequence[str] = (), entities: Sequence[str] = (),
                said: Sequence[str] = (), restrict: Restrict | None = None) -> Matches | None:
        """None: Milvus caps a search at 16384 hits, so grouped paging covers the fused window only."""
        return None

    def matching(self, query: Any, pids: Sequence[str]) -> set[str] | None:
        """None: the searcher asks ``keyword`` for the phrase's best matches instead."""
        return None

    def _no_matches(self, *_: Any) -> Any:
        raise PersonaeError("the milvus backend lists no Matches (matches() returns None)")

    locate = doc_names = entity_counts = entity_count_array = doc_name = paragraph_ids = _no_matches

    def entity_paragraphs(self, entity_id: str, field: str = "entity") -> list[str]:
        if field not in ("entity", "said"):
            raise PersonaeError(f"field must be 'entity' or 'said', not {field!r}")
        rows = self._query_all(f"ARRAY_CONTAINS({field}, {json.dumps(entity_id)})")
        return [r["id"] for r in sorted(rows, key=lambda r: r["ord"])]

    def vector_count(self) -> int:
        if self._rows is None:
            res = self.client.query(self.collection, filter="", output_fields=["count(*)"])
            self._rows = int(res[0]["count(*)"])
        return self._rows

    def close(self) -> None:
        self.client.close()


def collection_info(client: Any, collection: str) -> dict[str, Any]:
    """What Personae wrote into a collection's description (JSON), or {} when it is not ours."""
    try:
        info = json.loads(client.describe_collection(collection).get("description") or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def query_all(client: Any, collection: str, filt: str, fields: Sequence[str],
              batch_size: int = 4096) -> list[dict[str, Any]]:
    """Every row of ``collection`` matching ``filt``, through ``query_iterator`` (past Milvus' 16384-row
    query limit)."""
    it = client.query_iterator(collection, batch_size=batch_size, filter=filt, output_fields=list(fields))
    out: list[dict[str, Any]] = []
    try:
        while batch := it.next():
            out.extend(batch)
    finally:
        it.close()
    return out
