"""Plain records passed between build, index folder and search. Standard library only.

All character offsets are Python ``str`` indices (code points), half-open ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")

# Entity types, coarse on purpose: what a journalist filters by.
PERSON, ORG, PLACE, OTHER = "person", "org", "place", "other"
ENTITY_TYPES = (PERSON, ORG, PLACE, OTHER)


_SCALARS = (str, int, float, bool, type(None))


def _flat(x: Any) -> bool:
    """A scalar, or a tuple of scalars (a link's candidate: entity id and score)."""
    return type(x) in _SCALARS or (type(x) is tuple and all(type(y) in _SCALARS for y in x))


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _flat_dict(x: Any) -> bool:
    """A dict of scalars (a document's format metadata)."""
    return type(x) is dict and all(type(k) is str and type(v) in _SCALARS for k, v in x.items())


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """``dataclasses.asdict``, fast for flat records (links with their candidate pairs, quotes, mentions:
        100k+ a build; entities, whose names are tuples of strings: one per entity of the corpus; documents,
        whose metadata is a dict of strings: every document, each build)."""
        names = _names(type(self))
        own = getattr(self, "__dict__", None)
        # a dataclass's instance dict holds its fields, in order: read it at C speed when it is just that
        items = own.items() if own is not None and len(own) == len(names) else (
            (n, getattr(self, n)) for n in names)
        out: dict[str, Any] = {}
        for n, v in items:
            if type(v) in _SCALARS or (type(v) is tuple and all(_flat(x) for x in v)):
                out[n] = v  # asdict would copy the tuples, equal
            elif _flat_dict(v):
                out[n] = dict(v)  # asdict copies a dict
            else:
                return asdict(self)  # type: ignore[call-overload]
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        kwargs = {k: v for k, v in data.items() if k in names}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in kwargs and isinstance(kwargs[f.name], list) and f.type.startswith("tuple"):
                kwargs[f.name] = tuple(kwargs[f.name])
        return cls(**kwargs)


@dataclass(frozen=True)
class Document(_Record):
    """One source document, text normalised (NFC, ``\\n`` line ends)."""

    id: str
    title: str
    text: str
    date: str | None = None
    url: str | None = None
    source: str | None = None
    byline: str | None = None
    path: str | None = None
    fingerprint: str = ""
    # Optional, filled by the readers in ``index/readers/`` (older builds and callers leave the defaults).
    format: str = ""  # "txt", "md", "html", "pdf", "docx", "eml", "mbox", "jsonl", "csv"
    language: str = ""  # ISO 639-1 code from language detection; "" when unknown (too little text)
    ocr: bool = False  # some page's text came from OCR
    title_in_text: bool = True  # the first line of ``text`` is the title (split_paragraphs skips it)
    page_starts: tuple[int, ...] = ()  # offset in ``text`` where page 1, 2, ... begins (paged formats)
    parts: tuple[tuple[int, int, str], ...] = ()  # ``[start, end)`` regions of a kind ("quote", "signature")
    parent: str | None = None  # an attachment's message id
    metadata: dict[str, str] = field(default_factory=dict)  # format metadata: from/to, author, pages, ...


@dataclass(frozen=True)
class Paragraph(_Record):
    """A paragraph of a document: ``doc.text[start:end] == text``. ``id`` is ``f"{doc_id}#{n}"``."""

    id: str
    doc_id: str
    n: int
    start: int
    end: int
    text: str
    page: int | None = None  # first page (1-based) for paged formats (PDF)
    page_end: int | None = None  # last page, when the paragraph's sentence runs across a page break
    kind: str = ""  # "" for body text; "quote" (quoted reply) or "signature" for e-mail


@dataclass(frozen=True)
class Title(_Record):
    """A role that names its holder ("Secretary of State"), held from ``start`` to ``end`` (ISO dates).

    ``None`` on either side is open; an undated title (both ``None``) only links where its holder is named
    in the same document. In the registry file it is written ``{"title": …, "from": …, "to": …}`` or a plain
    string (undated).
    """

    title: str
    start: str | None = None
    end: str | None = None

    @classmethod
    def parse(cls, value: str | dict[str, Any]) -> Title:
        """A title as written in the registry: a string, or ``{"title", "from", "to"}``."""
        if isinstance(value, str):
            return cls(value)
        return cls(value["title"], value.get("from", value.get("start")), value.get("to", value.get("end")))

    def to_json(self) -> str | dict[str, Any]:
        return self.title if not self.dated else {"title": self.title, "from": self.start, "to": self.end}

    @property
    def dated(self) -> bool:
        return self.start is not None or self.end is not None

    def holds_on(self, date: str | None) -> bool:
        """Whether the title was held on ``date`` (an ISO date; compared on its first 10 characters).

        A partial date ("2004", "2004-03", as knowledge bases often give) covers its whole year or month:
        an end of "2004" still holds on 2004-12-31."""
        if not date or not self.dated:
            return False
        day = date[:10]
        end = self.end[:10] if self.end is not None else None
        return (self.start is None or self.start[:10] <= day) and (end is None or day[: len(end)] <= end)


@dataclass(frozen=True)
class Entity(_Record):
    """A canonical entity: from the registry, or a local (out-of-registry) cluster with a ``local:`` id."""

    id: str
    name: str
    type: str = OTHER
    aliases: tuple[str, ...] = ()
    wikidata: str | None = None
    description: str | None = None
    titles: tuple[Title, ...] = ()  # roles that refer to the entity ("Russian foreign minister"), dated

    @property
    def title_names(self) -> tuple[str, ...]:
        return tuple(t.title for t in self.titles)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entity:
        ent = super().from_dict(data)
        titles = tuple(t if isinstance(t, Title) else Title.parse(t) for t in data.get("titles") or ())
        return replace(ent, titles=titles)


@dataclass(frozen=True)
class Mention(_Record):
    """A name found in text (before linking)."""

    start: int
    end: int
    text: str
    type: str = OTHER
    source: str = "ner"  # "ner" | "gazetteer" | "title" | ...


@dataclass(frozen=True)
class Link(_Record):
    """A mention linked to an entity, with how sure we are and which rule decided it."""

    start: int
    end: int
    text: str
    entity_id: str
    type: str = OTHER
    confidence: float = 1.0
    rule: str = "exact"
    # The candidates the resolver weighed, best first, as (entity id, score): what `explain` shows.
    candidates: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Quote(_Record):
    """A direct quote ``text`` at ``[start, end)``, said by ``speaker`` (an entity id) or by nobody named.

    ``speaker`` is ``None`` for an unnamed source (``descriptor`` keeps who: "a company spokeswoman") or a
    quote whose speaker was not found. ``cue`` is the reporting verb ("said", "according to"), ``how`` the way
    the speaker was found ("explicit", "apposition", "pronoun", "role", "continuation", "unnamed"). Segments
    of one quote that runs across paragraphs share ``quote_id``.
    """

    start: int
    end: int
    text: str
    speaker: str | None = None
    confidence: float = 1.0
    cue: str = ""
    how: str = ""
    descriptor: str = ""
    quote_id: str = ""


@dataclass(frozen=True)
class LinkedParagraph(_Record):
    """A paragraph with its links and quotes, offsets relative to the paragraph text."""

    paragraph: Paragraph
    links: tuple[Link, ...] = field(default_factory=tuple)
    quotes: tuple[Quote, ...] = field(default_factory=tuple)
