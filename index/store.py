"""The build's record store: documents, paragraphs (with links and quotes) and entities in SQLite files.

Servers read records by id from these files instead of holding the corpus in their heap: every worker
process opens the same files read-only, so their pages are shared through the OS page cache, and start-up
reads nothing but the document list (ids and dates, for grouping and timelines).

A store is ``store.sqlite`` (the head) and the layer files it names, ``store-<generation>.sqlite``, all in
the build folder. Layers hold the heavy rows under keys that never change once written; the head says which
documents the build has, in which order, and where each one's rows are. An incremental build shares the
previous build's layers (hard links: same inode, no bytes copied) and writes only the documents whose rows
changed (text, links, quotes) into one new layer, plus a new head; a document replaced or deleted keeps its
old rows in a shared layer, but no head row points at them any more. ``_plan`` compacts: when too few of the
base layer's documents are live, or too many live outside it, everything is written into a new base; when
there are too many delta layers, their live documents are written again into the new one.

Every file is written once (``write_store``, in the build's temp folder) and never modified after
publish, so readers open them with ``mode=ro&immutable=1`` (layers ATTACHed to the head's connection): no
locking, no journal lookups. Tables::

    head   meta        key -> value (format, row counts)
           layers      n (0 = base) | file | documents written | key ranges (dk_end, pk_end) | live documents
           live        ord (build order) | id | dk (document key) | layer | date | digest (of its rows) |
                       record (``record_digest`` of the document) | paragraphs | link_rows | quote_rows
           entities    id | name | type | mentions | names (casefolded name, aliases, surfaces) | body
                       (JSON) | surface_counts (JSON: how often each of ``surfaces`` was linked)
    layer  documents   dk | id | head (title, date, source, url) | body (the document)
           paragraphs  pk (paragraph key) | id | dk | n | body (row + links + quotes)
           links       entity_id | pk | dk | n  indexes (entity_id, pk, dk, n), (pk, entity_id)
           quotes      speaker | pk | dk | n    index (speaker, pk, dk, n)

Build order: documents by ``live.ord``, a document's paragraphs by ``n`` (= the vector rows' order).
``links`` and ``quotes`` hold only what lookups by entity need; the full link and quote records stay in
the paragraph's body, in the order the build wrote them. Entities change with every build (counts,
surfaces) and are small: the head holds the whole table.

A build that knows a document's rows are the previous build's (``kept``: its linking is unchanged) hands
over no paragraphs for it; the store checks only that the document itself is unchanged (``record``, the
digest of its JSON) and keeps its rows where they are. ``record``, the per-document row counts and
``surface_counts`` are columns older stores lack (NULL when read): a build on such a store keeps nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import IndexFormatMismatch, StorageError
from index.layers import keep_layers, layer_files, layer_name, next_generation, share

STORE = "store.sqlite"  # the build folder's file this module owns (index/layout.py lists them all)
STORE_FORMAT = 2  # 2: layers shared between builds (1: one file per build)
_CHUNK = 500  # ids per ``IN (...)`` query (SQLite allows 32766 variables; smaller keeps plans cheap)
_SEP = "\x1f"  # between the casefolded names of an entity in ``entities.names``
HEAD = ("title", "date", "source", "url")  # what a search hit shows of its document (``doc_heads``)

_HEAD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE layers (n INTEGER PRIMARY KEY, file TEXT NOT NULL, documents INTEGER NOT NULL,
                     dk_end INTEGER NOT NULL, pk_end INTEGER NOT NULL, live INTEGER NOT NULL);
CREATE TABLE live (ord INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, dk INTEGER NOT NULL UNIQUE,
                   layer INTEGER NOT NULL, date TEXT, digest TEXT NOT NULL, record TEXT, paragraphs INTEGER,
                   link_rows INTEGER, quote_rows INTEGER);
CREATE TABLE entities (id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, mentions INTEGER NOT NULL,
                       names TEXT NOT NULL, body TEXT NOT NULL, surface_counts TEXT);
"""
_HEAD_INDEXES = """
CREATE INDEX entities_rank ON entities (mentions DESC, id);
CREATE INDEX entities_type_rank ON entities (type, mentions DESC, id);
"""
_LAYER_SCHEMA = """
CREATE TABLE documents (dk INTEGER PRIMARY KEY, id TEXT NOT NULL, head TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE paragraphs (pk INTEGER PRIMARY KEY, id TEXT NOT NULL, dk INTEGER NOT NULL, n INTEGER NOT NULL,
                         body TEXT NOT NULL);
CREATE TABLE links (entity_id TEXT NOT NULL, pk INTEGER NOT NULL, dk INTEGER NOT NULL, n INTEGER NOT NULL);
CREATE TABLE quotes (speaker TEXT NOT NULL, pk INTEGER NOT NULL, dk INTEGER NOT NULL, n INTEGER NOT NULL);
"""
# Built after the rows are in (one sort each instead of index maintenance on every insert).
_LAYER_INDEXES = """
CREATE INDEX paragraphs_id ON paragraphs (id);
CREATE INDEX paragraphs_doc ON paragraphs (dk, n);
CREATE INDEX links_entity ON links (entity_id, pk, dk, n);
CREATE INDEX links_paragraph ON links (pk, entity_id);
CREATE INDEX quotes_speaker ON quotes (speaker, pk, dk, n);
"""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def entity_names(row: dict[str, Any]) -> str:
    """The casefolded names an entity search matches (name, aliases, surfaces), each between separators."""
    names = [row.get("name") or "", *row.get("aliases", ()), *row.get("surfaces", ())]
    return _SEP + _SEP.join(str(n).casefold() for n in names) + _SEP


