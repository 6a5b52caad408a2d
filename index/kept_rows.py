"""The corpus-wide tallies of a build (entity table, link and quote counts), and what an incremental build
takes from the previous one for the documents whose rows it keeps.

A document whose linking is unchanged (``Linker.link_corpus`` gives None for it) and whose record is the
one the previous store holds (``index.store.kept_documents``) has the previous build's paragraph rows,
keyword rows and share of every tally: the build derives none of them again. Its tallies are the previous
build's less the rows of the documents it links again or that left (read back from the previous store),
plus the rows of those it links again; every tally is a sum over documents, so this equals counting the
whole corpus.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.linking.quotes import QuoteCounts, count_quotes
from index.records import Entity
from index.store import STORE, kept_documents, open_store, record_digest

Rows = list[dict[str, Any]]  # a document's paragraph rows, links and quotes included


@dataclass
class Tallies:
    """Per entity: links (mentions), paragraphs and documents that link it, and each surface form linked;
    and the corpus's links and quotes."""

    mentions: Counter[str] = field(default_factory=Counter)
    paragraphs: Counter[str] = field(default_factory=Counter)
    documents: Counter[str] = field(default_factory=Counter)
    surfaces: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    links: int = 0
    quotes: QuoteCounts = field(default_factory=QuoteCounts)

    def add(self, docs: Iterable[Rows], sign: int = 1) -> None:
        """Count the rows of ``docs`` in (``sign`` 1) or out (-1)."""
        for rows in docs:
            in_doc: set[str] = set()
            for row in rows:
                ids = set()
                for link in row["links"]:
                    eid = link["entity_id"]
                    self.mentions[eid] += sign
                    self.surfaces[eid][link["text"]] += sign
                    ids.add(eid)
                self.links += sign * len(row["links"])
                for eid in ids:
                    self.paragraphs[eid] += sign
                in_doc |= ids
            for eid in in_doc:
                self.documents[eid] += sign
            qc = count_quotes([q for row in rows for q in row["quotes"]])
            self.quotes = self.quotes + (qc if sign > 0 else QuoteCounts(-qc.found, -qc.named, -qc.unnamed,
                                                                          -qc.unattributed))

    def entity_table(
        self, known: dict[str, Entity]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[int]]]:
        """The entities that occur, by id: the entity (``known``, else named by its most linked surface) with
        its counts and surfaces, most linked first (ties by the surface); and how often each surface was
        linked (what the store keeps for the next build's tallies)."""
        table: dict[str, dict[str, Any]] = {}
        counts: dict[str, list[int]] = {}
        for eid in sorted(e for e, n in self.mentions.items() if n > 0):
            ranked = sorted(((s, n) for s, n in self.surfaces[eid].items() if n > 0),
                            key=lambda sn: (-sn[1], sn[0]))
            ent = known.get(eid) or Entity(id=eid, name=ranked[0][0])
            row = ent.to_dict()
            row.update(mentions=self.mentions[eid], paragraphs=self.paragraphs[eid],
                       documents=self.documents[eid], surfaces=[s for s, _ in ranked])
            table[eid] = row
            counts[eid] = [n for _, n in ranked]
        return table, counts


class PreviousRows:
    """The previous build's store, for the documents whose rows an incremental build may keep."""

    def __init__(self, folder: Path, candidates: set[str], records: dict[str, str], counts: dict[str, int]):
        self.folder = folder
        self.candidates = candidates  # documents recorded as they are now: their rows may be kept
        self.records = records  # every document's ``record_digest``
        self._counts = counts

    @classmethod
    def open(
        cls, folder: Path, documents: Sequence[dict[str, Any]], counts: dict[str, int]
    ) -> PreviousRows | None:
        """The previous build ``folder`` (its manifest ``counts``) for the corpus ``documents`` (as the store
        gets them); None when its store cannot give what keeping rows needs (written before it kept records
        and surface counts)."""
        records = {d["id"]: record_digest(d) for d in documents}
        candidates = kept_documents(folder / STORE, records)
        if not candidates or not {"links", "quotes"} <= set(counts):
            return None
        store = open_store(folder)
        try:
            table = store.entity_counts_table()
        finally:
            store.close()
        if any(c is None for _, c in table.values()):
            return None
        return cls(folder, candidates, records, counts)

    def tallies(self, kept: Collection[str]) -> Tallies:
        """The previous build's tallies less the rows of its documents not in ``kept``."""
        out = Tallies(links=self._counts["links"],
                      quotes=QuoteCounts(self._counts["quotes"], self._counts.get("quotes_named", 0),
                                         self._counts.get("quotes_unnamed", 0),
                                         self._counts.get("quotes_unattributed", 0)))
        store = open_store(self.folder)
        try:
            for eid, (row, surface_counts) in store.entity_counts_table().items():
                out.mentions[eid] = row["mentions"]
                out.paragraphs[eid] = row["paragraphs"]
                out.documents[eid] = row["documents"]
                out.surfaces[eid] = Counter(dict(zip(row["surfaces"], surface_counts or [], strict=True)))
            dropped = [d for d in store.document_list()[0] if d not in kept]
            out.add(store.docs_paragraphs(dropped).values(), sign=-1)
        finally:
            store.close()
        return out

    def keyword_tags(self, kept: Collection[str]) -> dict[str, tuple[str, str]]:
        """Per paragraph of the ``kept`` documents: the entity ids it links and its quotes' speakers
        (``StoreReader.paragraph_tags``)."""
        store = open_store(self.folder)
        try:
            return store.paragraph_tags(kept)
        finally:
            store.close()
