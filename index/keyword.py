"""The keyword leg: a Whoosh (whoosh-reloaded) BM25F index over paragraphs.

Fields: ``text`` (the document title, a newline, then the paragraph; stemmed, English stop words removed),
``entity`` and ``said`` (entity ids, exact), ``doc_id``, ``date``. Paragraphs of a document in another
language that Whoosh has a stemmer for go to ``text_<code>`` instead (``text_de``: German stemming and stop
words; one field per language the corpus has); queries search every ``text*`` field. Only ``id`` is
stored; paragraph text lives in ``paragraphs.jsonl``. Scoring: BM25F with the Robertson idf (``BM25F``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
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

# One searchable field holding title + paragraph, instead of a separate ``title`` field (boost 1.5). Every
# paragraph repeats its document's title, and Whoosh's BM25F scores each field as its own saturated BM25,
# so a short title field matching the query lifted every paragraph of the document a lot. SciFact train
# (809 queries, benchmarks/tune_keyword.py), keyword nDCG@10: title+text fields, title boost 1.5: 0.657;
# boost 1.0: 0.667; boost 0.25: 0.688; one combined field: 0.695, with the Robertson idf below: 0.703.
# The OR query also has half the terms (one field, not two), which halves the keyword leg's work.
# Indexes written before this change (with a ``title`` field) are still searched over title + text.
TITLE_SEPARATOR = "\n"


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
    folder: Path, rows: Iterable[dict[str, str]], *, procs: int = 1, languages: Iterable[str] = ()
) -> int:
    """Write the index into ``folder`` (created). Each row: id, doc_id, date, title, text, entity, said, and
    optionally lang (ISO 639-1), whose field must be in ``languages``.

    ``title`` is indexed as the start of ``text`` (see ``TITLE_SEPARATOR``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    sch = schema(languages)
    ix = whoosh_index.create_in(str(folder), sch)
    writer = ix.writer(limitmb=256, procs=procs)
    names = set(sch.names())
    count = 0
    for row in rows:
        fields = {k: v for k, v in row.items() if v and k not in ("title", "lang")}
        title = row.get("title") or ""
        if title:
            fields["text"] = f"{title}{TITLE_SEPARATOR}{row.get('text') or ''}"
        target = language_field(row.get("lang") or "") or "text"
        if target != "text" and target in names and "text" in fields:
            fields[target] = fields.pop("text")
        writer.add_document(**fields)
        count += 1
    writer.commit()
    return count


class KeywordIndex:
    """Read side. One Whoosh searcher per thread (Whoosh searchers are not thread-safe)."""

    FIELDS = ("text",)  # plus "title" when the index predates the combined field

    def __init__(self, folder: Path, *, b: float = 0.75, k1: float = 1.2):
        if not whoosh_index.exists_in(str(folder)):
            raise IndexMissing(f"keyword index missing in {folder}; run `personae build`")
        self.ix = whoosh_index.open_dir(str(folder))
        self.weighting = BM25F(B=b, K1=k1)
        self._local = threading.local()
        self._searchers: list = []
        self._lock = threading.Lock()
        self._length_cache: dict[str, np.ndarray] = {}
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
    ) -> list[tuple[str, float]]:
        """Top ``k`` paragraph ids with BM25F scores, filtered to paragraphs linked to all ``entities``."""
        filt = _filter(entities, said)
        if query is None:
            if filt is None:
                return []
            query = Every()
        s = self._searcher()
        terms = _plain_terms(query)
        if terms is not None and self.fields == ["text"]:
            return self._search_terms(s, query, terms, max(1, k), filt)
        hits = s.search(query, limit=max(1, k), filter=filt)
        return [(hit["id"], float(hit.score or 0.0)) for hit in hits]

    def _search_terms(
        self, s, query: Query, terms: list[Term], k: int, filt: Query | None
    ) -> list[tuple[str, float]]:
        """BM25 for a plain OR of terms, vectorised: the same scores as Whoosh's matcher loop.

        Whoosh scores an OR query one posting at a time in Python, which is the keyword leg's long tail
        (55 ms p95 at 100k paragraphs). Here each term's postings are read a block at a time into numpy and
        the BM25 contributions summed with ``np.add.at``; ranking is by score, then docnum (Whoosh's order).
        Phrases, NOT, AND and other shapes still go through Whoosh. The number of matches comes for free
        and is remembered (per thread) for the ``count`` that usually follows.
        """
        b, k1 = self.weighting.B, self.weighting.K1
        found: list[tuple[float, int, Any, int]] = []
        matched = 0
        for leaf, offset in _leaf_searchers(s):
            reader = leaf.reader()
            lengths = self._lengths(reader)
            scores = np.zeros(len(lengths), dtype=np.float64)
            touched = np.zeros(len(lengths), dtype=bool)
            for t in terms:
                ids, weights = _term_postings(reader, t.fieldname, t.text)
                if not len(ids):
                    continue
                idf = s.idf(t.fieldname, t.text)
                avgfl = s.avg_field_length(t.fieldname) or 1
                fl = lengths[ids]
                contrib = idf * (weights * (k1 + 1)) / (weights + k1 * ((1 - b) + b * fl / avgfl))
                np.add.at(scores, ids, contrib * t.boost)
                touched[ids] = True
            if filt is not None:
                allowed = np.zeros(len(lengths), dtype=bool)
                allowed[_doc_ids(leaf, filt)] = True
                touched &= allowed
            if reader.has_deletions():
                touched &= ~np.fromiter((reader.is_deleted(i) for i in range(len(lengths))), dtype=bool)
            cand = np.flatnonzero(touched)
            matched += len(cand)
            if not len(cand):
                continue
            if len(cand) > k:
                part = np.argpartition(-scores[cand], k - 1)[:k]
                kth = scores[cand][part].min()
                cand = cand[scores[cand] >= kth]  # keep ties at the cut so docnum order decides
            found.extend((-float(scores[d]), int(d) + offset, leaf, int(d)) for d in cand)
        found.sort(key=lambda x: (x[0], x[1]))
        self._local.last_total = ((repr(query), repr(filt)), matched)
        return [(leaf.stored_fields(d)["id"], -neg) for neg, _, leaf, d in found[:k]]

    def _lengths(self, reader) -> np.ndarray:
        """Field lengths of every document (as Whoosh stores them: one byte, decoded), cached per segment.

        Keyed by segment id, so the per-thread searchers share one array per segment (segments are
        immutable; deletions do not change lengths)."""
        segment = getattr(reader, "segment", None)
        key = segment().segment_id() if callable(segment) else None  # no id: not cached
        arr = self._length_cache.get(key) if key else None
        if arr is None:
            n = reader.doc_count_all()
            arr = np.fromiter(
                (reader.doc_field_length(i, "text") or 0 for i in range(n)), dtype=np.float64, count=n
            )
            if key:
                with self._lock:
                    self._length_cache.setdefault(key, arr)
        return arr

    def count(self, query: Query | None, *, entities: Sequence[str] = (), said: Sequence[str] = ()) -> int:
        """Exact number of paragraphs matching ``query`` (and every filter), without scoring.

        Term postings are read a block at a time into numpy arrays and combined with set operations, so a
        broad OR over 100k paragraphs costs a few ms instead of a scored search plus a Python walk of the
        union (what ``len(results)`` does). Anything other than terms, OR and AND is enumerated by Whoosh.
        """
        filt = _filter(entities, said)
        if query is None and filt is None:
            return 0
        memo = getattr(self._local, "last_total", None)
        if memo is not None and memo[0] == (repr(query), repr(filt)):
            return memo[1]  # the vectorised search just counted exactly this query in this thread
        s = self._searcher()
        total = 0
        for leaf, _offset in _leaf_searchers(s):
            reader = leaf.reader()
            ids = _all_docs(reader) if query is None else _doc_ids(leaf, query)
            if filt is not None and len(ids):
                ids = np.intersect1d(ids, _doc_ids(leaf, filt), assume_unique=True)
            if reader.has_deletions() and len(ids):
                live = np.fromiter(reader.all_doc_ids(), dtype=np.int64)
                ids = np.intersect1d(ids, live, assume_unique=True)
            total += len(ids)
        return int(total)

    def entity_paragraphs(self, entity_id: str, field: str = "entity") -> list[str]:
        s = self._searcher()
        return [hit["id"] for hit in s.search(Term(field, entity_id), limit=None)]

    def close(self) -> None:
        with self._lock:
            for s in self._searchers:
                s.close()
            self._searchers.clear()
        self.ix.close()


