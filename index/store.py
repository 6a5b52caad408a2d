"""The build's record store: documents, paragraphs (with links and quotes) and entities in one SQLite file.

Servers read records by id from this file instead of holding the corpus in their heap: every worker
process opens the same file read-only, so its pages are shared through the OS page cache, and start-up
reads nothing but the document list (ids and dates, for grouping and timelines).

Written once by the build (``write_store``, in the build's temp folder) and never modified after publish,
so readers open it with ``mode=ro&immutable=1``: no locking, no journal lookups. Tables::

    meta        key -> value (format, row counts)
    documents   ord (build order) | id | date | head (title, date, source, url) | body (the document)
    paragraphs  ord (build order = vector row) | id | doc (document ord) | n | body (row + links + quotes)
    links       paragraph (ord) | entity_id     indexes (entity_id, paragraph), (paragraph, entity_id)
    quotes      paragraph (ord) | speaker                       index (speaker, paragraph)
    entities    id | name | type | mentions | names (casefolded name, aliases, surfaces) | body (JSON)

``links`` and ``quotes`` hold only what lookups by entity need; the full link and quote records stay in
the paragraph's body, in the order the build wrote them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.errors import IndexFormatMismatch, StorageError

STORE = "store.sqlite"  # the build folder's file this module owns (index/layout.py lists them all)
STORE_FORMAT = 1
_CHUNK = 500  # ids per ``IN (...)`` query (SQLite allows 32766 variables; smaller keeps plans cheap)
_SEP = "\x1f"  # between the casefolded names of an entity in ``entities.names``
HEAD = ("title", "date", "source", "url")  # what a search hit shows of its document (``doc_heads``)

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE documents (ord INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, date TEXT, head TEXT NOT NULL,
                        body TEXT NOT NULL);
CREATE TABLE paragraphs (ord INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc INTEGER NOT NULL,
                         n INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE links (paragraph INTEGER NOT NULL, entity_id TEXT NOT NULL);
CREATE TABLE quotes (paragraph INTEGER NOT NULL, speaker TEXT NOT NULL);
CREATE TABLE entities (id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, mentions INTEGER NOT NULL,
                       names TEXT NOT NULL, body TEXT NOT NULL);
"""
# Built after the rows are in (one sort each instead of index maintenance on every insert).
_INDEXES = """
CREATE INDEX paragraphs_doc ON paragraphs (doc, n);
CREATE INDEX links_entity ON links (entity_id, paragraph);
CREATE INDEX links_paragraph ON links (paragraph, entity_id);
CREATE INDEX quotes_speaker ON quotes (speaker, paragraph);
CREATE INDEX entities_rank ON entities (mentions DESC, id);
CREATE INDEX entities_type_rank ON entities (type, mentions DESC, id);
"""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def entity_names(row: dict[str, Any]) -> str:
    """The casefolded names an entity search matches (name, aliases, surfaces), each between separators."""
    names = [row.get("name") or "", *row.get("aliases", ()), *row.get("surfaces", ())]
    return _SEP + _SEP.join(str(n).casefold() for n in names) + _SEP


