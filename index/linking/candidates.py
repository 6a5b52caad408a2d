"""Candidate generation: the registry entities a mention could name, looked up by every key a name has.

One alias may name several entities ("Ford", "Victoria"): lookups return every candidate, and the resolver
chooses among them in context. Titles come with the period their holder held them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from index.linking.names import ascii_key, normalize_name, surname_words, tokenize, variant_key
from index.linking.registry import Registry
from index.records import PERSON, PLACE, Entity, Title

# Words before a person's name that are not part of it. Not "General" (Motors, Electric) nor "St" (Louis).
HONORIFICS = frozenset(
    "mr mrs ms miss dr sir dame lord lady president senator sen rep gov governor judge "
    "king queen prince princess pope chancellor minister premier mayor rev father manager coach".split()
)
ORG_SUFFIXES = frozenset(
    "corp corporation inc incorporated co company ltd limited plc llc group holdings ag sa nv bv gmbh".split()
)
CONNECTORS = frozenset("of the and for de da di du van von der den al bin la le del y &".split())


@lru_cache(maxsize=1 << 16)
def words_of(text: str) -> tuple[str, ...]:
    return tuple(t.text for t in tokenize(text))


@lru_cache(maxsize=1 << 16)
def core_words(text: str) -> tuple[str, ...]:
    """Words of a name without honorifics ("Mr", "President") and company legal forms ("NV Philips",
    "Montedison SPA", "Merck and Co Inc": the `fingerprints` table of company types), nor the connectors
    those leave at an edge."""
    w = words_of(text)
    while len(w) > 1 and w[0].lower().rstrip(".") in HONORIFICS:
        w = w[1:]
    w = _without_org_types(w)
    while len(w) > 1 and w[-1].lower().rstrip(".") in ORG_SUFFIXES:
        w = w[:-1]
    while len(w) > 1 and w[-1].lower() in CONNECTORS:
        w = w[:-1]
    while len(w) > 1 and w[0].lower() in CONNECTORS:
        w = w[1:]
    return w


def _without_org_types(words: tuple[str, ...]) -> tuple[str, ...]:
    """The run of ``words`` that `fingerprints.remove_types` keeps (it lowercases and transliterates, so
    the original words are matched back by their ASCII keys)."""
    from fingerprints import remove_types

    kept = (remove_types(" ".join(words)) or "").split()
    if not kept or len(kept) >= len(words):
        return words
    keys = [ascii_key(x) for x in words]
    want = [ascii_key(x) for x in kept]
    for i in range(len(words) - len(want) + 1):
        if keys[i : i + len(want)] == want:
            if any(
                len(w) > 4 for w in words[:i]
            ):  # a legal form leads only as an abbreviation ("NV", "PJSC")
                return words[: i + len(want)]  # not "International" of "International Atomic Energy Agency"
            return words[i : i + len(want)]
    return words


def is_acronym(s: str) -> bool:
    letters = [c for c in s if c.isalpha()]
    return 2 <= len(letters) <= 6 and all(c.isupper() for c in letters) and " " not in s.strip()


def initials(words: tuple[str, ...] | list[str], connectors: bool = False) -> str:
    """ "World Health Organization" → "WHO"; with ``connectors`` "Bank of Japan" → "BOJ"."""
    return "".join(
        w[0] for w in words if w and w[0].isalpha() and (connectors or w.lower() not in CONNECTORS)
    ).upper()


def acronym_of(acronym: str, words: tuple[str, ...] | list[str]) -> bool:
    """Whether ``acronym`` abbreviates the name ``words``: its initials with or without the connectors'
    ("WHO", "BOJ" for Bank of Japan), the leading initials of a name with legal forms after its core ("GEC"
    for General Electric Co Plc), or the capitals of a one-word name in order ("VW" for Volkswagen)."""
    letters = "".join(c for c in acronym if c.isalpha()).upper()
    if len(letters) < 2:
        return False
    if len(words) == 1:
        word = words[0].upper()
        return (
            len(letters) >= 2
            and word[0] == letters[0]
            and _in_order(letters[1:], word[1:])
            and (len(word) > len(letters) + 2)
        )
    full = initials(words)
    return letters in (full, initials(words, connectors=True)) or (
        len(letters) >= 3 and full.startswith(letters)
    )


def defines_abbreviation(short: str, long: str) -> bool:
    """Schwartz & Hearst's test (PSB 2003) for a definition "long (short)": every letter or digit of
    ``short`` occurs in ``long`` in order, matched right to left, and its first one starts a word of
    ``long`` ("W.R. Grace (GRA)", "Bank of Japan (BOJ)"). Only for a definition in parentheses: free-standing
    abbreviations go by :func:`acronym_of`."""
    chars = [c.lower() for c in short if c.isalnum()]
    if len(chars) < 2 or not short[:1].isalpha():
        return False
    li = len(long) - 1
    for si in range(len(chars) - 1, -1, -1):
        c = chars[si]
        while li >= 0 and (long[li].lower() != c or (si == 0 and li > 0 and long[li - 1].isalnum())):
            li -= 1
        if li < 0:
            return False
        li -= 1
    return True


def _in_order(needle: str, hay: str) -> bool:
    it = iter(hay)
    return all(c in it for c in needle)


@dataclass(frozen=True)
class TitleHolder:
    entity_id: str
    title: Title


def _add(index: dict[str, list[str]], key: str, eid: str) -> None:
    if key and eid not in index.setdefault(key, []):
        index[key].append(eid)
        index[key].sort()


def nationality_keys(reg: Registry) -> set[str]:
    keys: set[str] = set()
    for ent in reg.entities.values():
        if ent.type == PLACE:
            keys.update(normalize_name(x) for x in (ent.name, *ent.aliases))
    return keys


def generic_titles(title: str, nationality: set[str]) -> list[str]:
    """Titles stripped of their nationality: "Russian foreign minister" → ["foreign minister"],
    "President of Russia" → ["president"]. A generic title links only to a holder named in the document."""
    toks = normalize_name(title).split()
    out = []
    for i in range(1, min(4, len(toks))):
        if " ".join(toks[:i]) in nationality:
            out.append(" ".join(toks[i:]))
    if "of" in toks:
        k = toks.index("of")
        if k > 0 and " ".join(toks[k + 1 :]) in nationality | {"the " + n for n in nationality}:
            out.append(" ".join(toks[:k]))
    return [g for g in out if g and g != normalize_name(title)]


class RegistryIndex:
    """Lookup tables over a :class:`Registry`: exact names, normalised and transliteration keys, surnames,
    acronyms, and (dated) titles. Every lookup returns all candidates, sorted by id."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.exact: dict[str, list[str]] = {}
        self.norm: dict[str, list[str]] = {}
        self.variant: dict[str, list[str]] = {}
        self.surname: dict[str, list[str]] = {}
        self.acro: dict[str, list[str]] = {}
        self.titles: dict[str, list[TitleHolder]] = {}
        self.generic: dict[str, list[TitleHolder]] = {}
        self.places: set[str] = set()  # normalised names of the registry's places
        nat = nationality_keys(registry)
        for eid in sorted(registry.entities):
            ent = registry.entities[eid]
            for s in (ent.name, *ent.aliases):
                _add(self.exact, s, eid)
                _add(self.norm, normalize_name(s), eid)
                if ent.type == PLACE:
                    self.places.add(normalize_name(s))
                _add(self.variant, variant_key(s), eid)
                w = core_words(s)
                if ent.type == PERSON and len(w) >= 2:
                    _add(self.surname, normalize_name(" ".join(surname_words(list(w)))), eid)
                if len(w) >= 2:
                    _add(self.acro, initials(w), eid)
            for t in ent.titles:
                self.titles.setdefault(normalize_name(t.title), []).append(TitleHolder(eid, t))
                for g in generic_titles(t.title, nat):
                    self.generic.setdefault(g, []).append(TitleHolder(eid, t))

    def entity(self, eid: str) -> Entity | None:
        return self.registry.entities.get(eid)

    def type_of(self, eid: str) -> str | None:
        ent = self.registry.entities.get(eid)
        return ent.type if ent else None

    def by_name(self, surface: str) -> tuple[list[str], str]:
        """Entities ``surface`` names, and how: ``alias`` (exact), ``variant`` (normalised or transliterated
        key of the name or of its core without honorifics/suffixes). Short lowercase keys never match
        ("us" in running text is a pronoun, not the U.S.)."""
        ids = self.exact.get(surface)
        if ids:
            return ids, "alias"
        core = " ".join(core_words(surface))
        for key in (normalize_name(surface), normalize_name(core), variant_key(surface), variant_key(core)):
            ids = self.norm.get(key) or self.variant.get(key)
            if ids and (len(key) > 3 or surface.isupper()):
                return ids, "variant"
        return [], ""

    def holders(self, surface: str, generic: bool = False) -> list[TitleHolder]:
        table = self.generic if generic else self.titles
        return table.get(normalize_name(surface), [])