@dataclass
class _Doc:
    """One document as the store writes it: its JSON, its paragraphs' JSON, and a digest of both (a
    document whose digest is unchanged since the previous build keeps its rows there). A document the build
    keeps has no paragraphs here (``kept``): its rows, digest and row counts are the previous build's."""

    id: str
    date: str | None
    head: str
    body: str
    paragraphs: list[tuple[str, int, str, list[str], list[str]]]  # id, n, body, linked ids, speakers
    digest: str = ""
    record: str = ""  # ``record_digest`` of the document
    kept: bool = False
    counts: tuple[int, int, int] = (0, 0, 0)  # paragraphs, link rows, quote rows

    def count(self) -> None:
        self.counts = (len(self.paragraphs), sum(len(p[3]) for p in self.paragraphs),
                       sum(len(p[4]) for p in self.paragraphs))


@dataclass(frozen=True)
class _Layer:
    file: str
    documents: int  # rows written, live or not
    dk_end: int  # keys of this layer's rows are below these
    pk_end: int


@dataclass(frozen=True)
class _Live:
    """A live document of the previous build's store."""

    dk: int
    layer: int
    digest: str
    record: str | None  # None: a store written before records
    counts: tuple[int, int, int] | None


@dataclass
class _Old:
    """The previous build's store, as far as the next build needs it: its layers and its live documents."""

    folder: Path
    layers: list[_Layer]
    live: dict[str, _Live]