def write_store(
    path: Path,
    documents: Iterable[dict[str, Any]],
    paragraphs: Iterable[dict[str, Any]],
    entities: dict[str, dict[str, Any]],
) -> dict[str, int]:
    """Write the store at ``path`` (must not exist); returns its row counts.

    ``paragraphs`` come in build order (the vector rows' order) and each names a ``doc_id`` among
    ``documents``. No journal and no fsync here: the build fsyncs every file before it publishes.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(path)
    try:
        return _write(path, documents, paragraphs, entities)
    except sqlite3.Error as err:  # a full disk is SQLITE_FULL here, not an OSError: name the file
        raise StorageError(path, str(err) or type(err).__name__, "write") from None


def _write(
    path: Path,
    documents: Iterable[dict[str, Any]],
    paragraphs: Iterable[dict[str, Any]],
    entities: dict[str, dict[str, Any]],
) -> dict[str, int]:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.executescript(_SCHEMA)
        con.execute("BEGIN")
        doc_ord: dict[str, int] = {}
        rows = []
        for i, d in enumerate(documents):
            doc_ord[d["id"]] = i
            rows.append((i, d["id"], d.get("date"), _dumps({k: d.get(k) for k in HEAD}), _dumps(d)))
        con.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?)", rows)
        n_par = n_links = n_quotes = 0
        batch: list[tuple[int, str, int, int, str]] = []
        link_rows: list[tuple[int, str]] = []
        quote_rows: list[tuple[int, str]] = []
        for i, p in enumerate(paragraphs):
            batch.append((i, p["id"], doc_ord[p["doc_id"]], int(p["n"]), _dumps(p)))
            link_rows += [(i, e) for e in dict.fromkeys(x["entity_id"] for x in p.get("links", ()))]
            quote_rows += [(i, s) for s in dict.fromkeys(q.get("speaker") for q in p.get("quotes", ())) if s]
            n_par += 1
            if len(batch) >= 5000:
                n_links, n_quotes = _flush(con, batch, link_rows, quote_rows, n_links, n_quotes)
        n_links, n_quotes = _flush(con, batch, link_rows, quote_rows, n_links, n_quotes)
        con.executemany(
            "INSERT INTO entities VALUES (?, ?, ?, ?, ?, ?)",
            ((eid, row.get("name") or eid, row.get("type") or "other", int(row.get("mentions", 0)),
              entity_names(row), _dumps(row)) for eid, row in entities.items()),
        )
        counts = {"documents": len(rows), "paragraphs": n_par, "entities": len(entities),
                  "link_rows": n_links, "quote_rows": n_quotes}
        con.executemany("INSERT INTO meta VALUES (?, ?)",
                        [("format", str(STORE_FORMAT))] + [(k, str(v)) for k, v in counts.items()])
        con.execute("COMMIT")
        con.executescript(_INDEXES)
        con.execute("ANALYZE")
    finally:
        con.close()
    return counts


def _flush(con: sqlite3.Connection, batch: list, links: list, quotes: list, n_links: int,
           n_quotes: int) -> tuple[int, int]:
    con.executemany("INSERT INTO paragraphs VALUES (?, ?, ?, ?, ?)", batch)
    con.executemany("INSERT INTO links VALUES (?, ?)", links)
    con.executemany("INSERT INTO quotes VALUES (?, ?)", quotes)
    n_links, n_quotes = n_links + len(links), n_quotes + len(quotes)
    batch.clear()
    links.clear()
    quotes.clear()
    return n_links, n_quotes


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
            except sqlite3.Error as err:
                raise self._damaged(err) from None
            with self._lock:
                for thread in [t for t in self._all if not t.is_alive()]:  # servers that churn threads
                    self._all.pop(thread).close()
                self._all[threading.current_thread()] = con
            self._local.con = con
        return con

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

    def _chunked(self, sql: str, keys: Sequence[Any]) -> Iterator[tuple]:
        """``sql`` with ``{}`` standing for the placeholders of up to ``_CHUNK`` keys, over all ``keys``."""
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            yield from self._rows(sql.format(",".join("?" * len(part))), part)

    def _json_by_id(self, table: str, column: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``column`` (JSON) of the rows of ``table`` whose id is among ``ids``, by id."""
        keys = list(dict.fromkeys(ids))
        sql = f"SELECT id, {column} FROM {table} WHERE id IN ({{}})"
        return {i: json.loads(v) for i, v in self._chunked(sql, keys)}

    def _iter(self, table: str, batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Every ``body`` of ``table`` in build order, read ``batch`` rows at a time."""
        last, sql = -1, f"SELECT ord, body FROM {table} WHERE ord > ? ORDER BY ord LIMIT ?"
        while True:
            rows = self._rows(sql, (last, batch))
            if not rows:
                return
            for _, body in rows:
                yield json.loads(body)
            last = rows[-1][0]

    def close(self) -> None:
        with self._lock:
            for con in self._all.values():
                con.close()
            self._all.clear()
        self._local = threading.local()

    def meta(self) -> dict[str, str]:
        return dict(self._rows("SELECT key, value FROM meta"))

    def counts(self) -> dict[str, int]:
        """Row counts as written (``documents``, ``paragraphs``, ``entities``, ...)."""
        return {k: int(v) for k, v in self.meta().items() if k != "format"}

    def check(self) -> list[str]:
        """Problems found by SQLite's page check and by counting every table against ``counts`` (deep
        verification: reads the whole file)."""
        problems = [r[0] for r in self._rows("PRAGMA quick_check") if r[0] != "ok"][:5]
        if problems:
            return [f"{self.path.name}: {p}" for p in problems]
        tables = {"documents": "documents", "paragraphs": "paragraphs", "entities": "entities",
                  "link_rows": "links", "quote_rows": "quotes"}
        counts = self.counts()
        for key, table in tables.items():
            n = self._rows(f"SELECT count(*) FROM {table}")[0][0]
            if counts.get(key) != n:
                problems.append(f"{self.path.name} has {n} rows in {table}, its counts say {counts.get(key)}")
        return problems

    # --------------------------------------------------------------------------------- documents
    def document_list(self) -> tuple[list[str], list[str | None]]:
        """Every document id and date, in build order (a document's ordinal is its position)."""
        rows = self._rows("SELECT id, date FROM documents ORDER BY ord")
        return [r[0] for r in rows], [r[1] for r in rows]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT body FROM documents WHERE id = ?", (doc_id,))
        return json.loads(rows[0][0]) if rows else None

    def documents(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The documents among ``doc_ids`` that exist, by id."""
        return self._json_by_id("documents", "body", doc_ids)

    def doc_heads(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``HEAD`` fields (title, date, source, url) of the documents among ``doc_ids``, by id: what a
        result shows, without parsing the documents' text."""
        return self._json_by_id("documents", "head", doc_ids)

    def doc_paragraphs(self, doc_id: str) -> list[dict[str, Any]]:
        """A document's paragraphs in order, with their links and quotes."""
        rows = self._rows(
            "SELECT p.body FROM paragraphs p JOIN documents d ON p.doc = d.ord WHERE d.id = ? ORDER BY p.n",
            (doc_id,),
        )
        return [json.loads(r[0]) for r in rows]

    # -------------------------------------------------------------------------------- paragraphs
    def paragraph(self, pid: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT body FROM paragraphs WHERE id = ?", (pid,))
        return json.loads(rows[0][0]) if rows else None

    def paragraphs(self, pids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The paragraphs among ``pids`` that exist, by id (links and quotes included)."""
        return self._json_by_id("paragraphs", "body", pids)

    def paragraph_docs(self, pids: Iterable[str]) -> dict[str, int]:
        """Document ordinal of each paragraph among ``pids`` that exists (no record is parsed)."""
        keys = list(dict.fromkeys(pids))
        return dict(self._chunked("SELECT id, doc FROM paragraphs WHERE id IN ({})", keys))

    def entity_counts(self, pids: Iterable[str]) -> dict[str, int]:
        """Per entity id, how many of the paragraphs ``pids`` link to it."""
        keys = list(dict.fromkeys(pids))
        counts: dict[str, int] = {}
        sql = ("SELECT l.entity_id, count(*) FROM paragraphs p JOIN links l ON l.paragraph = p.ord "
               "WHERE p.id IN ({}) GROUP BY l.entity_id")
        for eid, n in self._chunked(sql, keys):
            counts[eid] = counts.get(eid, 0) + n
        return counts

    def iter_paragraphs(self) -> Iterator[dict[str, Any]]:
        """Every paragraph in build order (exports, incremental builds, deep verification)."""
        return self._iter("paragraphs")

    def iter_documents(self) -> Iterator[dict[str, Any]]:
        """Every document in build order."""
        return self._iter("documents")

    def paragraph_ids(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT id FROM paragraphs ORDER BY ord")]

    # ---------------------------------------------------------------------------------- entities
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
    def entity_mentions(
        self, entity_id: str, limit: int
    ) -> tuple[int, list[dict[str, Any]], list[str | None]]:
        """Paragraphs linked to ``entity_id``, oldest document first (undated first, then by document id and
        paragraph number): (how many, the first ``limit`` with their document's head under ``"_doc"``,
        every one's document date)."""
        order = "coalesce(d.date, ''), d.id, p.n"
        base = ("FROM (SELECT DISTINCT paragraph FROM links WHERE entity_id = ?) l "
                "JOIN paragraphs p ON p.ord = l.paragraph JOIN documents d ON d.ord = p.doc")
        dates = [r[0] for r in self._rows(f"SELECT d.date {base}", (entity_id,))]
        rows = self._rows(f"SELECT p.body, d.head {base} ORDER BY {order} LIMIT ?", (entity_id, limit))
        return len(dates), [dict(json.loads(p), _doc=json.loads(d)) for p, d in rows], dates

    def co_mentioned(self, entity_id: str, top: int) -> list[tuple[str, int]]:
        """The entities most often linked in the same paragraphs as ``entity_id``: (id, paragraphs)."""
        return self._rows(
            "SELECT b.entity_id, count(DISTINCT b.paragraph) AS n FROM links a "
            "JOIN links b ON b.paragraph = a.paragraph AND b.entity_id != a.entity_id "
            "WHERE a.entity_id = ? GROUP BY b.entity_id ORDER BY n DESC, b.entity_id LIMIT ?",
            (entity_id, top),
        )

    def quoted(self, speaker: str) -> list[dict[str, Any]]:
        """Paragraphs holding a quote by ``speaker``, in the order of ``entity_mentions``, with ``"_doc"``."""
        rows = self._rows(
            "SELECT p.body, d.head FROM (SELECT DISTINCT paragraph FROM quotes WHERE speaker = ?) q "
            "JOIN paragraphs p ON p.ord = q.paragraph JOIN documents d ON d.ord = p.doc "
            "ORDER BY coalesce(d.date, ''), d.id, p.n",
            (speaker,),
        )
        return [dict(json.loads(p), _doc=json.loads(d)) for p, d in rows]


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
