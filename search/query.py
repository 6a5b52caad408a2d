"""Parse the user's query string: filters (``entity:ID``, ``said:ID``), quoted phrases, free text, and
exclusions (``-word``, ``NOT word``, ``-"a phrase"``, ``NOT entity:ID``, ``-said:ID``).

Exclusions are taken out of the text: they are never embedded, linked or scored, only applied as a
restriction by every leg (``index.keyword.Restrict``)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from index.errors import BadQuery

_FILTER = re.compile(r'(?<!\S)(entity|said):(?:"([^"]+)"|(\S+))', re.I)
_NEGATION = r'(?<![^\s(])(?:-|NOT\s+)'  # "-x" or "NOT x" at the start of a token
_NEG_FILTER = re.compile(_NEGATION + r'(entity|said):(?:"([^"]+)"|([^\s()]+))', re.I)
_NEG_TERM = re.compile(_NEGATION + r'(?:"([^"]+)"|([^\s"()\-][^\s"()]*))')
_NEG_GROUP = re.compile(r'(?<![^\s(])(?:-|NOT\s+)\(')
_DANGLING = re.compile(r'^\s*(?:AND|OR)\b|\b(?:AND|OR)\s*$|\b(?:AND|OR)\s+(?=(?:AND|OR)\b)|\(\s*\)')
_PHRASE = re.compile(r'"([^"]+)"')
MAX_TERMS = 64
MAX_DEPTH = 8


@dataclass(frozen=True)
class Query:
    raw: str
    text: str  # free text handed to the keyword parser and the encoder
    entities: tuple[str, ...] = ()  # entity ids every hit must be linked to
    said: tuple[str, ...] = ()  # entity ids that must be a quote's speaker in the hit
    phrases: tuple[str, ...] = field(default_factory=tuple)
    exclude: tuple[str, ...] = ()  # words and phrases no result may contain (``-x``, ``NOT "a b"``)
    exclude_entities: tuple[str, ...] = ()  # entity ids no result may be linked to (``-entity:ID``)
    exclude_said: tuple[str, ...] = ()  # entity ids no result may quote (``NOT said:ID``)

    @property
    def exclude_text(self) -> str:
        """The excluded words and phrases as keyword-parser text (any of them matches)."""
        return " ".join(f'"{x}"' if " " in x else x for x in self.exclude)

    @property
    def excludes(self) -> bool:
        return bool(self.exclude or self.exclude_entities or self.exclude_said)

    @property
    def plain(self) -> str:
        """Text without query syntax, for the encoder and the linker."""
        t = re.sub(r"\b(AND|OR|NOT)\b", " ", self.text)
        t = re.sub(r'["()+\-*^~]', " ", t)
        return re.sub(r"\s+", " ", t).strip()


def clean(text: str) -> str:
    """NFC, no control characters (NUL included), single spaces."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def parse_query(
    raw: str, *, entities: tuple[str, ...] = (), said: tuple[str, ...] = (), max_chars: int = 1000
) -> Query:
    if not isinstance(raw, str):
        raise BadQuery("query must be a string")
    if len(raw) > max_chars:
        raise BadQuery(f"query is {len(raw)} characters; the limit is {max_chars}")
    text = clean(raw)
    if _NEG_GROUP.search(text):
        raise BadQuery("NOT (…) and -(…) are not supported: exclude each word or phrase, e.g. -word "
                       'NOT "a phrase"')
    ex_ents: list[str] = []
    ex_said: list[str] = []
    for m in _NEG_FILTER.finditer(text):
        (ex_ents if m.group(1).lower() == "entity" else ex_said).append((m.group(2) or m.group(3)).strip())
    text = clean(_NEG_FILTER.sub(" ", text))
    ents = list(entities)
    spk = list(said)
    for m in _FILTER.finditer(text):
        value = (m.group(2) or m.group(3)).strip()
        (ents if m.group(1).lower() == "entity" else spk).append(value)
    text = clean(_FILTER.sub(" ", text))
    if text.count('"') % 2:
        text = text.replace('"', " ").strip()  # an unbalanced quote is a typo, not a phrase
    excluded = [clean(m.group(1) or m.group(2)) for m in _NEG_TERM.finditer(text)]
    text = clean(_NEG_TERM.sub(" ", text))
    while (tidy := clean(_DANGLING.sub(" ", text))) != text:  # "a AND NOT b" leaves "a AND"
        text = tidy
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise BadQuery(f"query nests parentheses {depth} deep; the limit is {MAX_DEPTH}")
    if len(text.split()) + len(excluded) > MAX_TERMS:
        raise BadQuery(f"query has more than {MAX_TERMS} terms")
    if not text and not ents and not spk:
        if excluded or ex_ents or ex_said:
            raise BadQuery("the query only excludes: add words to search for, or an entity:ID filter")
        raise BadQuery("empty query: type some words, or filter with entity:ID")
    return Query(
        raw=raw, text=text, entities=tuple(dict.fromkeys(ents)), said=tuple(dict.fromkeys(spk)),
        phrases=tuple(p.strip() for p in _PHRASE.findall(text) if p.strip()),
        exclude=tuple(dict.fromkeys(x for x in excluded if x)),
        exclude_entities=tuple(dict.fromkeys(ex_ents)), exclude_said=tuple(dict.fromkeys(ex_said)),
    )


def _depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth = max(0, depth - 1)
    return best
