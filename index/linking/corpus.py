"""The corpus pass: names outside the registry, resolved across documents once every document is linked.

Each document leaves *document clusters* (one per name it uses that the registry does not explain). This
pass joins them, working per block so the cost stays near-linear in the number of clusters:

1. **Same name** — clusters whose fullest names have the same transliterated key ("Gerhard Schröder",
   "Gerhard Schroder") are one entity.
2. **Spelling variants** — full names blocked by the phonetic skeletons of their first and last words
   ("Boris Yeltsin" / "Boris Eltsin", "Osama bin Laden" / "Usama bin Ladin") join when their string
   similarity passes :data:`VARIANT_MIN` and their types agree.
3. **Acronyms** defined in one document ("World Health Organization (WHO)") name the same entity in
   every other document that uses the acronym alone, when the corpus defines it one way.
4. **Territories** — names of one country or region ("U.K.", "United Kingdom") are one entity.
5. **Lone surnames** — a document that says only "Schroeder" (including one NER missed: the corpus
   rescans for surnames of the people it names in full) joins the full-name person with that surname who
   dominates the documents within :data:`SURNAME_WINDOW_DAYS` of it, if any does.

Every final entity gets an id that depends neither on document order nor on how NER typed its mentions:
``local:<slug>`` of its most used full name (two entities of one name, e.g. "Ford" the person and the
company, get a suffix from what tells them apart). Its type is the majority of its mentions' votes.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

from rapidfuzz import fuzz

from index.linking.context import ContextVectors, vector_scores
from index.linking.names import ascii_key, skeleton, slugify, surname_words
from index.linking.territories import territory_of
from index.records import ORG, OTHER, PERSON, PLACE, Entity, Link

if TYPE_CHECKING:
    from index.linking.candidates import RegistryIndex
    from index.linking.registry import Registry
    from index.linking.resolve import DocCluster, DocResult

VARIANT_MIN = 85.0  # rapidfuzz ratio (0-100) of two full names' ASCII keys for a spelling variant
VARIANT_SURE = 92.0  # above this, with the same first name, a type disagreement is NER noise
FIRST_NAME_MIN = 60.0  # and of their first names, so "John Smith" never meets "Jane Smith"
SURNAME_WINDOW_DAYS = 3 * 365  # a lone surname looks for full names within this many days of its document
SURNAME_DOMINANCE = 2.0  # the chosen full name has at least this many times the documents of the next
CONTEXT_WEIGHT = 0.5  # per registry entity an ambiguous candidate is known to appear with, here
_TYPE_ORDER = {PERSON: 0, ORG: 1, PLACE: 2, OTHER: 3}
_LOWER_WORD_RE = re.compile(r"\b[a-z]+\b")
_CAP_WORD_RE = re.compile(r"\b[A-Z][^\W\d_]+")


@dataclass
class CorpusOutcome:
    """What the pass decided: final ids (and the rule that decided a cross-document join) per document
    cluster, links it added (surnames NER missed), and the final local entities."""

    ids: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    added: dict[str, list[Link]] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # normalised name or alias → local id (queries)
    slugs: dict[str, str] = field(default_factory=dict)  # local id → its name's slug before a suffix
    lower: Counter[str] = field(default_factory=Counter)  # lower-case word → documents that use it so
    places: set[str] = field(default_factory=set)  # see _place_names


@dataclass
class PreviousPass:
    """What an incremental pass starts from: the previous pass's outcome, the previous results of the
    documents that changed or left (``stale``, with their texts), and the ids of the documents whose results
    in this pass are new (added or changed)."""

    outcome: CorpusOutcome
    stale: Sequence[DocResult]
    changed: set[str]


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _key(cl: DocCluster) -> str:
    return cl.key


@lru_cache(maxsize=1 << 16)
def _day(iso: str | None) -> int | None:
    try:
        return date.fromisoformat(iso[:10]).toordinal() if iso else None
    except ValueError:
        return None


def doc_key(doc_id: str) -> str:
    """The prefix of a document's provisional cluster ids: stable whatever the corpus order."""
    return hashlib.sha1(doc_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def resolve(
    results: Sequence[DocResult],
    registry: Registry,
    index: RegistryIndex,
    context: ContextVectors | None = None,
    previous: PreviousPass | None = None,
) -> CorpusOutcome:
    """Resolve every document cluster of ``results`` (the whole corpus). With ``previous``, only the blocks
    the changed documents touch are resolved again (:func:`_resolve_incremental`); the outcome is the one a
    full pass would give."""
    out = CorpusOutcome()
    _resolve_ambiguous(results, out, index, context)  # reads every link, cheaply: run whole each time
    clusters = {cl.pid: cl for r in results for cl in r.clusters.values()}
    out.places = _place_names(clusters.values(), index)
    if previous is None:
        out.lower = _lower_counts(r.text for r in results)
        _resolve_clusters(results, clusters, out, out.lower, out.places)
        for r in results:  # kept with each result for the next, incremental, pass
            _blocks(r)
    else:
        _resolve_incremental(results, clusters, out, previous)
    out.names = _alias_table(out.entities)
    return out


def _resolve_clusters(
    results: Sequence[DocResult],
    clusters: dict[str, DocCluster],
    out: CorpusOutcome,
    lower: Counter[str],
    places: set[str],
) -> None:
    """The joins, in order, over ``clusters`` (the corpus's, or whole blocks of it), then the naming.
    ``lower`` and ``places`` are the whole corpus's (see :func:`_lower_counts`, :func:`_place_names`)."""
    clusters = dict(sorted(clusters.items()))  # in pid order, which every step walks; the rescan adds some
    uf = _Union()
    for pid in clusters:
        uf.find(pid)
    _join_same_names(clusters, uf)
    _join_variants(clusters, uf)
    _join_acronyms(results, clusters, uf, out)
    _join_country_prefixed(clusters, uf, places)
    _join_territories(clusters, uf)
    surnames = _person_surnames(clusters, uf)  # the rescan adds one-word clusters only: these stay valid
    _rescan_surnames(results, clusters, uf, out, surnames, lower)
    _in_pid_order(clusters)
    _join_surnames(clusters, uf, out, surnames)
    _name_entities(clusters, uf, out)


def _in_pid_order(clusters: dict[str, DocCluster]) -> None:
    """Reorder ``clusters`` by pid, in place (the joins walk the dict instead of sorting its keys each)."""
    ordered = sorted(clusters.items())
    clusters.clear()
    clusters.update(ordered)


def _doc_of(pid: str) -> str:
    """The document of a document cluster: its pid's prefix (``~<doc_key>``, before the dot)."""
    return pid.partition(".")[0]


def _lower_counts(texts: Iterable[str]) -> Counter[str]:
    """Lower-case word → how many of ``texts`` use it (a word in lower case is not only a surname)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(_LOWER_WORD_RE.findall(text)))
    return counts


def _caps(r: DocResult) -> frozenset[str]:
    """ASCII keys of the document's capitalised words (computed once, kept with the result)."""
    if r.caps is None:
        r.caps = frozenset(ascii_key(w) for w in set(_CAP_WORD_RE.findall(r.text)) if not w.isupper())
    return r.caps


def _blocks(r: DocResult) -> dict[str, tuple[str, ...]]:
    """Every block each of the document's clusters is resolved in: two clusters that share none are never
    compared by any join, so the corpus's clusters fall into independent components of blocks.

    ``n:`` same name (and the type votes of one-word names), ``v:`` spelling-variant skeletons, ``a:``
    acronyms (used, defined, or defined for), ``o:`` an organisation's name, bare or after a place's,
    ``t:`` territory, ``s:`` surname (a full-name person's, a lone name's). Whether a word is a place's name
    is read from the whole corpus instead (:func:`_place_names`).
    """
    if r.blocks is not None:
        return r.blocks
    defined: dict[str, list[str]] = defaultdict(list)
    for acronym, target in r.acronyms:
        defined[target].append(f"a:{_acro(acronym)}")
    blocks: dict[str, tuple[str, ...]] = {}
    for pid, cl in r.clusters.items():
        key = _key(cl)
        keys = {f"n:{key}", f"s:{key}" if cl.single else "", *defined.get(pid, ())}
        words = key.split()
        if cl.single:
            keys.add(f"a:{_acro(cl.words[0])}" if cl.words[0].isupper() else "")
        else:
            keys.add(f"v:{skeleton(words[0])}:{skeleton(words[-1])}" if len(words) >= 2 else "")
            keys.update(f"a:{_acro(x)}" for x in cl.surfaces if x.isupper() and " " not in x)
            if cl.type in (ORG, OTHER):
                keys.add(f"o:{key}")
                keys.update(f"o:{rest}" for _, rest in _place_splits(cl))
            if cl.type == PERSON:
                keys.add(f"s:{_surname_key(cl)}")
        code = territory_of(" ".join(cl.words))
        keys.add(f"t:{code}" if code else "")
        blocks[pid] = tuple(sorted(k for k in keys if k))
    r.blocks = blocks
    return blocks


def _resolve_incremental(
    results: Sequence[DocResult],
    clusters: dict[str, DocCluster],
    out: CorpusOutcome,
    previous: PreviousPass,
) -> None:
    """Resolve again only the components of blocks that the changed documents touch; keep the previous
    outcome everywhere else. Equal to a full pass because no join compares clusters across components,
    and the only corpus-wide inputs — the lower-case vocabulary, the ambiguity decisions, the slugs that
    two entities share — are checked for change and their blocks resolved again when they changed."""
    prev = previous.outcome
    fresh = [r for r in results if r.doc_id in previous.changed]
    out.lower = prev.lower.copy()
    out.lower.subtract(_lower_counts(r.text for r in previous.stale))
    out.lower.update(_lower_counts(r.text for r in fresh))
    out.lower = +out.lower  # words no document uses any more leave
    blocks = {pid: keys for r in results for pid, keys in _blocks(r).items()}
    members: dict[str, list[str]] = defaultdict(list)
    for pid, keys in blocks.items():
        for k in keys:
            members[k].append(pid)
    seeds = _changed_blocks(previous, fresh, out, clusters, blocks, members)
    stale_keys = {doc_key(r.doc_id) for r in previous.stale} | {doc_key(d) for d in previous.changed}
    stale_pids = {p for p in prev.ids if _doc_of(p)[1:] in stale_keys}
    while True:
        pids, keys = _closure(seeds, members, blocks)
        sub = CorpusOutcome(ids={p: out.ids[p] for p in pids if p in out.ids},
                            rules={p: out.rules[p] for p in pids if p in out.rules})
        _resolve_clusters(results, {p: clusters[p] for p in sorted(pids)}, sub, out.lower, out.places)
        old_rescans = {lk.entity_id for links in prev.added.values() for lk in links
                       if f"s:{ascii_key(lk.text)}" in keys}
        dropped = pids | stale_pids | old_rescans
        dirty = {lid for p in dropped if (lid := prev.ids.get(p, "")) in prev.entities}  # their old entities
        bases = {sub.slugs[lid] for lid in sub.entities} | {prev.slugs.get(lid, lid) for lid in dirty}
        shared = {lid for lid, base in prev.slugs.items() if base in bases and lid not in dirty}
        if not shared:
            break
        seeds = keys | {k for p, lid in prev.ids.items() if lid in shared and p in blocks for k in blocks[p]}
    _merge(out, prev, sub, dropped, dirty)


def _changed_blocks(
    previous: PreviousPass,
    fresh: Sequence[DocResult],
    out: CorpusOutcome,
    clusters: dict[str, DocCluster],
    blocks: dict[str, tuple[str, ...]],
    members: dict[str, list[str]],
) -> set[str]:
    """The blocks a pass must resolve again: those of the clusters (and acronym definitions, and surnames
    the corpus found for them) of documents that changed or left; the surnames that the lower-case
    vocabulary now admits or refuses; the clusters whose ambiguity decision changed; the surnames that NER
    missed in the new documents."""
    prev = previous.outcome
    seeds: set[str] = set()
    for r in [*previous.stale, *fresh]:
        seeds.update(k for keys in _blocks(r).values() for k in keys)
        seeds.update(f"a:{_acro(acronym)}" for acronym, _ in r.acronyms)
    for r in previous.stale:
        seeds.update(f"s:{ascii_key(lk.text)}" for lk in prev.added.get(r.doc_id, ()))
    seeds.update(f"s:{w}" for w in set(prev.lower) ^ set(out.lower))
    decided = {p for p, rule in (*prev.rules.items(), *out.rules.items()) if rule == "corpus-context"}
    for p in decided:
        before = prev.ids.get(p) if prev.rules.get(p) == "corpus-context" else None
        now = out.ids.get(p) if out.rules.get(p) == "corpus-context" else None
        if before != now and p in blocks:
            seeds.update(blocks[p])
    for r in fresh:
        seeds.update(f"s:{k}" for k in _caps(r) if f"s:{k}" in members)
    flipped = prev.places ^ out.places  # organisations named after a place that is one now, or no longer
    if flipped:
        for pid, cl in clusters.items():
            if any(prefix in flipped for prefix, _ in _place_splits(cl)):
                seeds.update(blocks[pid])
    return seeds


def _closure(
    seeds: set[str], members: dict[str, list[str]], blocks: dict[str, tuple[str, ...]]
) -> tuple[set[str], set[str]]:
    """The clusters of every component of blocks that holds a seed, and those blocks."""
    pids: set[str] = set()
    keys: set[str] = set()
    todo = list(seeds)
    while todo:
        k = todo.pop()
        if k in keys:
            continue
        keys.add(k)
        for p in members.get(k, ()):
            if p not in pids:
                pids.add(p)
                todo.extend(blocks[p])
    return pids, keys


def _merge(out: CorpusOutcome, prev: CorpusOutcome, sub: CorpusOutcome, dropped: set[str],
           dirty: set[str]) -> None:
    """The previous outcome less what was resolved again, plus the new resolution (``out`` already holds
    this pass's ambiguity decisions for the whole corpus)."""
    for p, lid in prev.ids.items():
        if p not in dropped and p not in out.ids:
            out.ids[p] = lid
    for p, rule in prev.rules.items():
        if p not in dropped and rule != "corpus-context" and p not in out.rules:
            out.rules[p] = rule
    out.ids.update(sub.ids)
    out.rules.update(sub.rules)
    for doc_id, links in prev.added.items():
        kept = [lk for lk in links if lk.entity_id not in dropped]
        if kept:
            out.added[doc_id] = kept
    for doc_id, links in sub.added.items():
        out.added[doc_id] = sorted([*out.added.get(doc_id, []), *links], key=lambda lk: lk.start)
    out.entities = {lid: e for lid, e in prev.entities.items() if lid not in dirty}
    out.entities.update(sub.entities)
    out.slugs = {lid: b for lid, b in prev.slugs.items() if lid in out.entities}
    out.slugs.update(sub.slugs)


def _resolve_ambiguous(
    results: Sequence[DocResult], out: CorpusOutcome, index: RegistryIndex, context: ContextVectors | None
) -> None:
    """An alias several registry entities share, left undecided in its document, goes to the candidate whose
    known company — the registry entities it is linked beside elsewhere in the corpus — the document shares
    (:data:`CONTEXT_WEIGHT` per shared entity, added to the document's own score), and, with ``context``,
    whose known paragraphs and description the mention's paragraph is closest to
    (:func:`index.linking.context.vector_scores`)."""
    from index.linking.resolve import AMBIGUITY_THRESHOLD

    undecided = [
        (n, r, lk) for n, r in enumerate(results) for lk in r.links
        if lk.candidates and lk.entity_id.startswith("~")
    ]
    if not undecided:
        return
    company: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        ids = {lk.entity_id for lk in r.links if not lk.entity_id.startswith("~")}
        for eid in ids:
            company[eid].update(ids - {eid})
    first = {}  # the first mention of each undecided cluster speaks for it
    for n, _r, lk in undecided:
        first.setdefault(lk.entity_id, (n, lk.entity_id, lk.start, [c for c, _ in lk.candidates]))
    bonus = vector_scores(list(first.values()), results, index, context) if context is not None else {}
    for _n, r, lk in undecided:
        if lk.entity_id in out.ids:
            continue
        here = {x.entity_id for x in r.links if not x.entity_id.startswith("~")}
        extra = bonus.get(lk.entity_id, {})
        scored = sorted(
            ((s + CONTEXT_WEIGHT * sum(1 for e in here if company[c][e]) + extra.get(c, 0.0), c)
             for c, s in lk.candidates),
            key=lambda x: (-x[0], x[1]),
        )
        if scored[0][0] >= AMBIGUITY_THRESHOLD and (len(scored) == 1 or scored[0][0] > scored[1][0]):
            out.ids[lk.entity_id] = scored[0][1]
            out.rules[lk.entity_id] = "corpus-context"


def _join_same_names(clusters: dict[str, DocCluster], uf: _Union) -> None:
    first: dict[tuple[object, str, str], str] = {}
    for pid in clusters:
        cl = clusters[pid]
        k = (None if not cl.single else cl.type == PERSON, _key(cl), cl.sense)
        if k in first:
            uf.join(first[k], pid)
        else:
            first[k] = pid


def _join_variants(clusters: dict[str, DocCluster], uf: _Union) -> None:
    blocks: dict[tuple[str, str], list[str]] = defaultdict(list)
    for pid in clusters:
        cl = clusters[pid]
        if cl.single:
            continue
        words = [w for w in _key(cl).split()]
        if len(words) < 2:
            continue
        blocks[(skeleton(words[0]), skeleton(words[-1]))].append(pid)
    for members in blocks.values():
        reps = {uf.find(p): p for p in sorted(members)}  # one representative per current group
        roots = sorted(reps)
        for i, a in enumerate(roots):
            for b in roots[i + 1 :]:
                ca, cb = clusters[reps[a]], clusters[reps[b]]
                if _variants(ca, cb):
                    uf.join(a, b)


def _variants(a: DocCluster, b: DocCluster) -> bool:
    ka, kb = _key(a), _key(b)
    if ka == kb:
        return True
    score = fuzz.ratio(ka, kb)
    first_a, first_b = ka.split()[0], kb.split()[0]
    if score < VARIANT_MIN or fuzz.ratio(first_a, first_b) < FIRST_NAME_MIN:
        return False
    ta, tb = a.type, b.type  # the small NER model flips person/org: types must agree unless nearly equal
    return ta == tb or OTHER in (ta, tb) or (score >= VARIANT_SURE and first_a == first_b)


def _join_acronyms(
    results: Sequence[DocResult], clusters: dict[str, DocCluster], uf: _Union, out: CorpusOutcome
) -> None:
    defined: dict[str, set[str]] = defaultdict(set)
    for r in results:
        for acronym, target in r.acronyms:
            defined[_acro(acronym)].add(target)
    for pid in clusters:  # an acronym a document used for a full name ("US" of "United States")
        cl = clusters[pid]
        if cl.single:
            continue
        for surface in cl.surfaces:
            if surface.isupper() and " " not in surface and len(_acro(surface)) >= 2:
                defined.setdefault(_acro(surface) + "/used", set()).add(pid)
    groups: dict[str, set[str]] = {}  # acronym → the groups (or registry ids) it names, as last seen

    def named(key: str) -> set[str]:
        # Groups only merge, so the roots seen before, found again, are the roots now: each acronym's
        # users are walked once, not once per cluster that uses it ("US" in thousands of documents).
        if key not in groups:
            groups[key] = {uf.find(t) if t in clusters else t for t in defined.get(key, ())}
        groups[key] = {uf.find(t) if t in clusters else t for t in groups[key]}
        return groups[key]

    for pid in clusters:
        cl = clusters[pid]
        word = cl.words[0] if cl.single else ""
        if not word or not word.isupper():
            continue
        targets = named(_acro(word)) or named(_acro(word) + "/used")
        if len(targets) != 1:
            continue
        target = next(iter(targets))
        if target in clusters or target.startswith("~"):
            uf.join(target, pid)
            out.rules[pid] = "corpus-acronym"
        else:
            out.ids[pid] = target  # a registry entity
            out.rules[pid] = "corpus-acronym"


def _place_names(clusters: Iterable[DocCluster], index: RegistryIndex) -> set[str]:
    """Keys of the one-word names the corpus calls places, and of the registry's places."""
    return {_key(cl) for cl in clusters if cl.single and cl.type == PLACE} | index.places


def _join_country_prefixed(clusters: dict[str, DocCluster], uf: _Union, places: set[str]) -> None:
    """ "U.S. Securities and Exchange Commission" is the "Securities and Exchange Commission": an
    organisation's name after a place's name (one the corpus or the registry calls a place: ``places``) is
    the same organisation when the corpus names it bare."""
    orgs: dict[str, str] = {}
    for pid in clusters:
        cl = clusters[pid]
        if not cl.single and cl.type in (ORG, OTHER):
            orgs.setdefault(_key(cl), pid)
    for pid in clusters:
        cl = clusters[pid]
        if cl.single or cl.type not in (ORG, OTHER):
            continue
        for prefix, rest in _place_splits(cl):
            if prefix in places and rest in orgs:
                uf.join(orgs[rest], pid)
                break


def _place_splits(cl: DocCluster) -> list[tuple[str, str]]:
    """An organisation's name read as a place's name of one or two words and a name of two words or more:
    ("u s", "securities and exchange commission"), ...; none for other clusters."""
    if cl.single or cl.type not in (ORG, OTHER):
        return []
    words = _key(cl).split()
    return [(" ".join(words[:n]), " ".join(words[n:])) for n in (1, 2) if len(words) - n >= 2]


def _join_territories(clusters: dict[str, DocCluster], uf: _Union) -> None:
    """Names of one country or region ("U.K.", "UK", "United Kingdom"; "Holland", "Netherlands") are one
    entity, by the territory table (:mod:`index.linking.territories`); never a name the corpus calls a
    person ("Chad", "Jordan")."""
    first: dict[str, str] = {}
    for pid in clusters:
        cl = clusters[pid]
        if cl.sense or cl.type == PERSON or cl.types[PERSON] * 2 > sum(cl.types.values()):
            continue
        code = territory_of(" ".join(cl.words))
        if code is None:
            continue
        if code in first:
            uf.join(first[code], pid)
        else:
            first[code] = pid


def _acro(s: str) -> str:
    return "".join(c for c in s if c.isalpha()).upper()


def _person_surnames(clusters: dict[str, DocCluster], uf: _Union) -> dict[str, set[str]]:
    """ASCII surname key → roots of full-name person groups with that surname."""
    out: dict[str, set[str]] = defaultdict(set)
    for pid, cl in clusters.items():
        if cl.single or cl.types[PERSON] == 0 or cl.type != PERSON:
            continue
        out[_surname_key(cl)].add(uf.find(pid))
    return out


def _surname_key(cl: DocCluster) -> str:
    return ascii_key(" ".join(surname_words(list(cl.words))))


def _rescan_surnames(
    results: Sequence[DocResult],
    clusters: dict[str, DocCluster],
    uf: _Union,
    out: CorpusOutcome,
    by_surname: dict[str, set[str]],
    lower: Counter[str],
) -> None:
    """Surnames of the corpus's full-name people where NER missed them ("Schroeder said on Tuesday"): a
    capitalised word that is such a surname, never written in lower case anywhere in the corpus (so not
    "May" or "Brown" the word), outside every link. Each becomes a one-word document cluster, kept only if
    :func:`_join_surnames` then finds its person."""
    wanted = {k for k in by_surname if " " not in k and k not in lower}
    if not wanted:
        return
    from index.linking.resolve import DocCluster

    surname: dict[str, bool] = {}  # word → whether it reads as one of them (the corpus repeats its words)
    for r in results:
        if not _caps(r) & wanted:
            continue
        spans = [(lk.start, lk.end) for lk in r.links]
        for m in _CAP_WORD_RE.finditer(r.text):
            word = m.group()
            ok = surname.get(word)
            if ok is None:
                ok = not (word.isupper() or word.casefold() in lower or ascii_key(word) not in wanted)
                surname[word] = ok
            if not ok:
                continue
            s, e = m.span()
            if any(a < e and s < b for a, b in spans):
                continue
            pid = f"~{doc_key(r.doc_id)}.r{s}"
            clusters[pid] = DocCluster(pid, (word,), Counter({PERSON: 1}), Counter({word: 1}), date=r.date)
            uf.find(pid)
            out.added.setdefault(r.doc_id, []).append(Link(s, e, word, pid, PERSON, 0.6, "corpus-surname"))


def _join_surnames(
    clusters: dict[str, DocCluster], uf: _Union, out: CorpusOutcome, by_surname: dict[str, set[str]],
) -> None:
    days: dict[str, list[int | None]] = defaultdict(list)  # group root → its documents' days
    docs_of: dict[str, set[str]] = defaultdict(set)
    for pid, cl in clusters.items():
        root, doc = uf.find(pid), _doc_of(pid)
        if doc not in docs_of[root]:
            docs_of[root].add(doc)
            days[root].append(_day(cl.date))
    votes: dict[str, Counter[str]] = defaultdict(Counter)  # corpus-wide type votes of one-word names
    for cl in clusters.values():
        if cl.single:
            votes[_key(cl)].update(cl.types)
    not_people = {key for key, v in votes.items() if v and _majority(v) not in (PERSON, OTHER)}
    near_days = {root: _Days(values) for root, values in days.items()}
    joined: list[tuple[str, str]] = []
    decided: dict[tuple[str, int | None, str | None], str | None] = {}  # lone surnames of one day agree
    for pid, cl in clusters.items():
        if not cl.single or cl.words[0].isupper():
            continue
        key = _key(cl)
        if key in not_people and cl.types[PERSON] == 0:
            continue  # "Dell" the company, typed org wherever it stands alone
        own, day = uf.find(pid), _day(cl.date)
        people = by_surname.get(key, ())
        asked = (key, day, own if own in people else None)
        if asked not in decided:
            decided[asked] = _dominant([c for c in people if c != own], day, near_days)
        best = decided[asked]
        if best is not None:
            joined.append((pid, best))
    for pid, root in joined:
        uf.join(root, pid)
        out.rules[pid] = "corpus-surname"
    for doc_id, links in list(out.added.items()):  # a rescanned surname nobody claims is no mention
        kept = [lk for lk in links if out.rules.get(lk.entity_id) == "corpus-surname"]
        if kept:
            out.added[doc_id] = kept
        else:
            del out.added[doc_id]
    kept = {lk.entity_id for links in out.added.values() for lk in links}
    for pid in [p for p in clusters if ".r" in p and p not in kept]:
        del clusters[pid]


class _Days:
    """The days of a group's documents (None: undated), sorted once: how many lie within
    ``SURNAME_WINDOW_DAYS`` of a day is two binary searches, not a pass over them for every lone surname
    that asks (a common surname's group is asked once per document that uses the surname alone)."""

    def __init__(self, values: list[int | None]):
        self.undated = sum(1 for d in values if d is None)
        self.dated = sorted(d for d in values if d is not None)

    def near(self, day: int | None) -> int:
        """How many of the days are undated or within the window of ``day`` (all of them when ``day`` is
        None)."""
        if day is None:
            return self.undated + len(self.dated)
        lo = bisect.bisect_left(self.dated, day - SURNAME_WINDOW_DAYS)
        return self.undated + bisect.bisect_right(self.dated, day + SURNAME_WINDOW_DAYS) - lo


_NO_DAYS = _Days([])


def _dominant(cands: list[str], day: int | None, days: dict[str, _Days]) -> str | None:
    scored = []
    for c in cands:
        near = days.get(c, _NO_DAYS).near(day)
        if near:
            scored.append((near, c))
    if not scored:
        return None
    scored.sort(key=lambda x: (-x[0], x[1]))
    if len(scored) > 1 and scored[0][0] < SURNAME_DOMINANCE * scored[1][0]:
        return None
    return scored[0][1]


def _majority(types: Counter[str]) -> str:
    return min(types.items(), key=lambda kv: (-kv[1], _TYPE_ORDER.get(kv[0], 9)))[0]


def _name_entities(clusters: dict[str, DocCluster], uf: _Union, out: CorpusOutcome) -> None:
    groups: dict[str, list[DocCluster]] = defaultdict(list)
    for pid, cl in clusters.items():
        if pid in out.ids:  # joined a registry entity
            continue
        groups[uf.find(pid)].append(cl)
    named: list[tuple[str, str, str, list[DocCluster], set[str]]] = []
    for members in groups.values():
        typ, words, aliases = _group_name(members)
        name = " ".join(words)
        team = "-team" if all(cl.sense == "team" for cl in members) else ""  # not the place it is named for
        named.append((f"local:{slugify(ascii_key(name))}{team}", name, typ, members, aliases))
    # Two entities, one name (different people): the one named first (earliest date, then name and
    # document) keeps the bare id, each other one gets a suffix from its own first mention. A document added
    # later therefore renames nobody unless it is dated before everything the corpus held.
    firsts = {id(members): min((cl.date or "9999", _key(cl), cl.pid) for cl in members)
              for _, _, _, members, _ in named}
    earliest: dict[str, tuple[str, str, str]] = {}
    for lid, _, _, members, _ in named:
        earliest[lid] = min(earliest.get(lid, firsts[id(members)]), firsts[id(members)])
    for lid, name, typ, members, aliases in sorted(named, key=lambda x: x[0]):
        base = lid
        first = firsts[id(members)]
        if first != earliest[lid]:
            lid = f"{lid}-{hashlib.sha1('|'.join(first).encode()).hexdigest()[:6]}"
        for cl in members:
            out.ids[cl.pid] = lid
        out.entities[lid] = Entity(lid, name, typ, tuple(sorted(a for a in aliases if a != name)))
        out.slugs[lid] = base


def _group_name(members: list[DocCluster]) -> tuple[str, tuple[str, ...], set[str]]:
    """A group's type (the majority of its mentions' votes), its fullest most used name, and every surface
    form it was written in."""
    if len(members) == 1:  # most local entities are one document's
        cl = members[0]
        return (_majority(cl.types) if cl.types else OTHER), cl.words, set(cl.surfaces)
    types: Counter[str] = Counter()
    full: dict[tuple[str, ...], int] = {}
    aliases: set[str] = set()
    for cl in members:
        for t, n in cl.types.items():
            types[t] += n
        aliases.update(cl.surfaces)
        full[cl.words] = full.get(cl.words, 0) + (sum(cl.surfaces.values()) or 1)
    typ = _majority(types) if types else OTHER
    words = min(full.items(), key=lambda kv: (-(len(kv[0]) > 1), -kv[1], -len(kv[0]), kv[0]))[0]
    return typ, words, aliases


def _alias_table(entities: dict[str, Entity]) -> dict[str, str]:
    """Normalised name or alias → the local entity a query means by it (the first by id that has it)."""
    names: dict[str, str] = {}
    for lid in sorted(entities):
        ent = entities[lid]
        for a in (ent.name, *ent.aliases):
            names.setdefault(ascii_key(a), lid)
    return names


def relink(link: Link, outcome: CorpusOutcome) -> Link:
    """``link`` with its final id (and the corpus rule that joined its cluster, if any)."""
    eid = outcome.ids.get(link.entity_id, link.entity_id)
    rule = outcome.rules.get(link.entity_id)
    if rule and link.rule.startswith("local"):
        return replace(link, entity_id=eid, rule=rule, confidence=0.7)
    return replace(link, entity_id=eid) if eid != link.entity_id else link
