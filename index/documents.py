"""Read a corpus (folder, single file or JSONL) into ``Document`` records and split them into paragraphs.

Every problem with an input is reported as an ``IngestError`` (file or file:line plus the reason) and the
input is skipped; the rest of the corpus still indexes. Text is normalised once here (NFC, ``\\n`` line
ends) and every offset downstream refers to that normalised ``Document.text``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

from index.errors import IngestError
from index.records import Document, Paragraph

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES


@dataclass
class Corpus:
    """What reading a corpus produced: the documents, the inputs skipped, and warnings (kept inputs)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[IngestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- reading


def read_corpus(path: str | Path, *, exclude: Iterable[str | Path] = ()) -> Corpus:
    """Read a folder (recursively), a single document file, or a JSONL file.

    ``exclude`` names files that live in the corpus folder but are not documents (the entity registry).
    Files and lines are visited in sorted order so ids and builds are reproducible.
    """
    root = Path(path)
    excluded = {Path(p).resolve() for p in exclude}
    corpus = Corpus()
    if not root.exists():
        corpus.skipped.append(IngestError(str(root), "corpus path does not exist"))
        return corpus
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
        suffix = file.suffix.lower()
        if suffix not in SUPPORTED:
            corpus.skipped.append(IngestError(rel, f"unsupported file type {suffix or '(none)'}"))
            continue
        try:
            if suffix in JSONL_SUFFIXES:
                docs: Iterable[Document] = _read_jsonl(file, rel, corpus)
            else:
                docs = [_read_file(file, rel, suffix, corpus)]
            for doc in docs:
                if doc.id in seen:
                    corpus.skipped.append(IngestError(doc.path or rel, f"duplicate document id {doc.id!r}"))
                    continue
                seen.add(doc.id)
                corpus.documents.append(doc)
        except IngestError as err:
            corpus.skipped.append(err)
        except OSError as err:
            corpus.skipped.append(IngestError(rel, f"cannot read: {err.strerror or err}"))
    return corpus


def _hidden(rel: Path) -> bool:
    return any(part.startswith((".", "_")) and part not in (".", "..") for part in rel.parts)


def normalize_text(text: str) -> str:
    """NFC, ``\\n`` line ends, no NULs or other C0 controls except tab and newline, no trailing spaces."""
    text = _no_surrogates(text)  # JSON "\ud800" escapes decode to lone surrogates; UTF-8 cannot hold them
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    text = text.replace("\u00a0", " ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(text: str) -> str:
    """Lone surrogates become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def decode_bytes(raw: bytes, where: str, warnings: list[str]) -> str:
    """UTF-8 (BOM tolerated); Latin-1 fallback with a warning; binary content is an ``IngestError``."""
    if b"\x00" in raw[:8192]:
        raise IngestError(where, "binary file (NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        warnings.append(f"{where}: not valid UTF-8 ({err.reason} at byte {err.start}); read as Latin-1")
        return raw.decode("latin-1")


def _fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def _read_file(file: Path, rel: str, suffix: str, corpus: Corpus) -> Document:
    raw = file.read_bytes()
    if not raw.strip():
        raise IngestError(rel, "empty file")
    text = decode_bytes(raw, rel, corpus.warnings)
    if suffix in HTML_SUFFIXES:
        title, body, meta = parse_html(text)
        text = normalize_text(body)
        if not text:
            raise IngestError(rel, "no article text found in HTML")
        return Document(
            id=rel,
            title=normalize_text(title) or _first_line(text),
            text=text,
            date=meta.get("date"),
            url=meta.get("url"),
            source=meta.get("source"),
            byline=meta.get("author"),
            path=rel,
            fingerprint=_fingerprint(raw),
        )
    text = normalize_text(text)
    if not text.strip():
        raise IngestError(rel, "empty file (only whitespace or control characters)")
    title = _first_line(text)
    if suffix in (".md", ".markdown"):
        title = re.sub(r"^#+\s*", "", title).strip()
    meta = header_metadata(text)
    return Document(
        id=rel,
        title=title,
        text=text,
        date=meta.get("date"),
        byline=meta.get("byline"),
        path=rel,
        fingerprint=_fingerprint(raw),
    )


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def _read_jsonl(file: Path, rel: str, corpus: Corpus) -> Iterator[Document]:
    raw_all = file.read_bytes()
    if not raw_all.strip():
        raise IngestError(rel, "empty file")
    for lineno, raw in enumerate(raw_all.split(b"\n"), start=1):
        where = f"{rel}:{lineno}"
        if not raw.strip():
            continue
        try:
            line = decode_bytes(raw, where, corpus.warnings)
            obj = json.loads(line)
        except IngestError as err:
            corpus.skipped.append(err)
            continue
        except ValueError as err:
            corpus.skipped.append(IngestError(where, f"malformed JSON ({err})"))
            continue
        if not isinstance(obj, dict):
            corpus.skipped.append(IngestError(where, "expected a JSON object"))
            continue
        doc_id = obj.get("id", obj.get("_id"))
        text = obj.get("text")
        if doc_id is None or str(doc_id).strip() == "":
            corpus.skipped.append(IngestError(where, "missing 'id' (or BEIR '_id')"))
            continue
        if not isinstance(text, str) or not normalize_text(text).strip():
            corpus.skipped.append(IngestError(where, "missing or empty 'text'"))
            continue
        title = obj.get("title") or ""
        if not isinstance(title, str):
            corpus.skipped.append(IngestError(where, "'title' must be a string"))
            continue
        opt = {
            k: (_no_surrogates(str(obj[k])) if obj.get(k) is not None else None)
            for k in ("date", "url", "source")
        }
        author = obj.get("author")
        yield Document(
            id=_no_surrogates(str(doc_id).strip()),
            title=normalize_text(title).replace("\n", " ") or _first_line(normalize_text(text)),
            text=normalize_text(text),
            date=_iso_date(opt["date"]) or opt["date"],
            url=opt["url"],
            source=opt["source"],
            byline=_no_surrogates(author) if isinstance(author, str) else None,
            path=where,
            fingerprint=_fingerprint(raw),
        )


# ------------------------------------------------------------------------------------ header metadata

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_DATE_PATTERNS = [
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "%Y-%m-%d"),
    (re.compile(rf"\b(?:{_MONTHS})[a-z]*\.? \d{{1,2}},? \d{{4}}\b", re.I), None),
    (re.compile(rf"\b\d{{1,2}} (?:{_MONTHS})[a-z]*\.? \d{{4}}\b", re.I), None),
]
_BYLINE = re.compile(r"^(?:by|from)\s+([A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){0,3})\s*$", re.I)
_DATELINE = re.compile(r"^(?:updated|published|posted|date)\s*:?\s*(.*)$", re.I)


def _iso_date(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value[: len(datetime(2000, 1, 1).strftime(fmt))], fmt).date().isoformat()
        except ValueError:
            pass
    cleaned = re.sub(r"[.,]", "", value)
    cleaned = re.sub(r"\bSept\b", "Sep", cleaned, flags=re.I)
    for fmt in ("%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y"):
        try:
            return datetime.strptime(cleaned, fmt).date().isoformat()
        except ValueError:
            pass
    return None


def find_date(text: str) -> str | None:
    for pattern, _ in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            iso = _iso_date(match.group(0))
            if iso:
                return iso
    return None


def header_metadata(text: str, max_lines: int = 8) -> dict[str, str]:
    """Byline and date from the short lines right after the title ("By Jane Doe", "Updated: Feb 17, 2025")."""
    meta: dict[str, str] = {}
    lines = [ln.strip() for ln in text.split("\n")[1 : max_lines + 1]]
    for line in lines:
        if not line or len(line) > 80:
            continue
        if m := _BYLINE.match(line):
            meta.setdefault("byline", m.group(1))
        elif m := _DATELINE.match(line):
            if date := find_date(m.group(1)):
                meta.setdefault("date", date)
        elif (date := find_date(line)) and len(line) <= 40:
            meta.setdefault("date", date)
    return meta


# ------------------------------------------------------------------------------------------------ HTML

_DROP = {
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "noscript",
    "form",
    "svg",
    "iframe",
    "template",
}
_BLOCK = {
    "p",
    "div",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "section",
    "article",
    "tr",
    "pre",
    "figcaption",
    "ul",
    "ol",
    "table",
    "main",
    "dd",
    "dt",
}


class _ArticleParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.in_title = False
        self.title = ""
        self.h1 = ""
        self.in_h1 = False
        self.parts: list[str] = []
        self.article_parts: list[str] | None = None
        self.article_depth = 0
        self.meta: dict[str, str] = {}

    def _emit(self, s: str) -> None:
        self.parts.append(s)
        if self.article_depth and self.article_parts is not None:
            self.article_parts.append(s)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in _DROP:
            self.skip += 1
        elif tag == "title":
            self.in_title = True
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            content = a.get("content", "")
            mapping = {
                "article:published_time": "date",
                "date": "date",
                "pubdate": "date",
                "author": "author",
                "og:url": "url",
                "og:site_name": "source",
                "og:title": "og_title",
            }
            if key in mapping and content:
                self.meta.setdefault(mapping[key], content)
        elif tag == "time" and a.get("datetime"):
            self.meta.setdefault("date", a["datetime"])
        if tag == "article":
            if self.article_parts is None:
                self.article_parts = []
            self.article_depth += 1
        if tag == "h1":
            self.in_h1 = True
        if tag in _BLOCK or tag == "br":
            self._emit("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP and self.skip:
            self.skip -= 1
        elif tag == "title":
            self.in_title = False
        if tag == "h1":
            self.in_h1 = False
        if tag in _BLOCK:
            self._emit("\n\n")
        if tag == "article" and self.article_depth:
            self.article_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
            return
        if self.skip:
            return
        if self.in_h1:
            self.h1 += data
        self._emit(re.sub(r"\s+", " ", data))


def parse_html(html: str) -> tuple[str, str, dict[str, str]]:
    """(title, article text with blank lines between blocks, metadata). Scripts, styles, nav are dropped."""
    parser = _ArticleParser()
    parser.feed(html)
    parser.close()
    has_article = bool(parser.article_parts and "".join(parser.article_parts).strip())
    parts = parser.article_parts if has_article and parser.article_parts else parser.parts
    body = "".join(parts)
    body = re.sub(r"[ \t]*\n[ \t]*", "\n", body)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    title = (parser.h1 or parser.meta.get("og_title") or parser.title).strip()
    meta = dict(parser.meta)
    if "date" in meta:
        meta["date"] = _iso_date(meta["date"]) or meta["date"]
    # The h1 usually opens the body too; drop that copy so the title is not a paragraph of its own.
    if title and body.startswith(title):
        body = body[len(title) :].lstrip()
    return title, body, meta


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
                doc.title.strip()
                and doc.text[start:first_line_end].strip().lstrip("#").strip() == doc.title.strip()
            ):
                start = first_line_end  # the title is a field of its own, not paragraph text
                while start < end and doc.text[start].isspace():
                    start += 1
                if start >= end:
                    continue
        if block_no < 4 and _is_header_block(doc.text[start:end]):
            continue  # "By Jane Doe" / "Updated: Feb 17, 2025": metadata, not a paragraph
        for s, e in _split_long(doc.text, start, end, max_chars):
            n = len(out)
            out.append(Paragraph(id=f"{doc.id}#{n}", doc_id=doc.id, n=n, start=s, end=e, text=doc.text[s:e]))
    return out


def _is_header_block(block: str) -> bool:
    lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
    return (
        bool(lines)
        and len(lines) <= 3
        and all(
            len(ln) <= 80 and (_BYLINE.match(ln) or _DATELINE.match(ln) or (len(ln) <= 40 and find_date(ln)))
            for ln in lines
        )
    )


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
