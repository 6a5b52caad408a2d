"""Parse the user's query string: filters (``entity:ID``, ``said:ID``), quoted phrases, free text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from index.errors import BadQuery

_FILTER = re.compile(r'(?<!\S)(entity|said):(?:"([^"]+)"|(\S+))', re.I)
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
    ents = list(entities)
    spk = list(said)
    for m in _FILTER.finditer(text):
        value = (m.group(2) or m.group(3)).strip()
        (ents if m.group(1).lower() == "entity" else spk).append(value)
    text = clean(_FILTER.sub(" ", text))
    if text.count('"') % 2:
        text = text.replace('"', " ").strip()  # an unbalanced quote is a typo, not a phrase
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise BadQuery(f"query nests parentheses {depth} deep; the limit is {MAX_DEPTH}")
    if len(text.split()) > MAX_TERMS:
        raise BadQuery(f"query has more than {MAX_TERMS} terms")
    if not text and not ents and not spk:
        raise BadQuery("empty query: type some words, or filter with entity:ID")
    return Query(
        raw=raw, text=text, entities=tuple(dict.fromkeys(ents)), said=tuple(dict.fromkeys(spk)),
        phrases=tuple(p.strip() for p in _PHRASE.findall(text) if p.strip()),
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
