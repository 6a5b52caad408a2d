"""The keyword leg: a Whoosh (whoosh-reloaded) BM25F index over paragraphs.

Fields: ``text`` (the document title, a newline, then the paragraph; stemmed, English stop words removed),
``entity`` and ``said`` (entity ids, exact), ``doc_id``, ``date``. Paragraphs of a document in another
language that Whoosh has a stemmer for go to ``text_<code>`` instead (``text_de``: German stemming and stop
words; one field per language the corpus has); queries search every ``text*`` field. Only ``id`` is
stored; paragraph text lives in the build's store (``index/store.py``). Scoring: BM25F with the Robertson
idf (``BM25F``).

A base and deltas. A full build writes one segment (the *base*) and beside it ``rows-<segment>.json``,
each docnum's paragraph id and a key of everything indexed for it. An incremental build
(``write_keyword_delta``) hard-links the previous build's segment files instead of rewriting them, marks
their rows that changed or left as deleted (Whoosh keeps deletions in its TOC, not in the segment file),
and writes the rows none of them holds into one new segment, with its own row file: each build writes
only its own changes, until the delta segments are many and are merged into one. The only statistic that
differs from a full build's is Whoosh's: deleted rows still count in document frequencies and average
lengths until the next full write.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from math import log
from pathlib import Path
from typing import Any

import numpy as np
from whoosh import index as whoosh_index
from whoosh import qparser, scoring
from whoosh.analysis import LanguageAnalyzer, StemmingAnalyzer
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.query import And, Every, Or, Query, Term

from index.errors import BadQuery, IndexMissing
from index.idtable import IdTable

# One searchable field holding title + paragraph, instead of a separate ``title`` field (boost 1.5). Every
# paragraph repeats its document's title, and Whoosh's BM25F scores each field as its own saturated BM25,
# so a short title field matching the query lifted every paragraph of the document a lot. SciFact train
# (809 queries, benchmarks/tune_keyword.py), keyword nDCG@10: title+text fields, title boost 1.5: 0.657;
# boost 1.0: 0.667; boost 0.25: 0.688; one combined field: 0.695, with the Robertson idf below: 0.703.
# The OR query also has half the terms (one field, not two), which halves the keyword leg's work.
# Indexes written before this change (with a ``title`` field) are still searched over title + text.
TITLE_SEPARATOR = "\n"
# One file per part of a segment, not Whoosh's compound file: a reader opens a compound file's parts as
# in-memory copies (BytesIO over the map), each server worker a copy of the whole postings and term table;
# separate files are read through the OS page cache, shared by every process.
SEGMENT_COMPOUND = False
KEYWORD_RECIPE = "whoosh:1"  # bump when what a row indexes changes (schema, analyzers): no base is shared
UNDATED = -1  # day number of a paragraph whose document has no (ISO) date
_MASKS = 64  # restriction masks kept (one bool per paragraph each)
_SCORED = 4  # full scorings kept per thread (the keyword and entity legs of the last query or two)


@dataclass(frozen=True)
class Restrict:
    """Which paragraphs a search may return, applied inside the index as a mask over docnums.

    ``exclude`` is user text of excluded words and quoted phrases (any of them excludes); entity ids in
    ``exclude_entities`` / ``exclude_said`` exclude paragraphs linked to / quoting them. ``date_from`` and
    ``date_to`` are inclusive ISO days (``YYYY-MM-DD``); with either set, undated paragraphs are left out.
    With ``whole_documents`` an exclusion removes every paragraph of a document that has it anywhere.
    """

    exclude: str = ""
    exclude_entities: tuple[str, ...] = ()
    exclude_said: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    whole_documents: bool = False

    def __bool__(self) -> bool:
        return bool(self.exclude or self.exclude_entities or self.exclude_said or self.date_from
                    or self.date_to)

    @property
    def dated(self) -> bool:
        return bool(self.date_from or self.date_to)


def day_number(iso: str | None) -> int:
    """Proleptic ordinal of an ISO date (its first 10 characters), or ``UNDATED``."""
    if not iso:
        return UNDATED
    try:
        return date.fromisoformat(iso[:10]).toordinal()
    except ValueError:
        return UNDATED


@dataclass
class Matches:
    """Every paragraph a query matches (after filters), as global docnums with scores, best first."""

    docnums: np.ndarray  # int64
    scores: np.ndarray  # float64
    doc_ords: np.ndarray  # int64: the document of each paragraph (``KeywordIndex.doc_name``)
    days: np.ndarray  # int64: the document's day number (``UNDATED`` when none)


class BM25F(scoring.BM25F):
    """Whoosh's BM25F with the Robertson/Lucene idf ``log(1 + (N - df + 0.5) / (df + 0.5))``.

    Whoosh's own idf, ``log(N / (df + 1)) + 1``, never drops below 1, so words found in most paragraphs
    still add a full point per match. SciFact keyword nDCG@10 +0.002 to +0.004 across the b/k1 grid.
    """

    def idf(self, searcher, fieldname: str, text: str) -> float:
        parent = searcher.get_parent()
        df = parent.doc_frequency(fieldname, text)
        n = parent.doc_count_all()
        return log(1 + (n - df + 0.5) / (df + 0.5))


def analyzer() -> StemmingAnalyzer:
    # minsize=2 keeps two-letter names such as "EU"; single letters ("U.S." → "u", "s") are dropped.
    return StemmingAnalyzer(minsize=2, cachesize=50_000)


def language_field(lang: str) -> str | None:
    """The field for paragraphs in language ``lang`` (ISO 639-1): "text" for English or unknown, else
    ``text_<lang>`` when Whoosh has a stemmer for it, else None (indexed in "text", unstemmed by language)."""
    from whoosh.lang import has_stemmer

    if not lang or lang == "en":
        return "text"
    lang = {"nb": "no", "nn": "no"}.get(lang, lang)  # Bokmål and Nynorsk: Whoosh's Norwegian stemmer
    return f"text_{lang}" if has_stemmer(lang) else None


def schema(languages: Iterable[str] = ()) -> Schema:
    """The schema; one ``text_<code>`` field per language in ``languages`` that Whoosh can stem."""
    ana = analyzer()
    sch = Schema(
        id=ID(stored=True, unique=True),
        doc_id=ID(stored=False),
        date=ID(stored=False),
        text=TEXT(analyzer=ana, phrase=True),
        entity=KEYWORD(commas=True, scorable=True),
        said=KEYWORD(commas=True),
    )
    for name in sorted({language_field(lang) for lang in languages} - {None, "text"}):
        sch.add(name, TEXT(analyzer=LanguageAnalyzer(name[len("text_"):]), phrase=True))
    return sch


def write_keyword_index(
    folder: Path, rows: Iterable[dict[str, str]], *, procs: int = 1, languages: Iterable[str] = (),
    postings: Path | None = None,
) -> int:
    """Write the index into ``folder`` (created). Each row: id, doc_id, date, title, text, entity, said, and
    optionally lang (ISO 639-1), whose field must be in ``languages``.

    ``title`` is indexed as the start of ``text`` (see ``TITLE_SEPARATOR``). With ``postings``, the index's
    posting arrays (``index/postings.py``) are written there too, gathered while Whoosh writes its segment.
    """
    from index.postings import write_postings

    folder.mkdir(parents=True, exist_ok=True)
    sch = schema(languages)
    ix = whoosh_index.create_in(str(folder), sch)
    writer = ix.writer(limitmb=256, procs=procs, compound=SEGMENT_COMPOUND)
    ids: list[str] = []
    keys: list[str] = []
    count = _add_rows(writer, rows, postings if procs == 1 else None, ids, keys, single=procs == 1)
    if procs == 1:  # docnums are the order rows were added in: the next incremental build's map
        _write_row_keys(folder, writer.newsegment.segment_id(), ids, keys)
    writer.commit()
    if postings is not None and procs != 1:  # a multi-process writer: read the arrays back
        write_postings(folder, postings)
    return count


def _add_rows(writer: Any, rows: Iterable[dict[str, str]], postings: Path | None, ids: list[str],
              keys: list[str], *, single: bool = True) -> int:
    """Add ``rows`` to ``writer``'s new segment, noting each row's id and key. A ``single``-process writer
    reads field lengths once per field and, with ``postings``, gathers its posting arrays into that folder
    (written when the writer commits)."""
    from index.postings import PostingsCollector

    if single:
        _lengths_per_field(writer)
        if postings is not None:
            collector = PostingsCollector(writer.schema)
            collector.attach(writer)
            _write_after_commit(writer, collector, postings)
    names = set(writer.schema.names())
    count = 0
    for row in rows:
        writer.add_document(**_fields(row, names))
        ids.append(row["id"])
        keys.append(row_key(row))
        count += 1
    return count


def _write_after_commit(writer: Any, collector: Any, postings: Path) -> None:
    commit = writer.commit

    def committing(*args: Any, **kwargs: Any) -> Any:
        out = commit(*args, **kwargs)
        collector.write(postings)
        return out

    writer.commit = committing


def _fields(row: dict[str, str], names: set[str]) -> dict[str, str]:
    fields = {k: v for k, v in row.items() if v and k not in ("title", "lang")}
    title = row.get("title") or ""
    if title:
        fields["text"] = f"{title}{TITLE_SEPARATOR}{row.get('text') or ''}"
    target = language_field(row.get("lang") or "") or "text"
    if target != "text" and target in names and "text" in fields:
        fields[target] = fields.pop("text")
    return fields


def row_key(row: dict[str, str]) -> str:
    """A key of everything a row puts into the index: equal keys, equal postings."""
    text = json.dumps([row.get(k) or "" for k in ("id", "doc_id", "lang", "date", "title", "text", "entity",
                                                   "said")], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


ROWS_PREFIX = "rows-"  # rows-<segment id>.json: a base segment's paragraph id and row key per docnum


def _write_row_keys(folder: Path, segment: str, ids: list[str], keys: list[str]) -> None:
    path = folder / f"{ROWS_PREFIX}{segment}.json"
    path.write_text(json.dumps({"segment": segment, "ids": ids, "keys": keys}, ensure_ascii=False),
                    encoding="utf-8")


@dataclass
class DeltaReport:
    """What ``write_keyword_delta`` wrote: rows kept in the shared segments, deleted from them, written anew,
    and how many segments the new index has."""

    kept: int
    deleted: int
    written: int
    segments: int = 2


MAX_DELTA_SEGMENTS = 8  # delta segments beside the base before an incremental build merges them into one


@dataclass
class _Shared:
    """A segment of the previous index that a delta may share: its paragraph id and row key per docnum."""

    segment: Any
    ids: list[str]
    keys: list[str]

    def live(self) -> Iterable[tuple[int, str, str]]:
        dead = set(self.segment.deleted_docs()) if self.segment.has_deletions() else ()
        return ((d, pid, key) for d, (pid, key) in enumerate(zip(self.ids, self.keys, strict=True))
                if d not in dead)


def write_keyword_delta(
    folder: Path, previous: Path, rows: Sequence[dict[str, str]], *, postings: Path, previous_postings: Path,
    max_fraction: float, link: Any, unchanged: Collection[str] = (),
    all_rows: Callable[[], Iterable[dict[str, str]]] | None = None, max_segments: int = MAX_DELTA_SEGMENTS,
) -> DeltaReport | None:
    """Write the keyword index of ``rows`` into ``folder``, sharing the segments of the index in
    ``previous`` (through ``link(src, dst)``, a hard link): the base segment and the delta segments earlier
    incremental builds added, less the rows that changed or left (marked deleted), plus one new segment with
    every row none of them holds as it is now. Posting arrays go into ``postings/<segment>/``; the shared
    segments' are linked from ``previous_postings``. ``previous`` and its files are never modified.

    ``unchanged``: ids of paragraphs whose rows the caller knows are those of ``previous`` (the rows of a
    document whose text, language and links are the previous build's), left out of ``rows``: they are kept
    by id, without their rows being built or compared. ``all_rows`` gives every row when they must be
    written after all: when the delta segments would outnumber ``max_segments``, their live rows are merged
    into the new segment.

    None (nothing written) when a full write is due: the previous index has no base this can share, a
    row needs a field its schema lacks (a new language), or the delta (rows outside the base plus rows
    deleted from it) would exceed ``max_fraction`` of the base."""
    from whoosh.filedb.filestore import FileStorage
    from whoosh.index import TOC

    shared = _shared_segments(previous, previous_postings)
    if shared is None:
        return None
    toc, parts = shared
    held: dict[str, tuple[int, int, str]] = {}  # paragraph id → (part, docnum, key) of its live row
    for n, part in enumerate(parts):
        held.update((pid, (n, d, key)) for d, pid, key in part.live())
    kept: list[set[int]] = [set() for _ in parts]
    again: set[str] = set()  # rows to write although unchanged: in no shared segment, or merged
    for pid in unchanged:
        where = held.get(pid)
        if where is None:
            again.add(pid)  # in a delta segment an older version wrote without a row file
        else:
            kept[where[0]].add(where[1])
    fresh = []
    for row in rows:
        where = held.get(row["id"])
        if where is not None and where[2] == row_key(row):
            kept[where[0]].add(where[1])
        else:
            fresh.append(row)
    if len(parts) > max_segments:  # the delta segments merge: their live rows are written again
        again.update(parts[n].ids[d] for n in range(1, len(parts)) for d in kept[n])
        parts, kept = parts[:1], kept[:1]
    if again:
        if unchanged and all_rows is None:
            return None
        fresh += [row for row in (all_rows() if all_rows is not None else rows) if row["id"] in again]
    names = set(toc.schema.names())
    if any((language_field(row.get("lang") or "") or "text") not in names for row in fresh):
        return None
    base = len(parts[0].ids)
    deleted = sum(len(part.ids) for part in parts) - sum(map(len, kept))
    base_deleted = base - len(kept[0])
    if len(fresh) + sum(map(len, kept[1:])) + base_deleted > max_fraction * base:
        return None
    folder.mkdir(parents=True)
    postings.mkdir(parents=True)
    _link_segments(folder, previous, postings, previous_postings, [p.segment for p in parts], link)
    segments = []
    for part, live in zip(parts, kept, strict=True):
        if not live:
            continue  # a delta segment none of whose rows lives on
        segment = copy.copy(part.segment)
        segment._deleted = set(range(len(part.ids))) - live or None
        segments.append(segment)
    TOC(toc.schema, segments, 0).write(FileStorage(str(folder)), whoosh_index._DEF_INDEX_NAME)
    if fresh:
        writer = whoosh_index.open_dir(str(folder)).writer(limitmb=256, procs=1, compound=SEGMENT_COMPOUND)
        ids: list[str] = []
        keys: list[str] = []
        segment_id = writer.newsegment.segment_id()
        _add_rows(writer, fresh, postings / segment_id, ids, keys, single=True)
        _write_row_keys(folder, segment_id, ids, keys)
        writer.commit(merge=False)
    return DeltaReport(kept=sum(map(len, kept)), deleted=deleted, written=len(fresh),
                       segments=len(segments) + bool(fresh))


def _link_segments(folder: Path, previous: Path, postings: Path, previous_postings: Path,
                   segments: Sequence[Any], link: Any) -> None:
    """Link the files of ``segments`` (Whoosh's, their row files and posting arrays) from the previous
    index into ``folder`` and ``postings``."""
    from whoosh.filedb.filestore import FileStorage

    old_storage = FileStorage(str(previous))
    for i, segment in enumerate(segments):
        for name in [*segment.list_files(old_storage), f"{ROWS_PREFIX}{segment.segment_id()}.json"]:
            link(previous / name, folder / name)
        source, target = ((previous_postings, postings) if i == 0 else
                          (previous_postings / segment.segment_id(), postings / segment.segment_id()))
        target.mkdir(exist_ok=True)
        for path in source.iterdir():
            if path.is_file():
                link(path, target / path.name)


def _shared_segments(previous: Path, previous_postings: Path) -> tuple[Any, list[_Shared]] | None:
    """The TOC of the Whoosh index in ``previous`` and its segments that a delta may share: its base (the
    first segment, with its posting arrays at the top of ``previous_postings``) and each delta segment after
    it that has a row file and arrays of its own. None when the base is not such a segment; a delta segment
    that is not (one an older version wrote) leaves the base alone shareable, and its rows are written
    again."""
    from whoosh.filedb.filestore import FileStorage
    from whoosh.index import TOC, EmptyIndexError

    try:
        toc = TOC.read(FileStorage(str(previous)), whoosh_index._DEF_INDEX_NAME)
    except (OSError, EmptyIndexError):
        return None
    parts: list[_Shared] = []
    for i, segment in enumerate(toc.segments):
        arrays = previous_postings / ("" if i == 0 else segment.segment_id()) / "meta.json"
        try:
            rows = json.loads((previous / f"{ROWS_PREFIX}{segment.segment_id()}.json").read_text("utf-8"))
            meta = json.loads(arrays.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            break
        if (meta.get("segment") != segment.segment_id() or len(rows["ids"]) != segment.doc_count_all()
                or len(rows["keys"]) != len(rows["ids"])):
            break
        parts.append(_Shared(segment, rows["ids"], rows["keys"]))
    if not parts:
        return None
    return toc, parts


def _lengths_per_field(writer: Any) -> None:
    """Whoosh's field writer asks the segment for a document's field length once per posting (for each
    block's shortest and longest document), each time through a column reader; hand it the field's lengths
    read once per field instead (same values, a list lookup per posting)."""
    fieldwriter = writer.fieldwriter
    add_postings = fieldwriter.add_postings

    def with_lengths(schema: Schema, lengths: Any, items: Iterable[tuple]) -> Any:
        return add_postings(schema, _FieldLengths(lengths) if lengths is not None else None, items)

    fieldwriter.add_postings = with_lengths


class _FieldLengths:
    """``doc_field_length`` of a segment's per-document reader, one field's lengths at a time (the postings
    come field by field)."""

    def __init__(self, lengths: Any):
        self._lengths = lengths
        self._field: str | None = None
        self._values: list[int] = []

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> int:
        if fieldname != self._field:
            get = self._lengths.doc_field_length
            self._values = [get(d, fieldname, default) for d in range(self._lengths.doc_count_all())]
            self._field = fieldname
        return self._values[docnum]


class KeywordIndex:
    """Read side. One Whoosh searcher per thread (Whoosh searchers are not thread-safe)."""

    FIELDS = ("text",)  # plus "title" when the index predates the combined field

    def __init__(self, folder: Path, *, b: float = 0.75, k1: float = 1.2, postings: Path | None = None):
        """``postings``: the build's posting arrays (``index/postings.py``), read instead of decoding
        Whoosh's blocks where they cover the segment."""
        self._folder = Path(folder)
        if not whoosh_index.exists_in(str(folder)):
            raise IndexMissing(f"keyword index missing in {folder}; run `personae build`")
        self.ix = whoosh_index.open_dir(str(folder))
        self.weighting = BM25F(B=b, K1=k1)
        self._local = threading.local()
        self._searchers: list = []
        self._lock = threading.Lock()
        self._length_cache: dict[tuple[str, str], np.ndarray] = {}
        self._column_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._pid_cache: dict[str, IdTable] = {}
        self._doc_index: dict[str, int] = {}
        self._doc_names: list[str] = []
        self._masks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        from index.postings import read_segment_postings

        self._arrays = read_segment_postings(postings) if postings is not None else None
        self._deleted_cache: dict[str, np.ndarray] = {}
        self._joined: dict[tuple, Any] = {}  # what ``_once`` built, by name and segment ids
        names = self.ix.schema.names()
        self.fields = [f for f in ("title", "text") if f in names]  # legacy indexes: title and text
        self.fields += sorted(n for n in names if n.startswith("text_"))  # other languages' stemmers
        self.parser = qparser.MultifieldParser(self.fields, self.ix.schema, group=qparser.OrGroup)
        # Field syntax is handled by search/query.py; users cannot address stored/internal fields directly.
        self.parser.remove_plugin_class(qparser.FieldsPlugin)
        self.parser.remove_plugin_class(qparser.WildcardPlugin)
        self.parser.remove_plugin_class(qparser.RangePlugin)
        self.and_parser = qparser.MultifieldParser(self.fields, self.ix.schema, group=qparser.AndGroup)
        for plugin in (qparser.FieldsPlugin, qparser.WildcardPlugin, qparser.RangePlugin):
            self.and_parser.remove_plugin_class(plugin)

    def __len__(self) -> int:
        return self.ix.doc_count()

    def _searcher(self):
        s = getattr(self._local, "searcher", None)
        if s is None:
            s = self.ix.searcher(weighting=self.weighting)
            self._local.searcher = s
            with self._lock:
                self._searchers.append(s)
        return s

    def parse(self, text: str, *, conjunctive: bool = False) -> Query | None:
        """Parse user text (quoted phrases, AND/OR/NOT, -term) into a Whoosh query; None if no terms."""
        if not text.strip():
            return None
        parser = self.and_parser if conjunctive else self.parser
        try:
            q = parser.parse(text)
        except Exception as err:  # whoosh raises a variety of parse errors on odd input
            raise BadQuery(f"could not parse query: {err}") from None
        from whoosh.query import NullQuery

        return None if q is None or q is NullQuery or isinstance(q, type(NullQuery)) else q

    def search(
        self,
        query: Query | None,
        k: int,
        *,
        entities: Sequence[str] = (),
        said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> list[tuple[str, float]]:
        """Top ``k`` paragraph ids with BM25F scores, filtered to paragraphs linked to all ``entities``
        (and quoting all ``said``) and to what ``restrict`` allows."""
        filt, allowed = self._filters(entities, said, restrict)
        if query is None:
            if filt is None and allowed is None:
                return []
            query = Every()
        s = self._searcher()
        terms = _plain_terms(query, self.fields)
        if terms is not None:
            docnums, scores, _ = self._score_terms(s, query, terms, filt, allowed, k=max(1, k))
            return list(zip(self.paragraph_ids(docnums.tolist()), scores.tolist(), strict=True))
        hits = s.search(query, limit=max(1, k), **self._whoosh_filter(filt, allowed))
        return [(hit["id"], float(hit.score or 0.0)) for hit in hits]

    def matches(
        self,
        query: Query | None,
        *,
        entities: Sequence[str] = (),
        said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> Matches:
        """Every paragraph ``search`` could return, best first, as numpy columns (no ids are read).

        Grouped results use it to rank and count every matching document, not only a window's worth.
        """
        filt, allowed = self._filters(entities, said, restrict)
        s = self._searcher()
        ords, days = self._global_columns(s)
        if query is None:
            if filt is None and allowed is None:
                docnums = np.zeros(0, dtype=np.int64)
            else:
                docnums = self._global_ids(s, None, filt, allowed)
            scores = np.ones(len(docnums), dtype=np.float64)
        else:
            terms = _plain_terms(query, self.fields)
            if terms is not None:
                docnums, scores, _ = self._score_terms(s, query, terms, filt, allowed, k=None)
            else:
                res = s.search(query, limit=None, **self._whoosh_filter(filt, allowed))
                top = res.top_n
                docnums = np.array([d for _, d in top], dtype=np.int64)
                scores = np.array([float(sc or 0.0) for sc, _ in top], dtype=np.float64)
        return Matches(docnums, scores, ords[docnums], days[docnums])

    def doc_name(self, ordinal: int) -> str:
        """The document id of a document ordinal (``Matches.doc_ords``)."""
        return self._doc_names[ordinal]

    def doc_ordinal(self, doc_id: str) -> int:
        """The ordinal of a document id, -1 when the index has no paragraph of it."""
        self._global_columns(self._searcher())
        return self._doc_index.get(doc_id, -1)

    def paragraph_ids(self, docnums: Iterable[int]) -> list[str]:
        """Paragraph ids of global docnums (``Matches.docnums``)."""
        return self._global_pids(self._searcher()).take(docnums)  # read once per segment

    def allowed_ids(self, allowed: np.ndarray) -> list[str]:
        """Paragraph ids where ``allowed`` (a global mask) is true, in docnum order."""
        return self._global_pids(self._searcher()).take(np.flatnonzero(allowed).tolist())

    def docnums_of(self, pids: Sequence[str]) -> np.ndarray:
        """Global docnums of paragraph ids (-1 for an id the index does not hold)."""
        return self._global_pids(self._searcher()).rows_of(pids)

    def locate(self, pids: Sequence[str]) -> Matches:
        """``Matches`` for given paragraph ids, in their order (unknown ids dropped), scores 0."""
        s = self._searcher()
        docnums = self.docnums_of(pids)
        docnums = docnums[docnums >= 0]
        ords, days = self._global_columns(s)
        return Matches(docnums, np.zeros(len(docnums)), ords[docnums], days[docnums])

    def doc_names(self) -> list[str]:
        """Every document id, indexed by ordinal (``Matches.doc_ords``)."""
        self._global_columns(self._searcher())
        return list(self._doc_names)

    def entity_counts(self, docnums: np.ndarray) -> dict[str, int]:
        """How many of the paragraphs ``docnums`` (global) are linked to each entity: one pass over a
        cached (paragraph, entity) pair list, so counting every match of a broad query stays cheap."""
        counts, names = self.entity_count_array(docnums)
        return {names[i]: int(counts[i]) for i in np.flatnonzero(counts).tolist()}

    def entity_count_array(self, docnums: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """``entity_counts`` as an array over entity ordinals, and the ids of the ordinals (the same list
        object for as long as the index is open). Reads only the matched paragraphs' rows of the cached
        (paragraph → entities) table: the cost follows the match count, not the corpus's link count."""
        indptr, docs, ents, names = self._entity_pairs(self._searcher())
        n = len(indptr) - 1
        docnums = docnums[(docnums >= 0) & (docnums < n)]
        if not len(docnums) or not len(ents):
            return np.zeros(len(names), dtype=np.int64), names
        if len(docnums) * 4 > n:  # a broad match: one pass over every pair, masked by paragraph
            mask = np.zeros(n, dtype=bool)
            mask[docnums] = True
            return np.bincount(ents[mask[docs]], minlength=len(names)), names
        docnums = np.sort(docnums)
        if len(docnums) > 1:
            first = docnums[1:] != docnums[:-1]
            if not bool(first.all()):  # sorted: keep each docnum's first place (no second sort)
                docnums = docnums[np.concatenate(([True], first))]
        starts = indptr[docnums]
        lens = indptr[docnums + 1] - starts
        # every pair of those paragraphs: each row's start, repeated over its length, plus 0, 1, ...
        rows = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
        return np.bincount(ents[rows], minlength=len(names)), names

    def _entity_pairs(self, s) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """The (paragraph, entity) links sorted by global docnum, as a compressed row table: paragraph
        ``d``'s entity ordinals are ``ents[indptr[d]:indptr[d + 1]]``; ``docs`` is each pair's docnum (for
        a pass over all pairs); and the ids of the ordinals."""
        return self._once(s, "entity pairs", self._read_entity_pairs)

    def _read_entity_pairs(self, leaves: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        docs: list[np.ndarray] = []
        ents: list[np.ndarray] = []
        names: list[str] = []
        index: dict[str, int] = {}
        for leaf, offset in leaves:
            reader = leaf.reader()
            if "entity" not in reader.schema.names():
                continue
            for eid in reader.field_terms("entity"):
                ordinal = index.setdefault(eid, len(names))
                if ordinal == len(names):
                    names.append(eid)
                ids = self._term_ids(reader, "entity", eid)
                docs.append(ids + offset)
                ents.append(np.full(len(ids), ordinal, dtype=np.int64))
        pair_docs = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64)
        pair_ents = np.concatenate(ents) if ents else np.zeros(0, dtype=np.int64)
        order = np.argsort(pair_docs, kind="stable")
        indptr = np.zeros(int(pair_docs.max()) + 2 if len(pair_docs) else 1, dtype=np.int64)
        np.cumsum(np.bincount(pair_docs, minlength=len(indptr) - 1), out=indptr[1:])
        return indptr, pair_docs[order].astype(np.int32), pair_ents[order], names

    def _once(self, s, name: str, build: Any) -> Any:
        """``build(leaves)`` over this searcher's segments, built once per set of segment ids and kept (a
        published index never changes: its segment ids name its content); not kept when a segment has no
        id."""
        leaves = _leaf_searchers(s)
        key = (name, *(_segment_id(leaf.reader()) for leaf, _ in leaves))
        value = self._joined.get(key)
        if value is None:
            value = build(leaves)
            if all(key[1:]):
                with self._lock:
                    value = self._joined.setdefault(key, value)
        return value

    # ------------------------------------------------------------------------------ restrictions
    def _filters(
        self, entities: Sequence[str], said: Sequence[str], restrict: Restrict | None
    ) -> tuple[Query | None, np.ndarray | None]:
        """(Whoosh filter query, global allowed mask): with a restriction both are folded into the mask."""
        if restrict:
            return None, self.allowed(restrict, entities=entities, said=said)
        return _filter(entities, said), None

    def allowed(
        self, restrict: Restrict, *, entities: Sequence[str] = (), said: Sequence[str] = ()
    ) -> np.ndarray:
        """A bool per global docnum: may this paragraph be returned? Cached for the last few restrictions.

        Built from postings (excluded terms, phrases and entity ids), the per-paragraph document ordinal
        (whole-document exclusion) and day number (date range): no search result is post-filtered.
        """
        s = self._searcher()
        leaves = _leaf_searchers(s)
        segments = tuple(_segment_id(leaf.reader()) for leaf, _ in leaves)
        key = (restrict, tuple(entities), tuple(said), segments)
        with self._lock:
            mask = self._masks.get(key)
            if mask is not None:
                self._masks.move_to_end(key)
                return mask
        ords, days = self._global_columns(s)
        mask = np.ones(len(ords), dtype=bool)
        excluded = np.zeros(len(ords), dtype=bool)
        filt = _filter(entities, said)
        negative: list[Query] = [Term("entity", e) for e in restrict.exclude_entities]
        negative += [Term("said", e) for e in restrict.exclude_said]
        if restrict.exclude and (exq := self.parse(restrict.exclude)) is not None:
            negative.append(exq)
        for leaf, offset in leaves:
            n = leaf.reader().doc_count_all()
            if filt is not None:
                keep = np.zeros(n, dtype=bool)
                keep[self._doc_ids(leaf, filt)] = True
                mask[offset : offset + n] &= keep
            for q in negative:
                excluded[offset + self._doc_ids(leaf, q)] = True
        if restrict.whole_documents and excluded.any():
            excluded = np.isin(ords, np.unique(ords[excluded]))
        mask &= ~excluded
        if restrict.dated:
            lo = day_number(restrict.date_from) if restrict.date_from else 0
            hi = day_number(restrict.date_to) if restrict.date_to else np.iinfo(np.int64).max
            mask &= (days != UNDATED) & (days >= lo) & (days <= hi)
        with self._lock:
            self._masks[key] = mask
            while len(self._masks) > _MASKS:
                self._masks.popitem(last=False)
        return mask

    @staticmethod
    def _whoosh_filter(filt: Query | None, allowed: np.ndarray | None) -> dict[str, Any]:
        """``filter``/``mask`` arguments for ``Searcher.search``: the smaller docnum set of the two."""
        if allowed is None:
            return {"filter": filt}
        n_ok = int(allowed.sum())
        if n_ok <= len(allowed) - n_ok:
            return {"filter": set(np.flatnonzero(allowed).tolist())}
        return {"mask": set(np.flatnonzero(~allowed).tolist())}

    def _global_ids(
        self, s, query: Query | None, filt: Query | None, allowed: np.ndarray | None
    ) -> np.ndarray:
        """Sorted global docnums matching ``query`` (None: every paragraph) and the filters, deletions out."""
        out = []
        for leaf, offset in _leaf_searchers(s):
            reader = leaf.reader()
            ids = _all_docs(reader) if query is None else self._doc_ids(leaf, query)
            if filt is not None and len(ids):
                ids = np.intersect1d(ids, self._doc_ids(leaf, filt), assume_unique=True)
            if reader.has_deletions() and len(ids):
                ids = ids[~self._deleted(reader)[ids]]
            ids = ids + offset
            if allowed is not None:
                ids = ids[allowed[ids]]
            out.append(ids)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def _columns(self, reader) -> tuple[np.ndarray, np.ndarray]:
        """(document ordinal, day number) of every docnum of one segment, read from the ``doc_id`` and
        ``date`` postings once per segment (segments are immutable)."""
        key = _segment_id(reader)
        cols = self._column_cache.get(key) if key else None
        if cols is not None:
            return cols
        n = reader.doc_count_all()
        ords = np.full(n, -1, dtype=np.int64)
        days = np.full(n, UNDATED, dtype=np.int64)
        names = reader.schema.names()
        arrays = self._segment_arrays(reader)
        if arrays is not None and arrays.has("doc_id") and arrays.has("date"):  # a field in one pass each
            doc_terms, term_of, docnums = arrays.every_term("doc_id")
            with self._lock:
                ords[docnums] = np.asarray([self._doc_ordinal(name) for name in doc_terms], np.int64)[term_of]
            date_terms, term_of, docnums = arrays.every_term("date")
            days[docnums] = np.asarray([day_number(value) for value in date_terms], np.int64)[term_of]
            if reader.has_deletions():  # the arrays keep deleted docnums' postings; Whoosh's reader does not
                dead = np.fromiter(reader.segment().deleted_docs(), dtype=np.int64)
                ords[dead], days[dead] = -1, UNDATED
        else:
            with self._lock:
                for name in reader.field_terms("doc_id") if "doc_id" in names else ():
                    ords[self._term_ids(reader, "doc_id", name)] = self._doc_ordinal(name)
            for value in reader.field_terms("date") if "date" in names else ():
                days[self._term_ids(reader, "date", value)] = day_number(value)
        if key:
            with self._lock:
                self._column_cache.setdefault(key, (ords, days))
        return ords, days

    def _doc_ordinal(self, name: str) -> int:
        """The ordinal of document ``name`` in this index, given on first sight (the caller holds the
        lock)."""
        ordinal = self._doc_index.setdefault(name, len(self._doc_names))
        if ordinal == len(self._doc_names):
            self._doc_names.append(name)
        return ordinal

    def _global_columns(self, s) -> tuple[np.ndarray, np.ndarray]:
        def join(leaves: list) -> tuple[np.ndarray, np.ndarray]:
            parts = [self._columns(leaf.reader()) for leaf, _ in leaves]
            if len(parts) == 1:
                return parts[0]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

        return self._once(s, "columns", join)

    def _global_pids(self, s) -> IdTable:
        """Paragraph id of every global docnum ("" for a deleted one), read once per segment."""
        def join(leaves: list) -> IdTable:
            return IdTable.concat([self._segment_pids(leaf.reader()) for leaf, _ in leaves])

        return self._once(s, "pids", join)

    def _segment_pids(self, reader) -> IdTable:
        segment = _segment_id(reader)
        pids = self._pid_cache.get(segment) if segment else None
        if pids is None:
            ids = self._row_file_ids(reader, segment)
            if ids is None:
                ids = [""] * reader.doc_count_all()
                for docnum, stored in reader.iter_docs():
                    ids[docnum] = stored.get("id", "")
            pids = IdTable(ids)
            if segment:
                with self._lock:
                    self._pid_cache.setdefault(segment, pids)
        return pids

    def _row_file_ids(self, reader, segment: str | None) -> list[str] | None:
        """A base segment's paragraph id per docnum from the row file the build wrote beside it (a JSON
        parse, several times faster than reading every document's stored fields), deleted docnums blanked;
        None when there is no such file."""
        path = self._folder / f"{ROWS_PREFIX}{segment}.json"
        if not segment or not path.is_file():
            return None
        try:
            ids = json.loads(path.read_text(encoding="utf-8"))["ids"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(ids, list) or len(ids) != reader.doc_count_all():
            return None
        if reader.has_deletions():
            for docnum in reader.segment().deleted_docs():
                ids[docnum] = ""
        return ids

    def _score_terms(
        self,
        s,
        query: Query,
        terms: list[Term],
        filt: Query | None,
        allowed: np.ndarray | None,
        *,
        k: int | None,
    ) -> tuple[np.ndarray, np.ndarray, list]:
        """BM25 for a plain OR of terms on one field, vectorised: the same scores as Whoosh's matcher loop.

        Whoosh scores an OR query one posting at a time in Python, which is the keyword leg's long tail
        (55 ms p95 at 100k paragraphs). Here each term's postings are read a block at a time into numpy and
        the BM25 contributions summed with ``np.add.at``; ranking is by score, then docnum (Whoosh's order).
        Phrases, NOT, AND and other shapes still go through Whoosh. The number of matches comes for free
        and is remembered (per thread) for the ``count`` that usually follows. Returns global docnums and
        scores of the top ``k`` (every match when ``k`` is None), best first, and the (leaf, offset) pairs.
        """
        key = _memo_key(query, filt, allowed)
        memo: list = getattr(self._local, "scored", None) or []
        parts = next((p for k_, p in memo if _same_key(k_, key)), None)
        if parts is None:  # else the keyword or entity leg scored it a moment ago: grouped paging reuses it
            parts = self._score_parts(s, terms, filt, allowed)
            self._local.scored = [(key, parts), *memo[: _SCORED - 1]]
        self._local.last_total = (key, sum(len(c) for c, _, _ in parts))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), []
        # every segment's matches in global docnum order (each part ascends, segments follow each other)
        docnums = np.concatenate([cand + offset for cand, _, offset in parts])
        scored = np.concatenate([scores for _, scores, _ in parts])
        if k is not None and len(docnums) > k:
            kth = scored[np.argpartition(-scored, k - 1)[:k]].min()
            keep = scored >= kth  # keep ties at the cut so docnum order decides
            docnums, scored = docnums[keep], scored[keep]
        order = np.argsort(-scored, kind="stable")  # by score, ties in docnum order (Whoosh's order)
        if k is not None:
            order = order[:k]
        return docnums[order], scored[order], []

    def _score_parts(
        self, s, terms: list[Term], filt: Query | None, allowed: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Per segment: matching docnums (ascending, segment-local), their BM25 scores, the offset."""
        b, k1 = self.weighting.B, self.weighting.K1
        parts: list[tuple[np.ndarray, np.ndarray, int]] = []
        field = terms[0].fieldname
        for leaf, offset in _leaf_searchers(s):
            reader = leaf.reader()
            lengths = self._lengths(reader, field)
            scores = np.zeros(len(lengths), dtype=np.float64)
            touched = np.zeros(len(lengths), dtype=bool)
            for t in terms:
                ids, weights = self._term_postings(reader, t.fieldname, t.text)
                if not len(ids):
                    continue
                idf = s.idf(t.fieldname, t.text)
                avgfl = s.avg_field_length(t.fieldname) or 1
                fl = lengths[ids]
                contrib = idf * (weights * (k1 + 1)) / (weights + k1 * ((1 - b) + b * fl / avgfl))
                np.add.at(scores, ids, contrib * t.boost)
                touched[ids] = True
            if filt is not None:
                keep = np.zeros(len(lengths), dtype=bool)
                keep[self._doc_ids(leaf, filt)] = True
                touched &= keep
            if allowed is not None:
                touched &= allowed[offset : offset + len(lengths)]
            if reader.has_deletions():
                touched &= ~self._deleted(reader)
            cand = np.flatnonzero(touched)
            if len(cand):
                parts.append((cand, scores[cand], offset))
        return parts

    def _lengths(self, reader, field: str = "text") -> np.ndarray:
        """Field lengths of every document (as Whoosh stores them: one byte, decoded), cached per segment.

        Keyed by segment id, so the per-thread searchers share one array per segment (segments are
        immutable; deletions do not change lengths)."""
        segment = _segment_id(reader)  # no id: not cached
        arr = self._length_cache.get((segment, field)) if segment else None
        if arr is None:
            arr = _column_lengths(reader, field)
            if arr is None:
                n = reader.doc_count_all()
                arr = np.fromiter(
                    (reader.doc_field_length(i, field) or 0 for i in range(n)), dtype=np.float64, count=n
                )
            if segment:
                with self._lock:
                    self._length_cache.setdefault((segment, field), arr)
        return arr

    def count(
        self,
        query: Query | None,
        *,
        entities: Sequence[str] = (),
        said: Sequence[str] = (),
        restrict: Restrict | None = None,
    ) -> int:
        """Exact number of paragraphs matching ``query`` (and every filter), without scoring.

        Term postings are read a block at a time into numpy arrays and combined with set operations, so a
        broad OR over 100k paragraphs costs a few ms instead of a scored search plus a Python walk of the
        union (what ``len(results)`` does). Anything other than terms, OR and AND is enumerated by Whoosh.
        """
        filt, allowed = self._filters(entities, said, restrict)
        if query is None and filt is None and allowed is None:
            return 0
        memo = getattr(self._local, "last_total", None)
        if memo is not None and _same_key(memo[0], _memo_key(query, filt, allowed)):
            return memo[1]  # the vectorised search just counted exactly this query in this thread
        return len(self._global_ids(self._searcher(), query, filt, allowed))

    def matching(self, query: Query, pids: Sequence[str]) -> set[str]:
        """The paragraphs among ``pids`` that ``query`` matches (filters are the caller's business).

        Answers from postings at the given docnums only: terms by membership, phrases by the positions of
        each word in just those paragraphs (Whoosh's own span matching), so a phrase found in a quarter of
        the collection costs as much as a rare one. ``search(query, None)`` restricted to ``pids`` gives
        the same set; this is what the exact-phrase guard asks about a fused window.
        """
        docnums = self.docnums_of(pids)
        found: list[np.ndarray] = []
        for leaf, offset in _leaf_searchers(self._searcher()):
            n = leaf.reader().doc_count_all()
            local = np.unique(docnums[(docnums >= offset) & (docnums < offset + n)] - offset)
            if len(local):
                hit = self._match_at(leaf, query, local)
                reader = leaf.reader()
                if reader.has_deletions():
                    hit = hit[~self._deleted(reader)[hit]]
                found.append(hit + offset)
        if not found:
            return set()
        return set(self.paragraph_ids(np.concatenate(found).tolist()))

    def entity_paragraphs(self, entity_id: str, field: str = "entity") -> list[str]:
        s = self._searcher()
        return [hit["id"] for hit in s.search(Term(field, entity_id), limit=None)]

    def _doc_ids(self, leaf, q: Query) -> np.ndarray:
        """Sorted unique segment-local docnums matching ``q`` in one leaf searcher (deletions not removed)."""
        if isinstance(q, Term):
            return self._term_ids(leaf.reader(), q.fieldname, q.text)
        if type(q) is Or and not getattr(q, "minmatch", 0):
            parts = [self._doc_ids(leaf, sub) for sub in q.subqueries]
            parts = [p for p in parts if len(p)]
            return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        if type(q) is And:
            out: np.ndarray | None = None
            for sub in q.subqueries:
                ids = self._doc_ids(leaf, sub)
                out = ids if out is None else np.intersect1d(out, ids, assume_unique=True)
                if not len(out):
                    break
            return np.zeros(0, dtype=np.int64) if out is None else out
        if isinstance(q, Every) and q.fieldname in (None, "", "*"):
            return _all_docs(leaf.reader())
        ids = np.fromiter(q.docs(leaf), dtype=np.int64)  # phrases, NOT, prefixes…: Whoosh enumerates
        return np.unique(ids)

    def _match_at(self, leaf, q: Query, cand: np.ndarray) -> np.ndarray:
        """The docnums of ``cand`` (sorted, segment-local) that ``q`` matches in one leaf searcher."""
        from whoosh.query import Phrase

        if isinstance(q, Term) and type(q) is Term:
            return cand[np.isin(cand, self._term_ids(leaf.reader(), q.fieldname, q.text), assume_unique=True)]
        if type(q) is Phrase:
            return self._phrase_at(leaf, q, cand)
        if type(q) is Or and not getattr(q, "minmatch", 0):
            parts = [self._match_at(leaf, sub, cand) for sub in q.subqueries]
            return np.unique(np.concatenate(parts)) if parts else cand[:0]
        if type(q) is And:
            out = cand
            for sub in q.subqueries:
                out = self._match_at(leaf, sub, out)
                if not len(out):
                    break
            return out
        return cand[np.isin(cand, self._doc_ids(leaf, q), assume_unique=True)]  # others: Whoosh enumerates

    def _phrase_at(self, leaf, q: Any, cand: np.ndarray) -> np.ndarray:
        """``Phrase`` matching at the given docnums only: each word's positions in those documents (from the
        posting arrays, else Whoosh's matchers skipped to them), chained by the span test Whoosh's
        ``Phrase`` runs (``SpanNear2``, the phrase's slop), so the answer is Whoosh's."""
        from types import SimpleNamespace

        from whoosh.query.spans import Span, SpanNear2

        reader = leaf.reader()
        if q.fieldname not in reader.schema:
            return cand[:0]
        field = reader.schema[q.fieldname]
        words = []
        for word in q.words:
            try:
                word = field.to_bytes(word)
            except ValueError:
                return cand[:0]
            if (q.fieldname, word) not in reader:
                return cand[:0]
            words.append(word)
        if not words or not len(cand):
            return cand[:0]
        arrays = self._segment_arrays(reader)
        if arrays is not None and arrays.has(q.fieldname) and q.slop == 1:  # the usual phrase: one pass
            return arrays.phrase_docs(q.fieldname, words, cand)
        if arrays is not None and arrays.has(q.fieldname):
            for word in words:  # documents holding every word, then their positions
                cand = cand[np.isin(cand, self._term_ids(reader, q.fieldname, word), assume_unique=True)]
            per_word = [arrays.positions(q.fieldname, word, cand) for word in words]
            spans = [[[Span(p) for p in ps or ()] for ps in col] for col in per_word]
            docs = [(d, [col[i] for col in spans]) for i, d in enumerate(cand.tolist())]
        else:
            docs = self._phrase_spans(reader, q.fieldname, words, cand)
        spans_of = SpanNear2.SpanNear2Matcher._get_spans  # the span chaining Phrase.matcher runs
        out = []
        for d, word_spans in docs:
            ms = [SimpleNamespace(spans=lambda s=s: s) for s in word_spans]
            if spans_of(SimpleNamespace(ms=ms, slop=q.slop, ordered=True, mindist=1)):
                out.append(d)
        return np.array(out, dtype=np.int64)

    @staticmethod
    def _phrase_spans(reader, fieldname: str, words: list[bytes], cand: np.ndarray) -> list[tuple[int, list]]:
        """(docnum, spans of each word) for the docnums of ``cand`` that hold every word, read by skipping
        Whoosh's posting matchers to just those documents."""
        matchers = [reader.postings(fieldname, w) for w in words]
        docs = []
        for d in cand.tolist():
            spans = []
            for m in matchers:
                if m.is_active() and m.id() < d:
                    m.skip_to(d)
                if not m.is_active() or m.id() != d:
                    break
                spans.append(m.spans())
            else:
                docs.append((d, spans))
        return docs

    def _segment_arrays(self, reader) -> Any:
        """The posting arrays when they were written for this segment (deleted docnums included, as in
        Whoosh's own postings)."""
        if not self._arrays:
            return None
        return self._arrays.get(_segment_id(reader) or "")

    def _deleted(self, reader) -> np.ndarray:
        """A bool per segment docnum: is it deleted? Read once per segment of this (immutable) index."""
        key = _segment_id(reader)
        mask = self._deleted_cache.get(key) if key else None
        if mask is None:
            mask = np.zeros(reader.doc_count_all(), dtype=bool)
            mask[np.fromiter(reader.segment().deleted_docs(), dtype=np.int64)] = True
            if key:
                with self._lock:
                    self._deleted_cache.setdefault(key, mask)
        return mask

    def _term_postings(self, reader, field: str, text, *, weights: bool = True
                       ) -> tuple[np.ndarray, np.ndarray | None]:
        """``_term_postings`` from the posting arrays where they cover the segment and field."""
        arrays = self._segment_arrays(reader)
        if arrays is not None and arrays.has(field):
            ids, w = arrays.postings(field, text)
            return ids, (w if weights else None)
        return _term_postings(reader, field, text, weights=weights)

    def _term_ids(self, reader, field: str, text) -> np.ndarray:
        return self._term_postings(reader, field, text, weights=False)[0]

    def close(self) -> None:
        with self._lock:
            for s in self._searchers:
                s.close()
            self._searchers.clear()
        self.ix.close()


def _column_lengths(reader, field: str) -> np.ndarray | None:
    """``_lengths`` of one segment from Whoosh's length column read in one piece (a byte a document,
    decoded through Whoosh's own table) instead of a column lookup per document; None when the segment is
    not laid out as Whoosh 3 writes it (the caller then asks document by document)."""
    from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
    from whoosh.util.numeric import byte_to_length

    cached_reader = getattr(getattr(reader, "_perdoc", None), "_cached_reader", None)
    if cached_reader is None:
        return None
    n = reader.doc_count_all()
    col = cached_reader(_lenfield(field), LENGTHS_COLUMN)
    if col is None:  # no document has the field
        return np.zeros(n, dtype=np.float64)
    shape = tuple(getattr(col, name, None) for name in ("_fixedlen", "_typecode", "_reverse", "_default"))
    if shape != (1, "B", False, 0):
        return None
    codes = np.zeros(n, dtype=np.uint8)
    stored = np.frombuffer(col._dbfile.get(col._basepos, min(col._count, n)), dtype=np.uint8)
    codes[: len(stored)] = stored  # documents past the stored ones have the default, 0
    table = np.array([byte_to_length(b) if b else 0 for b in range(256)], dtype=np.float64)
    return table[codes]


def _filter(entities: Sequence[str], said: Sequence[str]) -> Query | None:
    terms: list[Query] = [Term("entity", e) for e in entities] + [Term("said", e) for e in said]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else And(terms)


def _segment_id(reader) -> str | None:
    segment = getattr(reader, "segment", None)
    return segment().segment_id() if callable(segment) else None


def _memo_key(query: Query | None, filt: Query | None, allowed: np.ndarray | None) -> tuple:
    """What a per-thread memo is valid for; the mask is held (compared by identity), so its id cannot be
    reused by another mask while the memo lives."""
    return (repr(query), repr(filt), allowed)


def _same_key(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and a[1] == b[1] and a[2] is b[2]


def _leaf_searchers(s) -> list[tuple]:
    return list(s.leaf_searchers()) if not s.is_atomic() else [(s, 0)]


def _all_docs(reader) -> np.ndarray:
    return np.arange(reader.doc_count_all(), dtype=np.int64)


def _plain_terms(q: Query, fields: Sequence[str] = ("text",)) -> list[Term] | None:
    """The terms of a query that is a single term or a plain OR of terms on one field (the text field
    of a combined-field index, or ``entity``); else None."""
    if isinstance(q, Term) and type(q) is Term:
        subs = [q]
    elif type(q) is Or and not getattr(q, "minmatch", 0) and getattr(q, "scale", None) in (None, 0, 0.0):
        subs = list(q.subqueries)
    else:
        return None
    if not subs or not all(type(t) is Term for t in subs):
        return None
    field = subs[0].fieldname
    if field not in ("text", "entity") or (field == "text" and list(fields) != ["text"]):
        return None
    return subs if all(t.fieldname == field for t in subs) else None


def _term_postings(
    reader, field: str, text, *, weights: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """(docnums, term frequencies) of a term in one segment, read a block at a time.

    With ``weights=False`` only the docnums are decoded (what counting needs) and the second item is None.
    """
    no_ids = np.zeros(0, dtype=np.int64)
    empty = (no_ids, np.zeros(0, dtype=np.float64) if weights else None)
    try:
        if (field, text) not in reader:
            return empty
        m = reader.postings(field, text)
    except Exception:  # unknown field or unindexable term: nothing matches it
        return empty
    ids: list[np.ndarray] = []
    freqs: list[np.ndarray] = []
    if hasattr(m, "_read_ids") and hasattr(m, "_read_weights") and hasattr(m, "_next_block"):
        while m.is_active():  # whoosh3 on-disk postings: whole blocks
            m._read_ids()
            ids.append(np.asarray(m._ids, dtype=np.int64))
            if weights:
                m._read_weights()
                freqs.append(np.asarray(m._weights, dtype=np.float64))
            m._next_block()
    else:
        pairs = list(m.items_as("weight"))
        ids.append(np.array([d for d, _ in pairs], dtype=np.int64))
        freqs.append(np.array([w for _, w in pairs], dtype=np.float64))
    if not ids:
        return empty
    return np.concatenate(ids), (np.concatenate(freqs) if weights else None)


def _term_ids(reader, field: str, text) -> np.ndarray:
    return _term_postings(reader, field, text, weights=False)[0]


def any_of(queries: Sequence[Query]) -> Query:
    return Or(list(queries))