def record_digest(document: dict[str, Any]) -> str:
    """The digest the store records of a document (what ``write_store`` checks of a kept one): of its JSON
    less the text, then of the text itself (hashing is cheap, escaping a whole corpus's text into JSON
    is not)."""
    rest = _dumps({k: v for k, v in document.items() if k != "text"})
    h = hashlib.sha256(rest.encode("utf-8", "surrogatepass"))
    h.update(b"\0")
    h.update(str(document.get("text") or "").encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def write_store(
    path: Path,
    documents: Iterable[dict[str, Any]],
    paragraphs: Iterable[dict[str, Any]],
    entities: dict[str, dict[str, Any]],
    previous: Path | None = None,
    *,
    kept: Collection[str] = (),
    records: dict[str, str] | None = None,
    surface_counts: dict[str, list[int]] | None = None,
) -> dict[str, int]:
    """Write the store at ``path`` (must not exist) and its layer files beside it; returns its row counts.

    ``paragraphs`` come in build order (the vector rows' order): grouped by document in the order of
    ``documents``, by ``n`` within one. With ``previous`` (the store of the build before), the layers that
    still hold enough live documents are shared with it (hard links) and only the documents whose rows
    changed are written, into one new layer; otherwise (or when ``_plan`` says compact) every document goes
    into one new base layer. No journal and no fsync here: the build fsyncs every file before it publishes.

    The documents in ``kept`` come without paragraphs: the caller knows their rows are those of the previous
    store (``kept_documents`` says which it may keep). A kept document that is not as the previous store
    recorded it (``record``; ``records`` gives the kept ones' ``record_digest`` when the caller has them) is
    an error. ``surface_counts``: per entity, how often each of its ``surfaces``
    was linked (what the next build's entity table starts from).
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(path)
    try:
        return _write(path, documents, paragraphs, entities, previous, kept, records or {},
                      surface_counts or {})
    except sqlite3.Error as err:  # a full disk is SQLITE_FULL here, not an OSError: name the file
        raise StorageError(path, str(err) or type(err).__name__, "write") from None


def _group(documents: Iterable[dict[str, Any]], paragraphs: Iterable[dict[str, Any]],
           kept: Collection[str] = (), records: dict[str, str] | None = None) -> list[_Doc]:
    """The documents in order with their paragraphs, serialised once, each with its digest (a kept
    document: its record only, from ``records`` when there)."""
    docs: list[_Doc] = []
    by_id: dict[str, _Doc] = {}
    for d in documents:
        i = d["id"]
        known = (records or {}).get(i) if i in kept else None
        body = "" if known is not None else _dumps(d)
        doc = _Doc(i, d.get("date"), "", body, [], record=known or record_digest(d), kept=i in kept)
        if doc.id in by_id:
            raise ValueError(f"document id {doc.id!r} appears twice")
        if not doc.kept:
            doc.head = _dumps({k: d.get(k) for k in HEAD})
        by_id[doc.id] = doc
        docs.append(doc)
    position = {doc.id: i for i, doc in enumerate(docs)}
    last = (-1, 0)
    for p in paragraphs:
        doc = by_id[p["doc_id"]]
        if doc.kept:
            raise ValueError(f"paragraph {p['id']!r} of document {doc.id!r}, which the build keeps")
        here = (position[doc.id], int(p["n"]))
        if here <= last:  # reads order paragraphs by (document, n): they must have been written so
            raise ValueError(f"paragraph {p['id']!r} is out of build order (documents' order, then n)")
        last = here
        doc.paragraphs.append(_paragraph(p["id"], int(p["n"]), _dumps(p), p))
    for doc in docs:
        if not doc.kept:
            _seal(doc)
    return docs


def _paragraph(pid: str, n: int, body: str, p: dict[str, Any]) -> tuple[str, int, str, list[str], list[str]]:
    return (pid, n, body, list(dict.fromkeys(x["entity_id"] for x in p.get("links", ()))),
            [s for s in dict.fromkeys(q.get("speaker") for q in p.get("quotes", ())) if s])


def _seal(doc: _Doc) -> None:
    """``doc``'s digest (its JSON and its paragraphs') and row counts."""
    h = hashlib.sha256(doc.body.encode("utf-8", "surrogatepass"))
    for _, _, body, _, _ in doc.paragraphs:
        h.update(b"\0")
        h.update(body.encode("utf-8", "surrogatepass"))
    doc.digest = h.hexdigest()[:32]
    doc.count()


def _read_old(previous: Path | None) -> _Old | None:
    """The previous store's layers and live documents, or None when it is missing or another format (the
    build then writes a whole base layer)."""
    if previous is None or not Path(previous).is_file():
        return None
    try:
        con = sqlite3.connect(Path(previous).resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
        try:
            fmt = con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if fmt is None or fmt[0] != str(STORE_FORMAT):
                return None
            layers = [_Layer(*r) for r in con.execute(
                "SELECT file, documents, dk_end, pk_end FROM layers ORDER BY n")]
            live = {i: _Live(dk, layer, digest, record, None if None in counts else tuple(counts))
                    for i, dk, layer, digest, record, *counts in con.execute(
                        f"SELECT id, dk, layer, digest, {_live_extras(con)} FROM live")}
        finally:
            con.close()
    except sqlite3.Error:
        return None
    folder = Path(previous).parent
    if not all((folder / x.file).is_file() for x in layers):
        return None
    return _Old(folder, layers, live)


def _live_extras(con: sqlite3.Connection) -> str:
    """The columns of ``live`` that a store written before records lacks, or NULLs in their place."""
    have = {r[1] for r in con.execute("PRAGMA table_info(live)")}
    return ", ".join(c if c in have else "NULL" for c in ("record", "paragraphs", "link_rows", "quote_rows"))


def kept_documents(previous: Path | None, records: dict[str, str]) -> set[str]:
    """Those of the documents ``records`` (id -> ``record_digest``) whose rows a store written on
    ``previous`` (the previous build's store) can keep: live there, recorded the same, with their row counts
    known (a store written before records keeps nothing)."""
    old = _read_old(previous)
    if old is None:
        return set()
    return {i for i, rec in records.items()
            if (was := old.live.get(i)) is not None and was.record == rec and was.counts is not None}


def _plan(docs: list[_Doc], old: _Old | None) -> tuple[list[_Layer], dict[str, tuple[int, int]]]:
    """Which of the previous build's layers the new store shares (``index.layers.keep_layers``), and where
    each document kept there lives (id -> (key, index among the kept layers)); the rest is written anew."""
    if old is None or not old.layers:
        return [], {}
    same: dict[int, list[_Doc]] = defaultdict(list)
    for doc in docs:
        was = old.live.get(doc.id)
        if was is not None and was.digest == doc.digest:
            same[was.layer].append(doc)
    keep = keep_layers([x.documents for x in old.layers], [len(same[i]) for i in range(len(old.layers))],
                       len(docs))
    where = {doc.id: (old.live[doc.id].dk, j) for j, i in enumerate(keep) for doc in same[i]}
    return [old.layers[i] for i in keep], where


def _adopt(docs: list[_Doc], old: _Old | None) -> None:
    """Kept documents take their digest and row counts from the previous store, once checked to be the
    documents it recorded."""
    for doc in docs:
        if not doc.kept:
            continue
        was = old.live.get(doc.id) if old is not None else None
        if was is None or was.record != doc.record or was.counts is None:
            raise ValueError(f"document {doc.id!r} is kept, but the previous store does not hold it as it is")
        doc.digest, doc.counts = was.digest, was.counts


def _copy_rows(old: _Old, docs: list[_Doc]) -> None:
    """The rows of kept documents whose layer is no longer shared (``_plan`` compacts), read back from the
    previous store's layers."""
    by_layer: dict[int, dict[int, _Doc]] = defaultdict(dict)
    for doc in docs:
        was = old.live[doc.id]
        by_layer[was.layer][was.dk] = doc
    for layer, by_key in by_layer.items():
        uri = (old.folder / old.layers[layer].file).resolve().as_uri() + "?mode=ro&immutable=1"
        con = sqlite3.connect(uri, uri=True)
        try:
            keys = list(by_key)
            for i in range(0, len(keys), _CHUNK):
                part = keys[i : i + _CHUNK]
                marks = ",".join("?" * len(part))
                sql = f"SELECT dk, head, body FROM documents WHERE dk IN ({marks})"
                for dk, head, body in con.execute(sql, part):
                    by_key[dk].head, by_key[dk].body = head, body  # the same document: its record is
                rows = con.execute(
                    f"SELECT dk, id, n, body FROM paragraphs WHERE dk IN ({marks}) ORDER BY dk, n", part)
                for dk, pid, n, body in rows:
                    by_key[dk].paragraphs.append(_paragraph(pid, n, body, json.loads(body)))
        finally:
            con.close()


def _write(
    path: Path,
    documents: Iterable[dict[str, Any]],
    paragraphs: Iterable[dict[str, Any]],
    entities: dict[str, dict[str, Any]],
    previous: Path | None,
    kept: Collection[str],
    records: dict[str, str],
    surface_counts: dict[str, list[int]],
) -> dict[str, int]:
    docs = _group(documents, paragraphs, kept, records)
    old = _read_old(previous)
    _adopt(docs, old)
    layers, where = _plan(docs, old)
    if old is not None:
        for layer in layers:  # shared, never written to: readers open layers immutable
            share(old.folder / layer.file, path.parent)
    fresh = [d for d in docs if d.id not in where]
    if old is not None:
        _copy_rows(old, [d for d in fresh if d.kept])
    dk = max((x.dk_end for x in layers), default=0)
    pk = max((x.pk_end for x in layers), default=0)
    keys: dict[str, int] = {}
    if fresh or not layers:
        names = [x.file for x in old.layers] if old is not None else []
        names += [p.name for p in layer_files(path.parent, "store", ".sqlite")]  # never over a file there
        name = layer_name("store", next_generation(names, "store", ".sqlite"), ".sqlite")
        dk_end, pk_end = _write_layer(path.parent / name, fresh, dk, pk, keys)
        layers = [*layers, _Layer(name, len(fresh), dk_end, pk_end)]
    new_layer = len(layers) - 1
    live = []
    for i, doc in enumerate(docs):
        key, layer = where.get(doc.id) or (keys[doc.id], new_layer)
        live.append((i, doc.id, key, layer, doc.date, doc.digest, doc.record, *doc.counts))
    counts = {"documents": len(docs), "paragraphs": sum(d.counts[0] for d in docs),
              "entities": len(entities),
              "link_rows": sum(d.counts[1] for d in docs),
              "quote_rows": sum(d.counts[2] for d in docs)}
    with _writing(path, _HEAD_SCHEMA, _HEAD_INDEXES) as con:
        in_layer = Counter(row[3] for row in live)
        con.executemany("INSERT INTO layers VALUES (?, ?, ?, ?, ?, ?)",
                        [(n, x.file, x.documents, x.dk_end, x.pk_end, in_layer[n])
                         for n, x in enumerate(layers)])
        con.executemany("INSERT INTO live VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", live)
        con.executemany(
            "INSERT INTO entities VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((eid, row.get("name") or eid, row.get("type") or "other", int(row.get("mentions", 0)),
              entity_names(row), _dumps(row), _dumps(surface_counts[eid]) if eid in surface_counts else None)
             for eid, row in entities.items()),
        )
        con.executemany("INSERT INTO meta VALUES (?, ?)",
                        [("format", str(STORE_FORMAT))] + [(k, str(v)) for k, v in counts.items()])
    return counts


