"""Resolution in document context: each mention's candidates are weighed against the document it is in.

A document is resolved in four passes, each deciding what it can and leaving the rest to the next:

1. **Full names** (two words or more, longest first): a registry name or alias → that entity (several
   entities behind one alias are scored, see :meth:`Linker._choose`); the tail of a longer name already
   seen ("Bin Ladin" of "Usama bin Ladin") → that name's entity; otherwise a *document cluster*.
2. **Short forms**: the document's own names come first — a surname of a person named in full, the short
   form of an organisation ("Dell" of "Dell Inc.", "Colts" of "Indianapolis Colts"), an acronym defined
   in parentheses or made of a name's initials, a first name (only where NER says person). Only then the
   registry: an alias, or a registry person's unique surname. Else a document cluster.
3. **Titles**: a title next to a name belongs to that name ("Defense Secretary Robert Gates", "Colin
   Powell, the secretary of state"); a registry title links to the holder *on the document's date*, or,
   in an undated document, to a holder named in it; a generic title ("the foreign minister") only to a
   holder named in the document. Otherwise it stays unlinked.
4. **Quotes** are attributed over the links.

Document clusters get provisional ids (``~<doc>.<n>``); :mod:`index.linking.corpus` then resolves them
across the corpus (lone surnames, spelling variants, acronyms) and gives each final cluster a stable
``local:<slug>`` id, which is mapped onto links and quote speakers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.linking import corpus as corpus_pass
from index.linking.candidates import (
    CONNECTORS,
    HONORIFICS,
    ORG_SUFFIXES,
    RegistryIndex,
    acronym_of,
    core_words,
    defines_abbreviation,
    initials,
    is_acronym,
    words_of,
)
from index.linking.context import ContextVectors
from index.linking.detect import Detector, Gazetteer
from index.linking.names import (
    PARTICLES,
    ascii_key,
    normalize_name,
    residue_stems,
    surname_words,
    tokenize,
    variant_key,
)
from index.linking.quotes import extract_quotes, extract_quotes_many
from index.linking.registry import Registry
from index.linking.sports import sports_sense
from index.linking.territories import is_known_place
from index.records import ORG, OTHER, PERSON, PLACE, Document, Entity, Link, Mention, Quote

if TYPE_CHECKING:
    from index.linking.incremental import LinkingState

CONF = {
    "title": 0.9,
    "title-apposition": 0.95,
    "alias": 1.0,
    "possessive": 1.0,
    "variant": 0.85,
    "acronym": 0.8,
    "surname": 0.9,
    "short-form": 0.9,
    "surname-registry": 0.7,
    "first-name": 0.6,
    "local": 0.6,
    "local-surname": 0.3,
    "title-generic": 0.75,
    "corpus-surname": 0.7,
    "corpus-variant": 0.75,
    "corpus-acronym": 0.75,
    "ambiguous": 0.5,
}
# Below this score an ambiguous alias goes to a document cluster rather than to a registry entity: the NER
# type agreeing is not enough alone, it takes one more sign (another of its names in the document, a title
# held on the document's date, words of its description, entities it is known to appear with).
AMBIGUITY_THRESHOLD = 1.5
RESOLVER_VERSION = "resolve:3"  # bump when resolution changes what the same mentions link to

# The generic head of a place's name: the name without it is the same place ("Heathrow Airport", "Gaza
# Strip"). Not city, state, county: "Kansas City" is not Kansas.
GEO_HEADS = frozenset(
    """airport bay island islands river mountain mountains square street station hospital prison base park
    lake valley cathedral bridge dam strip peninsula canal desert stadium palace abbey""".split()
)
# Words that make the name after them a place: "in Boston", "from the Netherlands".
_LOCATIVE_RE = re.compile(
    r"\b(?:in|at|from|near|into|across|throughout|outside|inside|around|via)\s+(?:the\s+)?$", re.I
)
_APPOSITION_AFTER_RE = re.compile(r"^,?\s*$")
_APPOSITION_BEFORE_RE = re.compile(r"^,\s+(?:the\s+|a\s+|an\s+)?$", re.I)


@dataclass
class _Pending:
    m: Mention
    entity_id: str | None = None
    rule: str = ""
    conf: float = 0.0
    type: str = OTHER
    candidates: tuple[tuple[str, float], ...] = ()


class _once:  # noqa: N801 (a decorator)
    """``functools.cached_property`` without its lock (Python 3.11 takes one on every first read)."""

    def __init__(self, fn: Any):
        self.fn = fn
        self.name = fn.__name__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass
class DocCluster:
    """A name outside the registry as one document uses it: what the corpus pass resolves further."""

    pid: str
    words: tuple[str, ...]  # core words of the fullest name the document gives it
    types: Counter[str] = field(default_factory=Counter)  # votes of its mentions' NER types
    surfaces: Counter[str] = field(default_factory=Counter)
    date: str | None = None
    acronym_of: str | None = None  # pid of the cluster this acronym is defined for ("WHO" → the WHO's)
    sense: str = ""  # "team": a place named for its team ("Australia won by five wickets"), not the place

    # Read only by the corpus pass, once resolution has stopped voting: computed once (the pass reads them
    # hundreds of thousands of times), and kept with the cluster in the build's linking state.
    @_once
    def single(self) -> bool:
        return len(self.words) == 1

    @_once
    def type(self) -> str:
        return majority(self.types) if self.types else OTHER

    @_once
    def key(self) -> str:
        """The ASCII key of its fullest name (the corpus pass's same-name block)."""
        return ascii_key(" ".join(self.words))

    # The build's linking state pickles a cluster per name of every document: the votes go as plain dicts
    # and come back as Counters without Counter.__init__ (its Mapping check dominates unpickling).
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["types"], state["surfaces"] = dict(self.types), dict(self.surfaces)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in ("types", "surfaces"):
            votes = state[name]
            if type(votes) is not Counter:
                state[name] = counter = Counter.__new__(Counter)
                dict.update(counter, votes)
        self.__dict__.update(state)


def majority(types: Counter[str]) -> str:
    """The most voted type; ties break person > org > place > other (a name is most often a person's)."""
    order = {PERSON: 0, ORG: 1, PLACE: 2, OTHER: 3}
    return min(types.items(), key=lambda kv: (-kv[1], order.get(kv[0], 9)))[0]


@dataclass
class DocResult:
    """One document resolved: links (document clusters under provisional ids) and its clusters."""

    doc_id: str
    text: str
    date: str | None
    links: list[Link]
    clusters: dict[str, DocCluster]
    acronyms: list[tuple[str, str]] = field(default_factory=list)  # (acronym, entity or cluster id) defined
    # what the corpus pass derives from the document once and keeps with it (see index.linking.corpus)
    caps: frozenset[str] | None = None  # ASCII keys of its capitalised words (surnames NER may have missed)
    blocks: dict[str, tuple[str, ...]] | None = None  # cluster id → the blocks it is resolved in


def _kept_entry(links: list[Link], quotes: list[Quote]) -> tuple[str, tuple[str, ...], list[Quote]]:
    """What the linking state keeps of a document's quotes (``index.linking.incremental.KeptQuotes``)."""
    from index.linking.incremental import links_shape

    return links_shape(links), tuple(lk.entity_id for lk in links), quotes


class Linker:
    """Links documents (and queries) to a :class:`Registry` and to clusters of names outside it."""

    def __init__(self, registry: Registry, detector: Detector, n_process: int = 1, batch_size: int = 32):
        self.registry = registry
        self.detector = detector
        self.n_process = n_process
        self.batch_size = batch_size
        self.index = RegistryIndex(registry)
        self._query_gaz = Gazetteer.from_registry(registry)
        self._locals: dict[str, Entity] = {}  # final local entities of the last corpus linked
        self._local_names: dict[str, str] = {}  # normalised name/alias → local id, for queries
        self.state: LinkingState | None = None  # what the last corpus linked leaves for the next build

    # ------------------------------------------------------------ public API
    def link_document(self, doc: Document) -> tuple[list[Link], list[Quote]]:
        return self.link_documents([doc])[0]

    def link_documents(self, docs: Iterable[Document]) -> list[tuple[list[Link], list[Quote]]]:
        """Detect, resolve each document, then resolve the documents' clusters across them all."""
        docs = list(docs)
        mentions = self.detector.detect_many(
            [d.text for d in docs], batch_size=self.batch_size, n_process=self.n_process
        )
        return self.link_corpus(docs, mentions)

    def link_corpus(
        self,
        docs: Sequence[Document],
        mentions: Sequence[list[Mention] | None],
        context: ContextVectors | None = None,
        previous: LinkingState | None = None,
        skip: Collection[str] = (),
    ) -> list[tuple[list[Link], list[Quote]] | None]:
        """Resolve detected mentions of a whole corpus: per document, then the corpus pass (with the build's
        paragraph vectors as ``context`` when it has them). The local entities it finds replace those of the
        previous call (see :meth:`entities`), and :attr:`state` keeps what the next build can reuse.

        With ``previous`` (the state of the build before), unchanged documents keep their resolution (their
        ``mentions`` may be None) and quotes, and the corpus pass resolves only the blocks the changed
        documents touch: the result is the same as without it. A document in ``skip`` whose final links and
        quotes are then those ``previous`` gave it (see :meth:`_untouched`) gets None instead of them: the
        caller has them from the build before, and this call spends nothing on it."""
        from index.linking.incremental import LinkingState, doc_fingerprint, kept_quotes

        results: list[DocResult] = []
        changed: set[str] = set()
        for d, ms in zip(docs, mentions, strict=True):
            r = previous.result_for(d) if previous is not None else None
            if r is None:
                r = self.resolve_document(d, ms if ms is not None else self.detector.detect(d.text))
                changed.add(d.id)
            results.append(r)
        start = previous.previous_pass((d.id for d in docs), changed) if previous is not None else None
        outcome = corpus_pass.resolve(results, self.registry, self.index, context, start)
        self._locals = outcome.entities
        self._local_names = outcome.names
        kept = previous.quotes if previous is not None else {}
        same = (self._untouched(docs, results, changed, previous, outcome, skip)
                if previous is not None and skip else set())
        linked = [None if d.id in same else self._final_links(r, outcome)
                  for d, r in zip(docs, results, strict=True)]
        quotes = [kept[d.id][2] if d.id in same
                  else kept_quotes(kept.get(d.id) if d.id not in changed else None, linked[i] or [])
                  for i, d in enumerate(docs)]
        todo = [i for i, qs in enumerate(quotes) if qs is None]
        fresh = extract_quotes_many([(results[i].text, linked[i] or []) for i in todo],
                                    model=self.detector.model)
        for i, qs in zip(todo, fresh, strict=True):
            quotes[i] = qs
        self.state = LinkingState(
            fingerprints={d.id: previous.fingerprints[d.id] if d.id not in changed and previous is not None
                          else doc_fingerprint(d) for d in docs},
            results={d.id: r for d, r in zip(docs, results, strict=True)},
            quotes={d.id: kept[d.id] if d.id in same else _kept_entry(linked[i] or [], quotes[i] or [])
                    for i, d in enumerate(docs)},
            outcome=outcome,
            languages={d.id: d.language for d in docs},
            # kept_quotes hands back the kept list itself only when the links' shape and ids are the same
            unchanged={d.id for i, d in enumerate(docs) if d.id not in changed and previous is not None
                       and d.id in kept and quotes[i] is kept[d.id][2]
                       and previous.languages.get(d.id) == d.language},
        )
        return [None if d.id in same else (links or [], qs or [])
                for d, links, qs in zip(docs, linked, quotes, strict=True)]

    @staticmethod
    def _untouched(
        docs: Sequence[Document], results: Sequence[DocResult], changed: set[str], previous: LinkingState,
        outcome: corpus_pass.CorpusOutcome, candidates: Collection[str],
    ) -> set[str]:
        """The documents among ``candidates`` whose final links and quotes are those of ``previous``, known
        without deriving them: resolution reused, same language, and no link whose id or rule the corpus pass
        now decides otherwise, nor links it added that differ. Final links are ``relink`` of the resolved
        links and the added ones through ``outcome.ids`` and ``outcome.rules`` under the same registry (the
        state is only reused under it), so these documents' links are the previous build's, and their kept
        quotes with them."""
        before = previous.outcome
        moved = {k for k, v in outcome.ids.items() if before.ids.get(k) != v}
        moved.update(k for k in before.ids if k not in outcome.ids)
        moved.update(k for k, v in outcome.rules.items() if before.rules.get(k) != v)
        moved.update(k for k in before.rules if k not in outcome.rules)
        out = set()
        for d, r in zip(docs, results, strict=True):
            if (d.id not in candidates or d.id in changed or d.id not in previous.quotes
                    or previous.languages.get(d.id) != d.language):
                continue
            added = outcome.added.get(d.id, [])
            if added != before.added.get(d.id, []) or any(lk.entity_id in moved for lk in added):
                continue
            if not any(lk.entity_id in moved for lk in r.links):
                out.add(d.id)
        return out

    def link_text(self, doc: Document) -> tuple[list[Link], list[Quote]]:
        """Link one text on its own (the ``/api/link`` call): the linker's state is left as it was, so this is
        safe from many threads; names outside the registry get the build's local ids where it knows them."""
        mentions = self.detector.detect_many([doc.text])[0]
        result = self.resolve_document(doc, mentions)
        outcome = corpus_pass.resolve([result], self.registry, self.index)
        for pid, lid in list(outcome.ids.items()):
            ent = outcome.entities.get(lid)
            known = self._local_names.get(normalize_name(ent.name)) if ent is not None else None
            if known:
                outcome.ids[pid] = known
        links = self._final_links(result, outcome)
        return links, extract_quotes(doc.text, links, model=self.detector.model)

    def _final_links(self, result: DocResult, outcome: corpus_pass.CorpusOutcome) -> list[Link]:
        """A document's links (and those the corpus pass added) under their final ids, curation applied."""
        links = []
        for lk in [*result.links, *outcome.added.get(result.doc_id, [])]:
            lk = corpus_pass.relink(lk, outcome)
            eid = self.registry.resolve(lk.entity_id)
            if eid not in self.registry.rejected_ids:
                links.append(replace(lk, entity_id=eid) if eid != lk.entity_id else lk)
        links.sort(key=lambda lk: (lk.start, lk.end))
        return links

    def entities(self) -> dict[str, Entity]:
        """Registry entities plus the local entities of the last corpus linked (curation applied)."""
        out = dict(self.registry.entities)
        for lid, ent in sorted(self._locals.items()):
            eid = self.registry.resolve(lid)
            if eid in self.registry.rejected_ids:
                continue
            if eid in out:
                prev = out[eid]
                extra = tuple(
                    sorted(a for a in (ent.name, *ent.aliases) if a not in prev.aliases and a != prev.name)
                )
                out[eid] = replace(prev, aliases=prev.aliases + extra)
                continue
            name = self.registry.renames.get(eid, ent.name)
            out[eid] = replace(ent, id=eid, name=name, aliases=tuple(a for a in ent.aliases if a != name))
        return out

    def use_entities(self, entities: dict[str, Entity]) -> None:
        """Make the local entities of a build known to :meth:`link_query` (the build's entity table)."""
        self._locals = {eid: e for eid, e in entities.items() if eid not in self.registry.entities}
        self._local_names = {}
        for eid in sorted(self._locals):
            ent = self._locals[eid]
            for name in (ent.name, *ent.aliases):
                self._local_names.setdefault(normalize_name(name), eid)

    # ------------------------------------------------------------ one document
    def resolve_document(self, doc: Document, mentions: list[Mention]) -> DocResult:
        pend = [_Pending(m, type=m.type) for m in mentions]
        clusters: dict[str, DocCluster] = {}
        ctx = _DocContext(doc, clusters)
        names = [p for p in pend if p.m.source not in ("title", "acronym")]
        surfaces = {normalize_name(p.m.text) for p in names}
        # a name under extraction residue waits for the name it stands for: "Texacos" after "Texaco Inc"
        residue = {
            id(p) for p in names if any(normalize_name(s) in surfaces for s, _ in residue_stems(p.m.text))
        }
        full = sorted(
            (p for p in names if len(core_words(p.m.text)) >= 2),
            key=lambda p: (id(p) in residue, -len(core_words(p.m.text)), p.m.start),
        )
        for p in full:
            self._resolve_full(p, pend, ctx)
        for p in (p for p in pend if p.m.source == "acronym"):
            self._resolve_defined_acronym(p, pend, ctx)
        short = (p for p in names if p.entity_id is None)
        for p in sorted(short, key=lambda p: (id(p) in residue, p.m.start)):
            self._resolve_short(p, pend, ctx)
        named = {p.entity_id for p in pend if p.entity_id}
        for p in (p for p in pend if p.m.source == "title"):
            self._resolve_title(p, pend, named, doc)
        links = [self._to_link(p) for p in pend if p.entity_id]
        return DocResult(doc.id, doc.text, doc.date, links, clusters, ctx.defined)

    def _resolve_full(self, p: _Pending, pend: list[_Pending], ctx: _DocContext) -> None:
        if self._team(p, pend, ctx):
            return
        ids, rule = self.index.by_name(p.m.text)
        if ids:
            self._link_registry(p, ids, rule, pend, ctx)
            return
        if self._inherit(p, pend, ctx, tail_only=True) or self._inherit_residue(p, pend, ctx):
            return
        self._cluster(p, ctx)

    def _resolve_defined_acronym(self, p: _Pending, pend: list[_Pending], ctx: _DocContext) -> None:
        """ "World Health Organization (WHO)": the acronym names the entity of the name just before it."""
        before = [q for q in pend if q.entity_id and q.m.end <= p.m.start and q.m.source != "title"]
        if before:
            q = before[-1]
            if (
                acronym_of(p.m.text, core_words(q.m.text))
                or acronym_of(p.m.text, words_of(q.m.text))
                or defines_abbreviation(p.m.text, q.m.text)
            ):
                self._set(p, q.entity_id, "acronym", type=q.type)  # type: ignore[arg-type]
                ctx.defined.append((p.m.text, q.entity_id))  # type: ignore[arg-type]
                cl = ctx.clusters.get(q.entity_id)  # type: ignore[arg-type]
                if cl is not None:
                    cl.surfaces[p.m.text] += 1
                return
        p.m = replace(p.m, source="ner")  # not a definition after all: an ordinary short name

    def _resolve_short(self, p: _Pending, pend: list[_Pending], ctx: _DocContext) -> None:
        if self._team(p, pend, ctx) or self._inherit(p, pend, ctx, tail_only=False):
            return
        ids, rule = self.index.by_name(p.m.text)
        if ids:
            self._link_registry(p, ids, rule, pend, ctx)
            return
        if self._inherit_residue(p, pend, ctx):
            return
        w = core_words(p.m.text)
        if len(w) == 1:
            ids = self.index.surname.get(normalize_name(w[0]), [])
            if len(ids) == 1:
                self._set(p, ids[0], "surname-registry")
                return
            if is_acronym(p.m.text):
                ids = self.index.acro.get("".join(c for c in p.m.text if c.isalpha()), [])
                if len(ids) == 1:
                    self._set(p, ids[0], "acronym", 0.7)
                    return
        self._cluster(p, ctx)

    def _inherit(self, p: _Pending, pend: list[_Pending], ctx: _DocContext, tail_only: bool) -> bool:
        """Give ``p`` the entity of a fuller name of this document it is a short form of (see
        :meth:`_fuller_name`). Returns whether it did."""
        hit = self._fuller_name(p, pend, ctx, tail_only)
        if hit is None:
            return False
        q, rule = hit
        self._set(p, q.entity_id, rule, type=q.type)  # type: ignore[arg-type]
        self._count_surface(p, q, ctx)
        return True

    def _fuller_name(
        self, p: _Pending, pend: list[_Pending], ctx: _DocContext, tail_only: bool
    ) -> tuple[_Pending, str] | None:
        """The fuller name of this document ``p`` is a short form of, and the rule that says so; nearest
        earlier such name wins, else nearest later."""
        w = [x.casefold() for x in core_words(p.m.text)]
        if not w:
            return None
        acro = is_acronym(p.m.text)
        place_name = any(self.index.type_of(e) == PLACE for e in self.index.exact.get(p.m.text, []))
        # only short forms read it (_short_form_rank returns before the organisation rules for a tail)
        org_head = (
            not tail_only and p.m.type == PLACE and not acro and self._names_an_organisation(p, pend, ctx)
        )
        best: tuple[int, int, int, _Pending] | None = None
        for q in pend:
            if q is p or not q.entity_id or q.m.source == "title":
                continue
            qcore = core_words(q.m.text)
            qw = [x.casefold() for x in qcore]
            if len(qw) <= len(w) and len(words_of(q.m.text)) <= len(words_of(p.m.text)):
                continue  # not a fuller name
            rank = self._short_form_rank(p, q, w, qw, acro, place_name, tail_only, org_head)
            if rank is None:
                continue
            later = 0 if q.m.end <= p.m.start else 1
            cand = (rank + later, abs(p.m.start - q.m.start), q.m.start, q)
            if best is None or cand[:3] < best[:3]:
                best = cand
        if best is None:
            return None
        q = best[3]
        if best[0] - (0 if q.m.end <= p.m.start else 1) == 2:
            return q, "first-name"
        return q, "acronym" if acro else ("surname" if q.type == PERSON else "short-form")

    def _team(self, p: _Pending, pend: list[_Pending], ctx: _DocContext) -> bool:
        """A place named for its team (:func:`index.linking.sports.sports_sense`) is that team: the one the
        document names in full with the place's name at its start or end ("Miami" of "Miami Dolphins",
        "Madrid" of "Real Madrid"; nearest earlier, else nearest later), else, for a country or a city the
        territory data knows, a team entity of its own."""
        known = is_known_place(p.m.text)
        if p.m.type == PERSON or not (known or p.m.type == PLACE):
            return False
        if not sports_sense(ctx.doc.text, p.m.start, p.m.end):
            return False
        w = [x.casefold() for x in core_words(p.m.text)]
        best: tuple[int, int, _Pending] | None = None
        for q in pend:
            if q is p or not q.entity_id or q.type not in (ORG, OTHER) or q.m.source == "title":
                continue
            qw = [x.casefold() for x in core_words(q.m.text)]
            if len(qw) > len(w) and (qw[: len(w)] == w or qw[-len(w) :] == w):
                cand = (0 if q.m.end <= p.m.start else 1, abs(q.m.start - p.m.start), q)
                if best is None or cand[:2] < best[:2]:
                    best = cand
        if best is None:
            if not known:  # a team of its own only for a place we know; else the name stays what NER says
                return False
            self._cluster(p, ctx, sense="team")
            return True
        q = best[2]
        self._set(p, q.entity_id, "short-form", type=ORG)  # type: ignore[arg-type]
        self._count_surface(p, q, ctx)
        return True

    @staticmethod
    def _names_an_organisation(p: _Pending, pend: list[_Pending], ctx: _DocContext) -> bool:
        """Whether a name NER calls a place stands for the one organisation of this document whose name
        it begins ("Halliburton" of "Halliburton Energy Services"): never a country, region or known city,
        never a name the document also uses as a place ("in Boston"), and not when two organisations begin
        with it ("London Stock Exchange", "London Metal Exchange")."""
        if is_known_place(p.m.text):
            return False
        key = normalize_name(p.m.text)
        orgs = {  # counted by entity: "Acme Foods" may be what the document calls "Acme Foods Inc"
            q.entity_id
            for q in pend
            if q.type in (ORG, OTHER) and q.entity_id and normalize_name(q.m.text).startswith(key + " ")
        }
        if len(orgs) != 1:
            return False
        text = ctx.doc.text
        for q in pend:
            before = text[max(0, q.m.start - 24) : q.m.start]
            if normalize_name(q.m.text) == key and _LOCATIVE_RE.search(before):
                return False
        return True

    def _inherit_residue(self, p: _Pending, pend: list[_Pending], ctx: _DocContext) -> bool:
        """A name under extraction residue (:func:`residue_stems`) takes the entity of the name it stands for
        in this document: the same name, or a fuller one it is a short form of. A lost possessive never
        stands for a person ("Williams" is not William's)."""
        for stem, possessive in residue_stems(p.m.text):
            key = normalize_name(stem)
            same = [
                q for q in pend if q.entity_id and q.m.source != "title" and normalize_name(q.m.text) == key
            ]
            if possessive:
                same = [q for q in same if q.type != PERSON]
            if same:
                q = min(same, key=lambda q: abs(q.m.start - p.m.start))
                self._set(p, q.entity_id, "short-form", type=q.type)  # type: ignore[arg-type]
                self._count_surface(p, q, ctx)
                return True
            others = [q for q in pend if not (possessive and q.type == PERSON)]
            hit = self._fuller_name(_Pending(replace(p.m, text=stem), type=p.type), others, ctx, False)
            if hit is not None:
                q, rule = hit
                self._set(p, q.entity_id, rule, type=q.type)  # type: ignore[arg-type]
                self._count_surface(p, q, ctx)  # the cluster sees the text, not the stem
                return True
        return False

    @staticmethod
    def _count_surface(p: _Pending, q: _Pending, ctx: _DocContext) -> None:
        cl = ctx.clusters.get(q.entity_id)  # type: ignore[arg-type]
        if cl is not None:
            cl.surfaces[p.m.text] += 1
            cl.types[p.m.type] += 1 if p.m.type == q.type else 0

    @staticmethod
    def _short_form_rank(
        p: _Pending,
        q: _Pending,
        w: list[str],
        qw: list[str],
        acro: bool,
        place_name: bool,
        tail_only: bool,
        org_head: bool = False,
    ) -> int | None:
        """How strongly ``p`` (words ``w``) is a short form of ``q`` (words ``qw``); None: it is not."""
        person = q.type == PERSON
        if person and [x.casefold() for x in surname_words(list(core_words(q.m.text)))] == w:
            return (
                0 if not place_name or p.m.type != PLACE else None
            )  # the surname ("Lavrov", "von der Leyen")
        if person and qw[-len(w) :] == w and not place_name:
            return 0
        if tail_only:
            return None
        if acro and (acronym_of(p.m.text, core_words(q.m.text)) or acronym_of(p.m.text, words_of(q.m.text))):
            return 0
        org_prefix = q.type in (ORG, OTHER) and qw[: len(w)] == w
        if org_prefix and (p.m.type != PLACE or org_head) and not place_name:
            rest = qw[len(w) :]
            if not any(c.isdigit() for x in rest for c in x):
                return 0  # "Dell" of "Dell Inc.", "Burlington" of "Burlington Industries"; not "BBC Radio 4"
        if (
            q.type in (ORG, OTHER)
            and len(w) == 1
            and len(qw) >= 2
            and 3 <= len(w[0]) <= 4
            and (
                qw[0].startswith(w[0])
                and len(qw[0]) >= len(w[0]) + 3
                and p.m.type != PLACE
                and not place_name
            )
        ):
            return 1  # a clipped first word: "Fed" of "Federal Reserve"
        if (
            q.type in (ORG, OTHER)
            and len(w) == 1
            and qw[-1] == w[0]
            and not place_name
            and not any(x in CONNECTORS for x in qw)
        ):
            return 1  # "Colts" of "Indianapolis Colts", never "England" of "Bank of England"
        if q.type == PLACE and qw[: len(w)] == w and all(x in GEO_HEADS for x in qw[len(w) :]):
            return 0  # "Heathrow" of "Heathrow Airport", "Gaza" of "Gaza Strip"; not "Kansas City"
        if person and qw[: len(w)] == w and p.m.type == PERSON and not place_name:
            return 2  # a first name ("Saddam"): weaker, and only where NER says person
        return None

    def _link_registry(
        self, p: _Pending, ids: list[str], rule: str, pend: list[_Pending], ctx: _DocContext
    ) -> None:
        poss = ctx.doc.text[p.m.end : p.m.end + 2] in ("'s", "’s")
        if len(ids) == 1:
            self._set(p, ids[0], "possessive" if poss and rule == "alias" else rule)
            return
        scored = self._choose(p, ids, pend, ctx)
        best, score = scored[0]
        margin = score - (scored[1][1] if len(scored) > 1 else 0.0)
        if score >= AMBIGUITY_THRESHOLD and margin > 0:
            self._set(p, best, rule, CONF[rule] * min(1.0, 0.5 + 0.25 * margin))
        else:
            self._cluster(p, ctx)  # the corpus pass may still decide it from the company it keeps
        p.candidates = tuple((eid, round(s, 3)) for eid, s in scored)

    def _choose(
        self, p: _Pending, ids: list[str], pend: list[_Pending], ctx: _DocContext
    ) -> list[tuple[str, float]]:
        """Score the registry entities one alias names, in context. Features (each adds to the score): the
        mention's NER type agrees with the entity's; another of the entity's names is in the document; the
        entity holds a title on the document's date; words of its description occur in the document."""
        text_norm = ctx.norm_text
        before = ctx.doc.text[max(0, p.m.start - 12) : p.m.start].split()
        mtype = PERSON if before and before[-1].lower().rstrip(".") in HONORIFICS else p.m.type  # "Mr Ford"
        out = []
        for eid in ids:
            ent = self.index.entity(eid)
            if ent is None:
                continue
            score = 0.0
            if ent.type == mtype:
                score += 1.0
            others = {normalize_name(x) for x in (ent.name, *ent.aliases)} - {normalize_name(p.m.text)}
            if any(f" {o} " in text_norm for o in others if len(o) > 3):
                score += 1.5
            if any(t.holds_on(ctx.doc.date) for t in ent.titles):
                score += 0.5
            if ent.description:
                words = {w for w in normalize_name(ent.description).split() if len(w) > 4}
                score += 0.5 * min(3, sum(1 for w in words if f" {w} " in text_norm))
            out.append((eid, score))
        out.sort(key=lambda kv: (-kv[1], kv[0]))
        return out

    def _cluster(self, p: _Pending, ctx: _DocContext, sense: str = "") -> None:
        """A document cluster for a name nothing above explains: one per name key (and sense) within the
        document."""
        words = core_words(p.m.text)
        if p.m.type == PERSON and len(words) >= 3:  # "Gerald R. Ford" is "Gerald Ford"
            words = tuple(w for w in words if len(w.rstrip(".")) > 1) or words
        while len(words) > 1 and words[0].islower() and words[0] not in PARTICLES:
            words = words[1:]  # what an honorific or an initial left in front ("Queen at Balmoral")
        while len(words) > 1 and words[-1].islower():
            words = words[:-1]
        key_text = normalize_name(" ".join(words))
        if not key_text or not any(c.isalpha() for c in key_text):
            return
        single = len(words) == 1
        key = (p.m.type == PERSON if single else None, key_text, sense)
        pid = ctx.keys.get(key)
        if pid is None:
            pid = f"~{corpus_pass.doc_key(ctx.doc.id)}.{len(ctx.clusters)}"  # stable: not the corpus order
            ctx.keys[key] = pid
            ctx.clusters[pid] = DocCluster(pid, tuple(words), date=ctx.doc.date, sense=sense)
        cl = ctx.clusters[pid]
        cl.surfaces[p.m.text] += 1
        typ = ORG if sense == "team" else p.m.type
        cl.types[typ] += 1
        self._set(p, pid, "local-surname" if single and typ == PERSON else "local", type=typ)

    def _resolve_title(
        self, p: _Pending, pend: list[_Pending], named: set[str | None], doc: Document
    ) -> None:
        person = self._apposed_person(p, pend, doc.text)
        if person is not None:
            self._set(p, person.entity_id, "title-apposition", type=PERSON)  # type: ignore[arg-type]
            return
        generic = bool(self.index.holders(p.m.text, generic=True)) and not self.index.holders(p.m.text)
        holders = self.index.holders(p.m.text, generic=generic)
        if generic:
            ids = sorted(
                {
                    h.entity_id
                    for h in holders
                    if h.entity_id in named
                    and (not doc.date or not h.title.dated or h.title.holds_on(doc.date))
                }
            )
            rule = "title-generic"
        elif doc.date:
            ids = sorted(
                {
                    h.entity_id
                    for h in holders
                    if h.title.holds_on(doc.date) or (not h.title.dated and h.entity_id in named)
                }
            )
            rule = "title"
        else:
            ids = sorted({h.entity_id for h in holders if h.entity_id in named})
            rule = "title"
        if len(ids) == 1:
            self._set(p, ids[0], rule, type=PERSON if self.index.type_of(ids[0]) == PERSON else None)

    @staticmethod
    def _apposed_person(p: _Pending, pend: list[_Pending], text: str) -> _Pending | None:
        """The person a title stands beside: "Defense Secretary [Robert Gates]", "[Colin Powell], the
        secretary of state"."""
        for q in pend:
            if q is p or not q.entity_id or q.type != PERSON or q.m.source == "title":
                continue
            if q.m.start >= p.m.end and _APPOSITION_AFTER_RE.match(text[p.m.end : q.m.start]):
                return q
            if q.m.end <= p.m.start and _APPOSITION_BEFORE_RE.match(text[q.m.end : p.m.start]):
                return q
        return None

    # ------------------------------------------------------------ helpers
    def _set(
        self, p: _Pending, eid: str, rule: str, conf: float | None = None, type: str | None = None
    ) -> None:
        p.entity_id, p.rule = eid, rule
        p.conf = CONF.get(rule, 0.5) if conf is None else conf
        ent = self.index.entity(eid)
        p.type = ent.type if ent else (type or p.m.type)

    def _to_link(self, p: _Pending) -> Link:
        assert p.entity_id is not None
        return Link(p.m.start, p.m.end, p.m.text, p.entity_id, p.type, round(p.conf, 3), p.rule, p.candidates)

    # ------------------------------------------------------------ queries
    def link_query(self, text: str) -> list[Link]:
        """Link names in a short query (no document context; nothing is created). Case-insensitive for
        names of three letters or more; sees registry and local entities of the build in use."""
        links = self._query_gazetteer(text)
        if not links and any(c.isupper() for c in text):
            for m in self.detector.detect(text):
                hit = self._query_key(normalize_name(" ".join(core_words(m.text))), m.text, False)
                if hit:
                    eid, rule, conf, typ = hit
                    links.append(Link(m.start, m.end, m.text, eid, typ, conf, rule))
        return links

    def _query_gazetteer(self, text: str) -> list[Link]:
        toks = tokenize(text)
        norms = [t.norm for t in toks]
        found: list[tuple[int, int, str, str, float, str]] = []
        max_n = max(self._query_gaz.max_len, 4)
        for i in range(len(toks)):
            for n in range(min(max_n, len(toks) - i), 0, -1):
                key = " ".join(norms[i : i + n])
                s, e = toks[i].start, toks[i + n - 1].end
                hit = self._query_key(key, text[s:e], i > 0 and norms[i - 1] == "the")
                if hit:
                    found.append((s, e, *hit))
                    break
        chosen: list[tuple[int, int, str, str, float, str]] = []
        for c in sorted(found, key=lambda c: (-(c[1] - c[0]), c[0])):
            if all(c[1] <= o[0] or c[0] >= o[1] for o in chosen):
                chosen.append(c)
        return [Link(s, e, text[s:e], eid, typ, conf, rule) for s, e, eid, rule, conf, typ in sorted(chosen)]

    def _query_key(self, key: str, surface: str, after_the: bool) -> tuple[str, str, float, str] | None:
        def typ(eid: str) -> str:
            ent = self.registry.entities.get(eid) or self._locals.get(eid)
            return ent.type if ent else OTHER

        if not key or (len(key) <= 3 and not any(c.isupper() for c in surface)):
            return None  # "us", "eu" typed lowercase are words, not names
        holders = sorted({h.entity_id for h in self.index.titles.get(key, [])})
        if len(holders) == 1:
            return holders[0], "title", CONF["title"], typ(holders[0])
        for table, rule, k in (
            (self.index.norm, "alias", key),
            (self.index.variant, "variant", variant_key(surface)),
        ):
            ids = table.get(k)
            if ids and len(ids) == 1:
                return ids[0], rule, CONF[rule], typ(ids[0])
        generic = sorted({h.entity_id for h in self.index.generic.get(key, [])})
        if len(generic) == 1 and after_the:
            return generic[0], "title-generic", CONF["title-generic"], typ(generic[0])
        ids = self.index.surname.get(key)
        if ids and len(ids) == 1:
            return ids[0], "surname-registry", CONF["surname-registry"], typ(ids[0])
        lid = self._local_names.get(key)
        if lid:
            return self.registry.resolve(lid), "local", CONF["local"], typ(lid)
        return None


class _DocContext:
    """What resolving one document accumulates: its clusters, their keys, acronyms it defines."""

    def __init__(self, doc: Document, clusters: dict[str, DocCluster]):
        self.doc = doc
        self.clusters = clusters
        self.keys: dict[tuple[object, str, str], str] = {}
        self.defined: list[tuple[str, str]] = []
        self._norm: str | None = None

    @property
    def norm_text(self) -> str:
        if self._norm is None:
            self._norm = " " + normalize_name(self.doc.text) + " "
        return self._norm


__all__ = [
    "Linker",
    "CONF",
    "DocResult",
    "DocCluster",
    "make_linker",
    "ORG_SUFFIXES",
    "PARTICLES",
    "initials",
]


def make_linker(entities_file: str | Path | None, ner_model: str, ner_window: int | None = None) -> Linker:
    """The linker over the registry at ``entities_file`` (None, or no such file: an empty registry)."""
    registry = Registry.load(entities_file) if entities_file and Path(entities_file).is_file() else Registry()
    return Linker(registry, Detector(registry=registry, model=ner_model, window=ner_window))


def build_linker(
    folder: Path, entities: dict[str, dict], ner_model: str, ner_window: int | None = None
) -> Linker:
    """The query-time linker of one build: the registry copy that build used (``registry.jsonl``) and every
    entity of its table, local ones included, so a query links names exactly the way the documents were."""
    linker = make_linker(folder / "registry.jsonl", ner_model, ner_window)
    linker.use_entities({eid: Entity.from_dict(row) for eid, row in entities.items()})
    return linker
