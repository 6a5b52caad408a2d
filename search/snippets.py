"""Highlighted snippets built from stored offsets. Text is escaped first; only our own tags are added."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from re import Pattern
from typing import Any
from urllib.parse import quote

from whoosh.analysis import LowercaseFilter, RegexTokenizer, StemFilter, StopFilter

from index.keyword import analyzer

_ANALYZER = analyzer()


def query_stems(text: str) -> set[str]:
    """The stems the keyword leg matches for ``text`` (same analyzer as the index)."""
    return {t.text for t in _ANALYZER(text)}


class _Chain:
    """The index analyzer's steps (regex tokens, lower case, stop words, stems) as plain values, so that a
    paragraph's term spans come from one regex scan and one cached lookup per token instead of Whoosh's
    token generators (most of a snippet's cost). ``of`` returns None for an analyzer of another shape, and
    ``term_spans`` then runs Whoosh's chain itself."""

    def __init__(self, tokens: Pattern[str], stops: frozenset[str], min_size: int, max_size: int | None,
                 ignore: frozenset[str], stem: Callable[[str], str]):
        self.tokens, self.stops, self.min, self.max, self.ignore, self.stem = (
            tokens, stops, min_size, max_size, ignore, stem)
        self.term: Callable[[str], str | None] = lru_cache(maxsize=100_000)(self._term)

    @classmethod
    def of(cls, ana: Any) -> _Chain | None:
        steps = list(getattr(ana, "items", ()))
        kinds = [RegexTokenizer, LowercaseFilter, StopFilter, StemFilter]
        if len(steps) != len(kinds) or any(type(st) is not k for st, k in zip(steps, kinds, strict=True)):
            return None
        tok, _, stop, stem = steps
        if tok.gaps or stem.lang:
            return None
        return cls(tok.expression, stop.stops, stop.min, stop.max, stem.ignore, stem.stemfn)

    def spans(self, text: str, stems: set[str]) -> list[tuple[int, int]]:
        term = self.term
        return [m.span() for m in self.tokens.finditer(text) if term(m.group().lower()) in stems]

    def _term(self, word: str) -> str | None:
        """The indexed term for a lower-cased token; None for a stop word or a token out of size."""
        if len(word) < self.min or (self.max is not None and len(word) > self.max) or word in self.stops:
            return None
        return word if word in self.ignore else self.stem(word)


_CHAIN = _Chain.of(_ANALYZER)


def term_spans(text: str, stems: set[str]) -> list[tuple[int, int]]:
    """Character spans of the words in ``text`` whose stem is in ``stems`` (the analyzer's tokens)."""
    if not stems:
        return []
    if _CHAIN is not None:
        return _CHAIN.spans(text, stems)
    return [(t.startchar, t.endchar) for t in _ANALYZER(text, chars=True) if t.text in stems]


@dataclass(frozen=True)
class Mark:
    start: int
    end: int
    kind: str  # "term" | "entity"
    entity_id: str | None = None
    entity_type: str | None = None


def window(text: str, spans: Sequence[tuple[int, int]], size: int) -> tuple[int, int]:
    """The ``size``-char window with the most highlighted spans, snapped to word boundaries."""
    if len(text) <= size:
        return 0, len(text)
    best_start, best_count = 0, -1
    starts = sorted({max(0, s - size // 4) for s, _ in spans}) or [0]
    for st in starts:
        count = sum(1 for s, e in spans if s >= st and e <= st + size)
        if count > best_count:
            best_start, best_count = st, count
    start = best_start
    if start > 0:
        sp = text.rfind(" ", 0, start + 1)
        start = sp + 1 if sp >= 0 and start - sp < 30 else start
    end = min(len(text), start + size)
    if end < len(text):
        sp = text.rfind(" ", start, end)
        end = sp if sp > start else end
    return start, end


def _valid_span(link: dict[str, Any], n: int) -> bool:
    s, e = link.get("start"), link.get("end")
    return (isinstance(s, int) and isinstance(e, int) and not isinstance(s, bool) and not isinstance(e, bool)
            and 0 <= s < e <= n)


def highlight(
    text: str,
    *,
    stems: set[str] = frozenset(),  # type: ignore[assignment]
    links: Sequence[dict[str, Any]] = (),
    size: int | None = None,
    entity_url: str = "/entities/{id}",
) -> str:
    """HTML for ``text`` (or its best window of ``size`` chars): query terms in ``<mark>``, linked entity
    mentions in ``<a class="ent">``. Everything from the document is escaped; overlapping marks are resolved
    with entities outermost, terms inside them kept only when they do not cross an entity boundary."""
    terms = term_spans(text, stems)
    links = [x for x in links if _valid_span(x, len(text))]  # a bad span never picks the window or a mark
    spans = terms or [(x["start"], x["end"]) for x in links]
    start, end = (0, len(text)) if size is None else window(text, spans, max(size, 1))
    ents = sorted(
        (Mark(max(x["start"], start), min(x["end"], end), "entity", x["entity_id"], x.get("type"))
         for x in links if x["start"] < end and x["end"] > start),
        key=lambda m: (m.start, -m.end),
    )
    kept_ents: list[Mark] = []
    for m in ents:  # drop overlapping entity marks
        if not kept_ents or m.start >= kept_ents[-1].end:
            kept_ents.append(m)
    words = [Mark(s, e, "term") for s, e in terms if start <= s and e <= end]
    words = [w for w in words
             if not any(w.start < m.end and m.start < w.end and not (m.start <= w.start and w.end <= m.end)
                        for m in kept_ents)]
    out: list[str] = []
    if start > 0:
        out.append("… ")
    pos = start
    events = sorted(kept_ents + words, key=lambda m: (m.start, 0 if m.kind == "entity" else 1))
    open_ent: Mark | None = None
    for m in events:
        if open_ent is not None and m.start >= open_ent.end:
            out.append(escape(text[pos:open_ent.end]))
            out.append("</a>")
            pos = open_ent.end
            open_ent = None
        out.append(escape(text[pos:m.start]))
        pos = m.start
        if m.kind == "entity":
            ref = quote(m.entity_id or "", safe=":", errors="replace")
            href = escape(entity_url.format(id=ref), quote=True)
            out.append(f'<a class="ent ent-{escape(m.entity_type or "other", quote=True)}" href="{href}" '
                       f'data-entity="{escape(m.entity_id or "", quote=True)}">')
            open_ent = m
        else:
            out.append(f"<mark>{escape(text[m.start:m.end])}</mark>")
            pos = m.end
    if open_ent is not None:
        out.append(escape(text[pos:open_ent.end]))
        out.append("</a>")
        pos = open_ent.end
    out.append(escape(text[pos:end]))
    if end < len(text):
        out.append(" …")
    return "".join(out)
