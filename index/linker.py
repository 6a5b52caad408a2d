"""Entity linking: mentions → registry entities or stable ``local:<type>:<slug>`` clusters.

A cascade, one method per rule; the first rule that decides wins and stamps ``rule`` and ``confidence``:

1. ``title``       full role title from the registry ("Russian foreign minister") → its unique holder
2. ``alias``       exact registry name/alias ("Lavrov", "U.S.")           (``possessive`` when followed by 's)
3. ``variant``     same normalised / transliteration key ("Zelenskiy", "Sergey Lavrov", "US")
4. ``acronym``     all-caps initials of a longer name in the document, or (unique) in the registry
5. ``surname``     a bare surname / short org name inheriting a fuller name in the same document
                   (nearest earlier one, else nearest later one), else a unique registry surname
6. ``local``       out-of-registry name → ``local:<type>:<slug>`` shared across documents by normalised name
7. ``local-surname`` a bare person token nothing explains → its own surname-scoped id, low confidence
8. ``title`` (generic) "the foreign minister" → the one entity named in the document holding such a title

Ties break on entity id, so the output is deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from index.entities import Registry, normalize_name, slugify, tokenize, variant_key
from index.ner import _CONNECTORS, ORG_SUFFIXES, Detector, Gazetteer, _nationality_keys, generic_titles
from index.quotes import extract_quotes
from index.records import ORG, OTHER, PERSON, PLACE, Document, Entity, Link, Mention, Quote

HONORIFICS = frozenset(
    "mr mrs ms miss dr sir dame lord lady president senator sen rep gov governor judge gen general "
    "king queen prince princess pope chancellor minister premier mayor rev father st".split()
)

CONF = {
    "title": 0.9,
    "alias": 1.0,
    "possessive": 1.0,
    "variant": 0.85,
    "acronym": 0.8,
    "surname": 0.9,
    "surname-registry": 0.7,
    "local": 0.6,
    "local-surname": 0.3,
    "title-generic": 0.75,
}


@dataclass
class _Local:
    id: str
    name: str
    type: str
    aliases: set[str] = field(default_factory=set)
    types: Counter[str] = field(default_factory=Counter)  # NER votes; the entity table reports the majority


@dataclass
class _Pending:
    m: Mention
    entity_id: str | None = None
    rule: str = ""
    conf: float = 0.0
    type: str = OTHER


def _words(s: str) -> list[str]:
    return list(_words_cached(s))


@lru_cache(maxsize=65_536)
def _words_cached(s: str) -> tuple[str, ...]:
    # The surname rule re-tokenises every linked mention for each unresolved one: cache by surface.
    return tuple(t.text for t in tokenize(s))


def _core_words(m: Mention) -> list[str]:
    """Words of a mention without honorifics and (for orgs) corporate suffixes."""
    return list(_core_words_cached(m.text))


@lru_cache(maxsize=65_536)
def _core_words_cached(text: str) -> tuple[str, ...]:
    w = _words_cached(text)
    while len(w) > 1 and w[0].lower().rstrip(".") in HONORIFICS:
        w = w[1:]
    while len(w) > 1 and w[-1].lower().rstrip(".") in ORG_SUFFIXES:
        w = w[:-1]
    return w


def _is_acronym(s: str) -> bool:
    letters = [c for c in s if c.isalpha()]
    return 2 <= len(letters) <= 6 and all(c.isupper() for c in letters) and " " not in s.strip()


def _initials(words: list[str]) -> str:
    return "".join(w[0] for w in words if w and w.lower() not in _CONNECTORS and w[0].isalpha()).upper()


def _add(index: dict[str, list[str]], key: str, eid: str) -> None:
    if key and eid not in index.setdefault(key, []):
        index[key].append(eid)
        index[key].sort()


class Linker:
    """Links documents and queries to a :class:`Registry`, growing ``local:`` clusters as it goes."""

    def __init__(self, registry: Registry, detector: Detector, n_process: int = 1, batch_size: int = 32):
        self.registry = registry
        self.detector = detector
        self.n_process = n_process
        self.batch_size = batch_size
        self._locals: dict[tuple[bool | None, str], str] = {}
        self._local_entities: dict[str, _Local] = {}
        self._build_indexes()

    # ------------------------------------------------------------ indexes
    def _build_indexes(self) -> None:
        reg = self.registry
        self._exact: dict[str, list[str]] = {}
        self._norm: dict[str, list[str]] = {}
        self._variant: dict[str, list[str]] = {}
        self._surname: dict[str, list[str]] = {}
        self._acro: dict[str, list[str]] = {}
        self._titles: dict[str, list[str]] = {}
        self._generic: dict[str, list[str]] = {}
        nat = _nationality_keys(reg)
        for eid in sorted(reg.entities):
            ent = reg.entities[eid]
            for s in (ent.name, *ent.aliases):
                _add(self._exact, s, eid)
                _add(self._norm, normalize_name(s), eid)
                _add(self._variant, variant_key(s), eid)
                w = _words(s)
                if ent.type == PERSON and len(w) >= 2:
                    _add(self._surname, normalize_name(w[-1]), eid)
                if len(w) >= 2:
                    _add(self._acro, _initials(w), eid)
            for t in ent.titles:
                _add(self._titles, normalize_name(t), eid)
                for g in generic_titles(t, nat):
                    _add(self._generic, g, eid)
        self._query_gaz = Gazetteer.from_registry(reg)

    # ------------------------------------------------------------ public API
    def link_document(self, doc: Document) -> tuple[list[Link], list[Quote]]:
        return self._link_text(doc.text, self.detector.detect(doc.text))

    def link_documents(self, docs: Iterable[Document]) -> list[tuple[list[Link], list[Quote]]]:
        """Batch version of :meth:`link_document` (spaCy ``nlp.pipe``); documents are linked in order."""
        docs = list(docs)
        mentions = self.detector.detect_many(
            [d.text for d in docs], batch_size=self.batch_size, n_process=self.n_process
        )
        return [self._link_text(d.text, ms) for d, ms in zip(docs, mentions, strict=True)]

    def link_query(self, text: str) -> list[Link]:
        """Link names in a short query (no document context, nothing new is created). Case-insensitive."""
        links = self._query_gazetteer(text)
        if not links and any(c.isupper() for c in text):
            for m in self.detector.detect(text):
                p = self._readonly(m)
                if p.entity_id:
                    links.append(self._to_link(p))
        return links

    def entities(self) -> dict[str, Entity]:
        """Registry entities plus every local cluster seen so far (merge/reject/rename decisions applied)."""
        out = dict(self.registry.entities)
        for lid in sorted(self._local_entities):
            loc = self._local_entities[lid]
            eid = self.registry.resolve(lid)
            if eid in self.registry.rejected_ids:
                continue
            if eid in out:
                if eid != lid and eid in self.registry.entities:
                    continue
                prev = out[eid]
                extra = tuple(sorted(a for a in loc.aliases if a not in prev.aliases and a != prev.name))
                out[eid] = replace(prev, aliases=prev.aliases + extra)
                continue
            name = self.registry.renames.get(eid, loc.name)
            typ = min(loc.types.items(), key=lambda kv: (-kv[1], kv[0]))[0] if loc.types else loc.type
            out[eid] = Entity(eid, name, typ, tuple(sorted(a for a in loc.aliases if a != name)))
        return out

    # ------------------------------------------------------------ document cascade
    def _link_text(self, text: str, mentions: list[Mention]) -> tuple[list[Link], list[Quote]]:
        pend = [_Pending(m, type=m.type) for m in mentions]
        generic: list[_Pending] = []
        for p in pend:  # pass 1: registry rules
            if p.m.source == "title":
                if not self._rule_title(p):
                    generic.append(p)
                continue
            self._rule_alias(p, text) or self._rule_variant(p)
        # pass 2: the rest, longest names first, so that "Al-Maliki", "Ford" or "EU" find the fuller name
        # ("Nouri al-Maliki", "Gerald R. Ford", "European Union") already resolved in this document.
        rest = [p for p in pend if p.entity_id is None and p.m.source != "title"]
        rest.sort(key=lambda p: (-len(_core_words(p.m)), p.m.start))
        for p in rest:
            known = [q for q in pend if q.entity_id is not None and q.m.source != "title"]
            (
                self._rule_acronym(p, known)
                or self._rule_surname(p, known)
                or self._rule_registry_surname(p)
                or self._rule_local(p)
            )
        in_doc = {p.entity_id for p in pend if p.entity_id}
        for p in generic:  # pass 4: generic titles need their holder named in the document
            self._rule_generic_title(p, in_doc)
        links = []
        for p in pend:
            if not p.entity_id:
                continue
            eid = self.registry.resolve(p.entity_id)
            if eid in self.registry.rejected_ids:
                continue
            p.entity_id = eid
            links.append(self._to_link(p))
        return links, extract_quotes(text, links)

    def _to_link(self, p: _Pending) -> Link:
        assert p.entity_id is not None
        return Link(p.m.start, p.m.end, p.m.text, p.entity_id, p.type, round(p.conf, 3), p.rule)

    def _set(self, p: _Pending, eid: str, rule: str, conf: float | None = None) -> bool:
        p.entity_id, p.rule = eid, rule
        p.conf = CONF.get(rule, 0.5) if conf is None else conf
        ent = self.registry.entities.get(eid)
        loc = self._local_entities.get(eid)
        p.type = ent.type if ent else (loc.type if loc else p.m.type)
        if rule in ("surname", "surname-registry") and p.type != PERSON and ent is None and loc is None:
            p.type = PERSON
        return True

    @staticmethod
    def _pick(ids: list[str]) -> tuple[str, float]:
        """Deterministic choice among candidates; ambiguity lowers confidence."""
        return ids[0], (1.0 if len(ids) == 1 else 0.5)

    # ------------------------------------------------------------ rules
    def _rule_title(self, p: _Pending) -> bool:
        ids = self._titles.get(normalize_name(p.m.text))
        if ids and len(ids) == 1:
            return self._set(p, ids[0], "title")
        return False

    def _rule_alias(self, p: _Pending, text: str) -> bool:
        ids = self._exact.get(p.m.text)
        if not ids:
            return False
        eid, k = self._pick(ids)
        poss = text[p.m.end : p.m.end + 2] in ("'s", "’s")
        return self._set(p, eid, "possessive" if poss else "alias", CONF["alias"] * k)

    def _rule_variant(self, p: _Pending) -> bool:
        core = " ".join(_core_words(p.m))
        for key in (normalize_name(p.m.text), normalize_name(core), variant_key(p.m.text), variant_key(core)):
            ids = self._norm.get(key) or self._variant.get(key)
            if ids:
                if len(key) <= 3 and not p.m.text.isupper():
                    continue  # "us" in running text is a pronoun, not the U.S.
                eid, k = self._pick(ids)
                return self._set(p, eid, "variant", CONF["variant"] * k)
        return False

    def _rule_acronym(self, p: _Pending, known: list[_Pending]) -> bool:
        if not _is_acronym(p.m.text):
            return False
        acro = "".join(c for c in p.m.text if c.isalpha())
        doc = sorted(
            {
                q.entity_id
                for q in known
                if q.entity_id and len(_core_words(q.m)) >= 2 and _initials(_core_words(q.m)) == acro
            }
        )
        if doc:
            return self._set(p, doc[0], "acronym", CONF["acronym"] * (1.0 if len(doc) == 1 else 0.6))
        ids = self._acro.get(acro)
        if ids and len(ids) == 1:
            return self._set(p, ids[0], "acronym", 0.7)
        return False

    def _rule_surname(self, p: _Pending, known: list[_Pending]) -> bool:
        w = [x.casefold() for x in _core_words(p.m)]
        if not w:
            return False
        cands: list[tuple[int, int, str]] = []  # (rank, distance, entity id): nearest earlier surname wins
        for q in known:
            if q is p or not q.entity_id:
                continue
            qw = [x.casefold() for x in _core_words(q.m)]
            if len(qw) <= len(w) and len(_words(q.m.text)) <= len(w):
                continue  # not a longer name ("Paxar Corp" is longer than "Paxar" though its core is equal)
            if q.type == PERSON and qw[-len(w) :] == w:
                rank = 0  # surname ("Lavrov", "al-Maliki")
            elif q.type == PERSON and qw[: len(w)] == w and p.m.type != PLACE:
                rank = 2  # first name ("Saddam"): weaker evidence
            elif q.type in (ORG, OTHER) and qw[: len(w)] == w and p.m.type != PLACE:
                rank = 0  # "Paxar" of "Paxar Corp"; never "U.S." of "U.S. Customs"
            else:
                continue
            later = 0 if q.m.end <= p.m.start else 1
            cands.append((rank + later, abs(p.m.start - q.m.start), q.entity_id))
        if not cands:
            return False
        eid = min(cands)[2]
        self._set(p, eid, "surname")
        loc = self._local_entities.get(eid)
        if loc is not None:
            loc.aliases.add(p.m.text)
        return True

    def _rule_registry_surname(self, p: _Pending) -> bool:
        w = _core_words(p.m)
        if len(w) != 1:
            return False
        ids = self._surname.get(normalize_name(w[0]))
        if ids and len(ids) == 1:
            return self._set(p, ids[0], "surname-registry")
        return False

    def _rule_local(self, p: _Pending) -> bool:
        words = _core_words(p.m)
        if p.m.type == PERSON and len(words) >= 3:  # "Gerald R. Ford" clusters with "Gerald Ford"
            words = [w for w in words if len(w.rstrip(".")) > 1] or words
        key_text = normalize_name(" ".join(words))
        if not key_text or not any(c.isalpha() for c in key_text):
            return False
        typ = p.m.type
        single_person = typ == PERSON and len(words) == 1
        # Multi-word names cluster on the name alone (the small NER model flips PERSON/ORG between documents);
        # a single word keeps person apart from the rest ("Ford" the president vs "Ford" the carmaker).
        key = (typ == PERSON if len(words) == 1 else None, key_text)
        lid = self._locals.get(key)
        if lid is None:
            lid = f"local:{typ}:{slugify(key_text)}"
            n = 2
            while lid in self._local_entities:
                lid = f"local:{typ}:{slugify(key_text)}-{n}"
                n += 1
            self._locals[key] = lid
            self._local_entities[lid] = _Local(lid, " ".join(words), typ)
        loc = self._local_entities[lid]
        loc.aliases.add(p.m.text)
        loc.types[typ] += 1
        return self._set(p, lid, "local-surname" if single_person else "local")

    def _rule_generic_title(self, p: _Pending, in_doc: set[str]) -> bool:
        ids = self._generic.get(normalize_name(p.m.text), []) + self._titles.get(normalize_name(p.m.text), [])
        cands = sorted({i for i in ids if i in in_doc})
        if len(cands) == 1:
            return self._set(p, cands[0], "title-generic")
        return False

    # ------------------------------------------------------------ queries
    def _query_gazetteer(self, text: str) -> list[Link]:
        toks = tokenize(text)
        norms = [t.norm for t in toks]
        found: list[tuple[int, int, str, str, float, str]] = []
        locals_by_name: dict[str, str] = {}
        for (_, name), lid in sorted(self._locals.items(), key=lambda kv: (kv[0][1], str(kv[0][0]))):
            locals_by_name.setdefault(name, lid)
        max_n = max(self._query_gaz.max_len, 4)
        for i in range(len(toks)):
            for n in range(min(max_n, len(toks) - i), 0, -1):
                key = " ".join(norms[i : i + n])
                s, e = toks[i].start, toks[i + n - 1].end
                hit = self._query_key(key, text[s:e], locals_by_name, i > 0 and norms[i - 1] == "the")
                if hit:
                    found.append((s, e, *hit))
                    break
        chosen: list[tuple[int, int, str, str, float, str]] = []
        for c in sorted(found, key=lambda c: (-(c[1] - c[0]), c[0])):
            if all(c[1] <= o[0] or c[0] >= o[1] for o in chosen):
                chosen.append(c)
        out = []
        for s, e, eid, rule, conf, typ in sorted(chosen):
            out.append(Link(s, e, text[s:e], eid, typ, conf, rule))
        return out

    def _query_key(
        self, key: str, surface: str, locals_by_name: dict[str, str], after_the: bool
    ) -> tuple[str, str, float, str] | None:
        def typ(eid: str) -> str:
            ent = self.registry.entities.get(eid) or self._local_entities.get(eid)
            return ent.type if ent else OTHER

        if len(key) <= 3 and not any(c.isupper() for c in surface):
            return None  # "us", "eu" typed lowercase are words, not names
        for table, rule in ((self._titles, "title"), (self._norm, "alias"), (self._variant, "variant")):
            ids = table.get(key if table is not self._variant else variant_key(surface))
            if ids and len(ids) == 1:
                return ids[0], rule, CONF[rule], typ(ids[0])
        ids = self._generic.get(key)
        if ids and len(ids) == 1 and after_the:
            return ids[0], "title-generic", CONF["title-generic"], typ(ids[0])
        ids = self._surname.get(key)
        if ids and len(ids) == 1:
            return ids[0], "surname-registry", CONF["surname-registry"], typ(ids[0])
        lid = locals_by_name.get(key)
        if lid:
            eid = self.registry.resolve(lid)
            return eid, "local", CONF["local"], typ(lid)
        return None

    def _readonly(self, m: Mention) -> _Pending:
        p = _Pending(m, type=m.type)
        if m.source == "title":
            self._rule_title(p)
        else:
            self._rule_alias(p, "") or self._rule_variant(p) or self._rule_registry_surname(p)
        if p.entity_id is None:
            key = normalize_name(" ".join(_core_words(m)))
            lid = self._locals.get((m.type == PERSON if len(key.split()) == 1 else None, key))
            if lid:
                self._set(p, self.registry.resolve(lid), "local")
        return p


__all__ = ["Linker", "CONF", "PLACE"]


def make_linker(entities_file: str | Path | None, ner_model: str, ner_window: int | None = None) -> Linker:
    """The linker over the registry at ``entities_file`` (None, or no such file: an empty registry)."""
    registry = Registry.load(entities_file) if entities_file and Path(entities_file).is_file() else Registry()
    return Linker(registry, Detector(registry=registry, model=ner_model, window=ner_window))