def _filter(entities: Sequence[str], said: Sequence[str]) -> Query | None:
    terms: list[Query] = [Term("entity", e) for e in entities] + [Term("said", e) for e in said]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else And(terms)


def _leaf_searchers(s) -> list[tuple]:
    return list(s.leaf_searchers()) if not s.is_atomic() else [(s, 0)]


def _all_docs(reader) -> np.ndarray:
    return np.arange(reader.doc_count_all(), dtype=np.int64)


def _doc_ids(leaf, q: Query) -> np.ndarray:
    """Sorted unique segment-local docnums matching ``q`` in one leaf searcher (deletions not removed)."""
    if isinstance(q, Term):
        return _term_ids(leaf.reader(), q.fieldname, q.text)
    if type(q) is Or and not getattr(q, "minmatch", 0):
        parts = [_doc_ids(leaf, sub) for sub in q.subqueries]
        parts = [p for p in parts if len(p)]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    if type(q) is And:
        out: np.ndarray | None = None
        for sub in q.subqueries:
            ids = _doc_ids(leaf, sub)
            out = ids if out is None else np.intersect1d(out, ids, assume_unique=True)
            if not len(out):
                break
        return np.zeros(0, dtype=np.int64) if out is None else out
    if isinstance(q, Every) and q.fieldname in (None, "", "*"):
        return _all_docs(leaf.reader())
    ids = np.fromiter(q.docs(leaf), dtype=np.int64)  # phrases, NOT, prefixes…: Whoosh enumerates
    return np.unique(ids)


def _plain_terms(q: Query) -> list[Term] | None:
    """The terms of a query that is a single term or a plain OR of terms on ``text``; else None."""
    if isinstance(q, Term) and type(q) is Term:
        subs = [q]
    elif type(q) is Or and not getattr(q, "minmatch", 0) and getattr(q, "scale", None) in (None, 0, 0.0):
        subs = list(q.subqueries)
    else:
        return None
    if not subs or not all(type(t) is Term and t.fieldname == "text" for t in subs):
        return None
    return subs


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
