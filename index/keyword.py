"""The keyword leg: a Whoosh (whoosh-reloaded) BM25F index over paragraphs.

Fields: ``title`` and ``text`` (stemmed, English stop words removed), ``entity`` and ``said`` (entity ids,
exact), ``doc_id``, ``date``. Only ``id`` is stored; paragraph text lives in ``paragraphs.jsonl``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh import qparser, scoring
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.query import And, Every, Or, Query, Term

from index.errors import BadQuery, IndexMissing

TITLE_BOOST = 1.5


def analyzer() -> StemmingAnalyzer:
    # minsize=2 keeps two-letter names such as "EU"; single letters ("U.S." → "u", "s") are dropped.
    return StemmingAnalyzer(minsize=2, cachesize=50_000)


def schema() -> Schema:
    ana = analyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        doc_id=ID(stored=False),
        date=ID(stored=False),
        title=TEXT(analyzer=ana, field_boost=TITLE_BOOST, phrase=True),
        text=TEXT(analyzer=ana, phrase=True),
        entity=KEYWORD(commas=True, scorable=True),
        said=KEYWORD(commas=True),
    )


def write_keyword_index(folder: Path, rows: Iterable[dict[str, str]], *, procs: int = 1) -> int:
    """Write the index into ``folder`` (created). Each row: id, doc_id, date, title, text, entity, said."""
    folder.mkdir(parents=True, exist_ok=True)
    ix = whoosh_index.create_in(str(folder), schema())
    writer = ix.writer(limitmb=256, procs=procs)
    count = 0
    for row in rows:
        writer.add_document(**{k: v for k, v in row.items() if v})
        count += 1
    writer.commit()
    return count


class KeywordIndex:
    """Read side. One Whoosh searcher per thread (Whoosh searchers are not thread-safe)."""

    FIELDS = ("title", "text")

    def __init__(self, folder: Path, *, b: float = 0.75, k1: float = 1.2):
        if not whoosh_index.exists_in(str(folder)):
            raise IndexMissing(f"keyword index missing in {folder}; run `personae build`")
        self.ix = whoosh_index.open_dir(str(folder))
        self.weighting = scoring.BM25F(B=b, K1=k1)
        self._local = threading.local()
        self._searchers: list = []
        self._lock = threading.Lock()
        self.parser = qparser.MultifieldParser(list(self.FIELDS), self.ix.schema, group=qparser.OrGroup)
        # Field syntax is handled by search/query.py; users cannot address stored/internal fields directly.
        self.parser.remove_plugin_class(qparser.FieldsPlugin)
        self.parser.remove_plugin_class(qparser.WildcardPlugin)
        self.parser.remove_plugin_class(qparser.RangePlugin)
        self.and_parser = qparser.MultifieldParser(list(self.FIELDS), self.ix.schema, group=qparser.AndGroup)
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
        """Parse user text (quoted phrases, AND/OR/NOT, -term) into a Whoosh query; None if it has no terms."""
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
        hits = s.search(query, limit=max(1, k), filter=filt)
        return [(hit["id"], float(hit.score or 0.0)) for hit in hits]

    def count(self, query: Query | None, *, entities: Sequence[str] = (), said: Sequence[str] = ()) -> int:
        filt = _filter(entities, said)
        q = query if query is not None else (Every() if filt is not None else None)
        if q is None:
            return 0
        return len(self._searcher().search(q, limit=1, filter=filt))

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


def any_of(queries: Sequence[Query]) -> Query:
    return Or(list(queries))
