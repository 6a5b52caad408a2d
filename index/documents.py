"""Read a corpus (folder, single file, JSONL or CSV) into ``Document`` records and split them into paragraphs.

The formats live in ``index/readers/`` (one module per format behind one signature); this module walks
the corpus, dispatches each file, and finishes every document the same way (format, language, limits).
``iter_corpus`` streams: memory does not grow with the size of a JSONL/CSV file (only the set of ids seen).

Every problem with an input is reported as an ``IngestError`` (file or file:line plus the reason) and the
input is skipped; the rest of the corpus still indexes. Text is normalised once (NFC, ``\\n`` line ends)
and every offset downstream refers to that normalised ``Document.text``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from index.errors import IngestError
from index.readers import Context, ReadOptions, Source
from index.readers.common import (  # noqa: F401  (re-exported: the helpers' historical home)
    decode_bytes,
    find_date,
    header_metadata,
    is_header_block,
    normalize_text,
)
from index.readers.htmlpage import parse_html  # noqa: F401  (re-exported)
from index.records import Document, Paragraph


@dataclass
class Corpus:
    """What reading a corpus produced: the documents, the inputs skipped, and warnings (kept inputs)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[IngestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    formats: Counter[str] = field(default_factory=Counter)  # documents per format
    languages: Counter[str] = field(default_factory=Counter)  # documents per language ("" unknown)


# --------------------------------------------------------------------------------------------- reading


def read_corpus(
    path: str | Path, *, exclude: Iterable[str | Path] = (), options: ReadOptions | None = None
) -> Corpus:
    """Read a folder (recursively), a single document file, or a JSONL/CSV file, into memory.

    ``exclude`` names files that live in the corpus folder but are not documents (the entity registry).
    Files and lines are visited in sorted order so ids and builds are reproducible.
    """
    corpus = Corpus()
    corpus.documents.extend(iter_corpus(path, corpus, exclude=exclude, options=options))
    return corpus


def iter_corpus(
    path: str | Path,
    report: Corpus,
    *,
    exclude: Iterable[str | Path] = (),
    options: ReadOptions | None = None,
) -> Iterator[Document]:
    """Stream the documents of ``path``; skips, warnings and per-format/language counts go to ``report``."""
    root = Path(path)
    excluded = {Path(p).resolve() for p in exclude}
    ctx = Context(options or ReadOptions(), report.warnings, report.skipped)
    if not root.exists():
        report.skipped.append(IngestError(str(root), "corpus path does not exist"))
        return
    if root.is_file():
        files, base = [root], root.parent
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p.relative_to(root)))
        base = root
    seen: set[str] = set()
    for file in files:
        if file.resolve() in excluded:
            continue
        rel = file.relative_to(base).as_posix()
        try:
            for fmt, doc in ctx.read(Source(rel=rel, suffix=file.suffix, path=file)):
                if doc.id in seen:
                    report.skipped.append(IngestError(doc.path or rel, f"duplicate document id {doc.id!r}"))
                    continue
                try:
                    doc = _finish(doc, fmt, ctx.options)
                except IngestError as err:
                    report.skipped.append(err)
                    continue
                seen.add(doc.id)
                report.formats[doc.format] += 1
                report.languages[doc.language] += 1
                yield doc
        except IngestError as err:
            report.skipped.append(err)
        except OSError as err:
            report.skipped.append(IngestError(rel, f"cannot read: {err.strerror or err}"))


def _finish(doc: Document, fmt: str, options: ReadOptions) -> Document:
    """Format and language on every document; a block too long to be prose is a skip reason."""
    longest = _longest_block(doc.text)
    if longest > options.max_block_chars:
        raise IngestError(doc.path or doc.id, f"one paragraph of {longest:,} characters (over "
                                              f"{options.max_block_chars:,}): not prose; skipped")
    language = doc.language
    if not language and options.detect_language:
        from index.readers.language import detect_language

        language = detect_language(doc.text)
    return replace(doc, format=doc.format or fmt, language=language)


def _longest_block(text: str) -> int:
    longest = pos = 0
    for m in _BLANK.finditer(text):
        longest = max(longest, m.start() - pos)
        pos = m.end()
    return max(longest, len(text) - pos)