def _write_layer(path: Path, docs: list[_Doc], dk: int, pk: int, keys: dict[str, int]) -> tuple[int, int]:
    """A layer file holding ``docs`` under keys from ``dk`` and ``pk`` on (each document's key goes into
    ``keys``); returns the keys after the last."""
    with _writing(path, _LAYER_SCHEMA, _LAYER_INDEXES) as con:
        rows: list[tuple[int, str, str, str]] = []
        paras: list[tuple[int, str, int, int, str]] = []
        links: list[tuple[str, int, int, int]] = []
        quotes: list[tuple[str, int, int, int]] = []
        for doc in docs:
            keys[doc.id] = dk
            rows.append((dk, doc.id, doc.head, doc.body))
            for pid, n, body, linked, speakers in doc.paragraphs:
                paras.append((pk, pid, dk, n, body))
                links += [(e, pk, dk, n) for e in linked]
                quotes += [(s, pk, dk, n) for s in speakers]
                pk += 1
            dk += 1
            if len(paras) >= 5000:
                _flush(con, rows, paras, links, quotes)
        _flush(con, rows, paras, links, quotes)
    return dk, pk


@contextmanager
def _writing(path: Path, schema: str, indexes: str) -> Iterator[sqlite3.Connection]:
    """A new SQLite file with ``schema``, its rows inserted by the block in one transaction (no journal, no
    sync: the build fsyncs every file before it publishes), then ``indexes`` built and analysed."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.executescript(schema)
        con.execute("BEGIN")
        yield con
        con.execute("COMMIT")
        con.executescript(indexes)
        con.execute("ANALYZE")
    finally:
        con.close()


def _flush(con: sqlite3.Connection, rows: list, paras: list, links: list, quotes: list) -> None:
    con.executemany("INSERT INTO documents VALUES (?, ?, ?, ?)", rows)
    con.executemany("INSERT INTO paragraphs VALUES (?, ?, ?, ?, ?)", paras)
    con.executemany("INSERT INTO links VALUES (?, ?, ?, ?)", links)
    con.executemany("INSERT INTO quotes VALUES (?, ?, ?, ?)", quotes)
    for part in (rows, paras, links, quotes):
        part.clear()


class StoreReader:
    """Read-only, thread-safe access to one build's store: one SQLite connection per thread.

    Every read that fails because the file is damaged raises ``IndexFormatMismatch`` (one line, a 503 at
    the web edge), never a bare ``sqlite3`` error.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
        self._local = threading.local()
        self._all: dict[threading.Thread, sqlite3.Connection] = {}  # to close them all, and a dead thread's
        self._lock = threading.Lock()
        self._layers = 0
        self._whole: frozenset[int] = frozenset()  # layers whose every document is live: no filter needed

    @classmethod
    def open(cls, path: Path) -> StoreReader:
        """Open and check the store: it exists, is a SQLite file and has this Personae's store format."""
        path = Path(path)
        if not path.is_file():
            raise IndexFormatMismatch(f"{path} is missing; rebuild the index with `personae build --full`")
        reader = cls(path)
        try:
            fmt = reader.meta().get("format")
        except IndexFormatMismatch:
            reader.close()
            raise
        if fmt != str(STORE_FORMAT):
            reader.close()
            raise IndexFormatMismatch(
                f"{path} has store format {fmt}, this Personae reads {STORE_FORMAT}; "
                "run `personae build --full`"
            )
        return reader

    # ---------------------------------------------------------------------------------- plumbing
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
                found = con.execute("SELECT file, documents = live FROM layers ORDER BY n").fetchall()
                files = [r[0] for r in found]
                for n, name in enumerate(files):
                    layer = self.path.parent / name
                    if not layer.is_file():
                        raise sqlite3.DatabaseError(f"its layer {name} is missing")
                    uri = layer.resolve().as_uri() + "?mode=ro&immutable=1"
                    con.execute(f"ATTACH DATABASE ? AS l{n}", (uri,))
            except sqlite3.Error as err:
                if con is not None:
                    con.close()
                raise self._damaged(err) from None
            with self._lock:
                for thread in [t for t in self._all if not t.is_alive()]:  # servers that churn threads
                    self._all.pop(thread).close()
                self._all[threading.current_thread()] = con
                self._layers = len(files)
                self._whole = frozenset(n for n, r in enumerate(found) if r[1])
            self._local.con = con
        return con

    @property
    def layers(self) -> range:
        """The attached layers' numbers (schema ``l<n>``), base first."""
        self._con()
        return range(self._layers)

    def _damaged(self, err: Exception) -> IndexFormatMismatch:
        return IndexFormatMismatch(
            f"{self.path} is damaged ({type(err).__name__}: {str(err)[:200]}); rebuild the index with "
            "`personae build --full`"
        )

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self._con().execute(sql, args).fetchall()
        except sqlite3.DatabaseError as err:  # "file is not a database", "database disk image is malformed"
            raise self._damaged(err) from None

    def _chunked(self, sql: str, keys: Sequence[Any], args: Sequence[Any] = ()) -> Iterator[tuple]:
        """``sql`` with ``{}`` standing for the placeholders of up to ``_CHUNK`` keys, over all ``keys``
        (``args`` bound before them)."""
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            yield from self._rows(sql.format(",".join("?" * len(part))), [*args, *part])

    def _each_layer(self, sql: str, keys: Sequence[Any] | None = None, args: Sequence[Any] = (),
                    live: str = "") -> Iterator[tuple]:
        """``sql`` run on every layer, ``{L}`` standing for its schema (with ``keys``: chunked, as
        ``_chunked``). A layer's rows of documents replaced or deleted since it was written have no ``live``
        row: the query joins ``live`` itself, or puts ``{live}`` where the join on the document key
        ``live`` goes (left out in a layer whose documents are all live)."""
        for n in self.layers:
            join = "" if n in self._whole else f"JOIN live o ON o.dk = {live}"
            q = sql.replace("{L}", f"l{n}").replace("{live}", join)
            if keys is None:
                yield from self._rows(q, args)
            else:
                yield from self._chunked(q, keys, args)

    def _located(self, doc_ids: Iterable[str]) -> dict[int, dict[int, str]]:
        """The live documents among ``doc_ids``: layer -> key -> id."""
        keys = list(dict.fromkeys(doc_ids))
        out: dict[int, dict[int, str]] = defaultdict(dict)
        for i, dk, layer in self._chunked("SELECT id, dk, layer FROM live WHERE id IN ({})", keys):
            out[layer][dk] = i
        return out

    def _doc_column(self, column: str, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``column`` (JSON) of the live documents among ``doc_ids``, by id, in the order asked."""
        ids = list(dict.fromkeys(doc_ids))
        found: dict[str, dict[str, Any]] = {}
        for layer, by_key in self._located(ids).items():
            sql = f"SELECT dk, {column} FROM l{layer}.documents WHERE dk IN ({{}})"
            found.update((by_key[dk], json.loads(v)) for dk, v in self._chunked(sql, list(by_key)))
        return {i: found[i] for i in ids if i in found}

    def _iter(self, table: str, batch: int = 500) -> Iterator[dict[str, Any]]:
        """Every ``body`` of ``table`` (documents or paragraphs) in build order, ``batch`` documents at a
        time."""
        last = -1
        order = ", n" if table == "paragraphs" else ""
        while True:
            docs = self._rows("SELECT ord, dk, layer FROM live WHERE ord > ? ORDER BY ord LIMIT ?",
                              (last, batch))
            if not docs:
                return
            ords = {dk: o for o, dk, _ in docs}
            by_layer: dict[int, list[int]] = defaultdict(list)
            for _, dk, layer in docs:
                by_layer[layer].append(dk)
            rows: list[tuple[int, int, str]] = []
            for layer, dks in by_layer.items():
                sql = f"SELECT dk{order or ', 0'}, body FROM l{layer}.{table} WHERE dk IN ({{}})"
                rows += [(ords[dk], n, body) for dk, n, body in self._chunked(sql, dks)]
            rows.sort(key=lambda r: (r[0], r[1]))
            for _, _, body in rows:
                yield json.loads(body)
            last = docs[-1][0]

    def close(self) -> None:
        with self._lock:
            for con in self._all.values():
                con.close()
            self._all.clear()
        self._local = threading.local()

    def meta(self) -> dict[str, str]:
        return dict(self._rows("SELECT key, value FROM main.meta"))

    def counts(self) -> dict[str, int]:
        """Row counts as written (``documents``, ``paragraphs``, ``entities``, ...)."""
        return {k: int(v) for k, v in self.meta().items() if k != "format"}

    def check(self) -> list[str]:
        """Problems found by SQLite's page check (of the store and each layer) and by counting every live
        row against ``counts`` (deep verification: reads every file)."""
        problems = [r[0] for r in self._rows("PRAGMA main.quick_check") if r[0] != "ok"][:5]
        for n in self.layers:
            checked = self._rows(f"PRAGMA l{n}.quick_check")
            problems += [f"layer {n}: {r[0]}" for r in checked if r[0] != "ok"][:5]
        if problems:
            return [f"{self.path.name}: {p}" for p in problems]
        found = {"documents": self._rows("SELECT count(*) FROM live")[0][0],
                 "entities": self._rows("SELECT count(*) FROM entities")[0][0]}
        for key, table in (("paragraphs", "paragraphs"), ("link_rows", "links"), ("quote_rows", "quotes")):
            found[key] = sum(self._per_layer_count(table))
        docs_found = sum(self._per_layer_count("documents"))
        if docs_found != found["documents"]:
            problems.append(f"{self.path.name} lists {found['documents']} documents, its layers hold "
                            f"{docs_found} of them")
        counts = self.counts()
        for key, n in found.items():
            if counts.get(key) != n:
                problems.append(f"{self.path.name} has {n} {key.replace('_rows', '')} rows, its counts say "
                                f"{counts.get(key)}")
        return problems

    def _per_layer_count(self, table: str) -> list[int]:
        return [self._rows(f"SELECT count(*) FROM l{n}.{table} t JOIN live o ON o.dk = t.dk AND o.layer = ?",
                           (n,))[0][0] for n in self.layers]

    # --------------------------------------------------------------------------------- documents
    def document_list(self) -> tuple[list[str], list[str | None]]:
        """Every document id and date, in build order (a document's ordinal is its position)."""
        rows = self._rows("SELECT id, date FROM live ORDER BY ord")
        return [r[0] for r in rows], [r[1] for r in rows]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        return self.documents([doc_id]).get(doc_id)

    def documents(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The documents among ``doc_ids`` that exist, by id."""
        return self._doc_column("body", doc_ids)

    def doc_heads(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``HEAD`` fields (title, date, source, url) of the documents among ``doc_ids``, by id: what a
        result shows, without parsing the documents' text."""
        return self._doc_column("head", doc_ids)

    def doc_paragraphs(self, doc_id: str) -> list[dict[str, Any]]:
        """A document's paragraphs in order, with their links and quotes."""
        for layer, by_key in self._located([doc_id]).items():
            rows = self._rows(f"SELECT body FROM l{layer}.paragraphs WHERE dk = ? ORDER BY n", list(by_key))
            return [json.loads(r[0]) for r in rows]
        return []

    # -------------------------------------------------------------------------------- paragraphs
    def paragraph(self, pid: str) -> dict[str, Any] | None:
        return self.paragraphs([pid]).get(pid)

    def paragraphs(self, pids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The paragraphs among ``pids`` that exist, by id in the order asked (links and quotes
        included)."""
        keys = list(dict.fromkeys(pids))
        sql = "SELECT p.id, p.body FROM {L}.paragraphs p {live} WHERE p.id IN ({})"
        found = dict(self._each_layer(sql, keys, live="p.dk"))
        return {i: json.loads(found[i]) for i in keys if i in found}

    def paragraph_docs(self, pids: Iterable[str]) -> dict[str, int]:
        """Document ordinal of each paragraph among ``pids`` that exists (no record is parsed)."""
        keys = list(dict.fromkeys(pids))
        sql = "SELECT p.id, o.ord FROM {L}.paragraphs p JOIN live o ON o.dk = p.dk WHERE p.id IN ({})"
        found = dict(self._each_layer(sql, keys))
        return {i: found[i] for i in keys if i in found}

    def entity_counts(self, pids: Iterable[str]) -> dict[str, int]:
        """Per entity id, how many of the paragraphs ``pids`` link to it."""
        keys = list(dict.fromkeys(pids))
        counts: dict[str, int] = {}
        sql = ("SELECT l.entity_id, count(*) FROM {L}.paragraphs p {live} "
               "JOIN {L}.links l ON l.pk = p.pk WHERE p.id IN ({}) GROUP BY l.entity_id")
        for eid, n in self._each_layer(sql, keys, live="p.dk"):
            counts[eid] = counts.get(eid, 0) + n
        return dict(sorted(counts.items()))

    def iter_paragraphs(self) -> Iterator[dict[str, Any]]:
        """Every paragraph in build order (exports, incremental builds, deep verification)."""
        return self._iter("paragraphs")

    def iter_documents(self) -> Iterator[dict[str, Any]]:
        """Every document in build order."""
        return self._iter("documents")

    def paragraph_ids(self) -> list[str]:
        sql = "SELECT o.ord, p.n, p.id FROM {L}.paragraphs p JOIN live o ON o.dk = p.dk"
        rows = list(self._each_layer(sql))
        rows.sort()
        return [r[2] for r in rows]

    def docs_paragraphs(self, doc_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The paragraphs of each live document among ``doc_ids``, in order (an incremental build reads
        those of the documents it links again)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for layer, by_key in self._located(doc_ids).items():
            sql = f"SELECT dk, body FROM l{layer}.paragraphs WHERE dk IN ({{}}) ORDER BY dk, n"
            for dk, body in self._chunked(sql, list(by_key)):
                out.setdefault(by_key[dk], []).append(json.loads(body))
        return out

    def paragraph_tags(self, doc_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Per paragraph (``<doc id>#<n>``) of the live documents ``doc_ids`` that links an entity or holds
        an attributed quote: the ids of the entities it links and its quotes' speakers, each sorted and
        joined by commas (what the keyword index files it under), without parsing a record."""
        ids = {dk: i for by_key in self._located(doc_ids).values() for dk, i in by_key.items()}
        found: dict[str, list[str]] = {}
        for n in self.layers:
            for slot, (table, column) in enumerate((("links", "entity_id"), ("quotes", "speaker"))):
                sql = (f"SELECT t.dk, t.n, group_concat(t.{column}, char(31)) FROM l{n}.{table} t "
                       f"JOIN live o ON o.dk = t.dk AND o.layer = ? GROUP BY t.pk")
                for dk, pn, joined in self._rows(sql, (n,)):
                    doc = ids.get(dk)
                    if doc is not None:
                        found.setdefault(f"{doc}#{pn}", ["", ""])[slot] = ",".join(sorted(joined.split(_SEP)))
        return {pid: (tags[0], tags[1]) for pid, tags in found.items()}

    # ---------------------------------------------------------------------------------- entities
    def entity_counts_table(self) -> dict[str, tuple[dict[str, Any], list[int] | None]]:
        """The entity table by id, each row with how often each of its surfaces was linked (None where the
        store was written before it kept that)."""
        have = {r[1] for r in self._rows("PRAGMA main.table_info(entities)")}
        column = "surface_counts" if "surface_counts" in have else "NULL"
        return {i: (json.loads(b), json.loads(c) if c is not None else None)
                for i, b, c in self._rows(f"SELECT id, body, {column} FROM entities ORDER BY id")}

    def entity(self, entity_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT body FROM entities WHERE id = ?", (entity_id,))
        return json.loads(rows[0][0]) if rows else None

    def entity_briefs(self, entity_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(name, type) of each known entity among ``entity_ids``."""
        keys = list(dict.fromkeys(entity_ids))
        sql = "SELECT id, name, type FROM entities WHERE id IN ({})"
        return {i: (name, typ) for i, name, typ in self._chunked(sql, keys)}

    def known(self, entity_ids: Iterable[str]) -> set[str]:
        """The ids among ``entity_ids`` that are in the build's entity table."""
        keys = list(dict.fromkeys(entity_ids))
        return {r[0] for r in self._chunked("SELECT id FROM entities WHERE id IN ({})", keys)}

    def entity_table(self) -> dict[str, dict[str, Any]]:
        """The whole entity table by id (what the query linker is built from; not kept by the reader)."""
        return {i: json.loads(b) for i, b in self._rows("SELECT id, body FROM entities ORDER BY id")}

    def find_entities(self, *, type: str | None, q: str | None, limit: int,
                      offset: int) -> tuple[int, list[dict[str, Any]]]:
        """Entities of ``type`` whose name, an alias or a surface form contains ``q`` (casefolded), most
        mentioned first (then by id): (how many match, the page ``[offset, offset + limit)``)."""
        where, args = [], []
        if type:
            where.append("type = ?")
            args.append(type)
        if q:
            where.append("instr(names, ?) > 0")
            args.append(q.casefold())
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        total = self._rows(f"SELECT count(*) FROM entities{cond}", args)[0][0]
        rows = self._rows(f"SELECT body FROM entities{cond} ORDER BY mentions DESC, id LIMIT ? OFFSET ?",
                          [*args, limit, offset])
        return int(total), [json.loads(r[0]) for r in rows]

    # ------------------------------------------------------------------------ lookups by entity
    def _by_date(self, table: str, column: str, key: str) -> list[tuple[tuple[str, str, int], str | None,
                                                                        int, int]]:
        """The live paragraphs with a ``table`` row whose ``column`` is ``key``, oldest document first
        (undated first, then by document id and paragraph number): (sort key, date, layer, paragraph key)."""
        rows = []
        for n in self.layers:
            sql = (f"SELECT coalesce(o.date, ''), o.id, x.n, o.date, x.pk FROM "
                   f"(SELECT DISTINCT pk, dk, n FROM l{n}.{table} WHERE {column} = ?) x "
                   f"JOIN live o ON o.dk = x.dk")
            rows += [((d, i, pn), date, n, pk) for d, i, pn, date, pk in self._rows(sql, (key,))]
        rows.sort(key=lambda r: r[0])
        return rows

    def _with_heads(self, found: Sequence[tuple[Any, Any, int, int]]) -> list[dict[str, Any]]:
        """The paragraphs ``found`` (layer, key in the last two places) in that order, with ``"_doc"``."""
        by_layer: dict[int, list[int]] = defaultdict(list)
        for *_, layer, pk in found:
            by_layer[layer].append(pk)
        bodies: dict[tuple[int, int], dict[str, Any]] = {}
        for layer, pks in by_layer.items():
            sql = (f"SELECT p.pk, p.body, d.head FROM l{layer}.paragraphs p JOIN l{layer}.documents d "
                   f"ON d.dk = p.dk WHERE p.pk IN ({{}})")
            bodies.update(((layer, pk), dict(json.loads(p), _doc=json.loads(d)))
                          for pk, p, d in self._chunked(sql, pks))
        return [bodies[(layer, pk)] for *_, layer, pk in found]

    def entity_mentions(
        self, entity_id: str, limit: int
    ) -> tuple[int, list[dict[str, Any]], list[str | None]]:
        """Paragraphs linked to ``entity_id``, oldest document first (undated first, then by document id and
        paragraph number): (how many, the first ``limit`` with their document's head under ``"_doc"``,
        every one's document date, in that order)."""
        found = self._by_date("links", "entity_id", entity_id)
        return len(found), self._with_heads(found[: max(limit, 0)]), [r[1] for r in found]

    def co_mentioned(self, entity_id: str, top: int) -> list[tuple[str, int]]:
        """The entities most often linked in the same paragraphs as ``entity_id``: (id, paragraphs)."""
        counts: dict[str, int] = {}
        sql = ("SELECT b.entity_id, count(DISTINCT b.pk) FROM {L}.links a "
               "JOIN {L}.links b ON b.pk = a.pk AND b.entity_id != a.entity_id {live} "
               "WHERE a.entity_id = ? GROUP BY b.entity_id")
        if len(self.layers) == 1:  # the ranking in SQL: only the top rows come back
            return [(eid, n) for eid, n in self._each_layer(sql + " ORDER BY 2 DESC, 1 LIMIT ?", None,
                                                            (entity_id, max(top, 0)), live="a.dk")]
        for eid, n in self._each_layer(sql, None, (entity_id,), live="a.dk"):
            counts[eid] = counts.get(eid, 0) + n
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(top, 0)]

    def quoted(self, speaker: str) -> list[dict[str, Any]]:
        """Paragraphs holding a quote by ``speaker``, in the order of ``entity_mentions``, with ``"_doc"``."""
        return self._with_heads(self._by_date("quotes", "speaker", speaker))


def open_store(folder: Path) -> StoreReader:
    """The store of build ``folder``."""
    return StoreReader.open(Path(folder) / STORE)


def read_documents(folder: Path) -> list[dict[str, Any]]:
    """Every document of build ``folder``, in build order (tools, tests and exports; servers read by id)."""
    with _reading(folder) as store:
        return list(store.iter_documents())


def read_paragraphs(folder: Path) -> list[dict[str, Any]]:
    """Every paragraph of build ``folder`` with its links and quotes, in build order."""
    with _reading(folder) as store:
        return list(store.iter_paragraphs())


def read_entities(folder: Path) -> dict[str, dict[str, Any]]:
    """The entity table of build ``folder`` by id."""
    with _reading(folder) as store:
        return store.entity_table()


@contextmanager
def _reading(folder: Path) -> Iterator[StoreReader]:
    store = open_store(folder)
    try:
        yield store
    finally:
        store.close()