def _hidden(rel: Path) -> bool:
    return any(part.startswith((".", "_")) and part not in (".", "..") for part in rel.parts)


# ------------------------------------------------------------------------------------------ paragraphs

_BLANK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def split_paragraphs(doc: Document, max_chars: int = 1500) -> list[Paragraph]:
    """Paragraphs are blocks separated by blank lines; ``doc.text[p.start:p.end] == p.text`` always.

    The first line is skipped when it is ``doc.title`` (the title is its own field), and so is a short
    byline/date block among the first ones.
    Blocks longer than ``max_chars`` are cut at sentence ends (or, failing that, at whitespace).
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _BLANK.finditer(doc.text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(doc.text)))
    out: list[Paragraph] = []
    first = True
    for block_no, (start, end) in enumerate(spans):
        # trim surrounding whitespace without losing offset alignment
        while start < end and doc.text[start].isspace():
            start += 1
        while end > start and doc.text[end - 1].isspace():
            end -= 1
        if start >= end:
            continue
        if first:
            first = False
            nl = doc.text.find("\n", start, end)
            first_line_end = end if nl < 0 else nl
            if (
                doc.title_in_text
                and doc.title.strip()
                and doc.text[start:first_line_end].strip().lstrip("#").strip() == doc.title.strip()
            ):
                start = first_line_end  # the title is a field of its own, not paragraph text
                while start < end and doc.text[start].isspace():
                    start += 1
                if start >= end:
                    continue
        if block_no < 4 and doc.title_in_text and is_header_block(doc.text[start:end]):
            continue  # "By Jane Doe" / "Updated: Feb 17, 2025": metadata, not a paragraph
        for s, e in _split_long(doc.text, start, end, max_chars):
            n = len(out)
            page, page_end = _pages(doc.page_starts, s, e)
            out.append(Paragraph(id=f"{doc.id}#{n}", doc_id=doc.id, n=n, start=s, end=e, text=doc.text[s:e],
                                 page=page, page_end=page_end, kind=_kind(doc.parts, s)))
    return out


def _pages(page_starts: tuple[int, ...], start: int, end: int) -> tuple[int | None, int | None]:
    """1-based first and last page of ``text[start:end]`` (None for documents without pages)."""
    if not page_starts:
        return None, None
    first = max(1, bisect_right(page_starts, start))
    last = max(first, bisect_right(page_starts, end - 1))
    return first, (last if last != first else None)


def _kind(parts: tuple[tuple[int, int, str], ...], start: int) -> str:
    if not parts:
        return ""
    return next((kind for s, e, kind in parts if s <= start < e), "")


def _split_long(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    if end - start <= max_chars:
        yield start, end
        return
    ends = _SENTENCE_END.finditer(text[start:end])
    cuts = [start] + [start + m.start() + len(m.group(0).rstrip()) for m in ends]
    # Greedy: pack sentences into chunks of at most max_chars.
    chunk_start = start
    last_ok = None
    for cut in cuts[1:] + [end]:
        if cut - chunk_start <= max_chars:
            last_ok = cut
            continue
        if last_ok is None or last_ok <= chunk_start:
            # a single sentence longer than max_chars: cut at whitespace
            last_ok = _whitespace_cut(text, chunk_start, min(end, chunk_start + max_chars))
        yield from _trimmed(text, chunk_start, last_ok)
        chunk_start = last_ok
        while chunk_start < end and text[chunk_start].isspace():
            chunk_start += 1
        # the current cut may itself still be too far away: loop until it fits
        while cut - chunk_start > max_chars:
            c = _whitespace_cut(text, chunk_start, chunk_start + max_chars)
            yield from _trimmed(text, chunk_start, c)
            chunk_start = c
            while chunk_start < end and text[chunk_start].isspace():
                chunk_start += 1
        last_ok = cut
    if chunk_start < end:
        yield from _trimmed(text, chunk_start, end)


def _whitespace_cut(text: str, start: int, limit: int) -> int:
    i = text.rfind(" ", start + 1, limit)
    return i if i > start else limit


def _trimmed(text: str, s: int, e: int) -> Iterator[tuple[int, int]]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if s < e:
        yield s, e
