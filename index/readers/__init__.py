"""Readers: one module per format, all behind one signature, dispatched by extension and sniffed content.

``read(source, ctx) -> Iterator[Document]``: a reader streams the documents of one input (a file, or an
e-mail attachment held in memory). A problem with the whole input raises ``IngestError``; a problem with
one record of it (a JSONL line, a CSV row, one message of an mbox) goes to ``ctx.skipped`` and the reader
carries on. Warnings (a page that could not be OCR'd, Latin-1 fallback) go to ``ctx.warnings``.
"""

from __future__ import annotations

import importlib
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from index.errors import IngestError
from index.records import Document

# extension → format name; the format names are what the build summary counts.
FORMATS = {
    ".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".pdf": "pdf", ".docx": "docx",
    ".eml": "eml", ".mbox": "mbox",
}
# format → "module:function" under index.readers (imported on first use: PDF/Word libraries load lazily)
_READERS = {
    "txt": "text:read_text", "md": "text:read_text", "html": "htmlpage:read_html",
    "jsonl": "tabular:read_jsonl", "csv": "tabular:read_csv", "pdf": "pdf:read_pdf",
    "docx": "word:read_docx", "eml": "mail:read_eml", "mbox": "mail:read_mbox",
}
UNSUPPORTED = {
    ".doc": "legacy Word .doc is not supported; save it as .docx or PDF",
    ".odt": "OpenDocument text is not supported; save it as .docx or PDF",
    ".rtf": "RTF is not supported; save it as .docx or PDF",
    ".zip": "archives are not unpacked; extract the files into the corpus folder",
    ".gz": "compressed files are not unpacked; decompress them into the corpus folder",
    ".xlsx": "spreadsheets are not supported; export the sheet as CSV",
    ".pptx": "slides are not supported; export them as PDF",
    ".msg": "Outlook .msg is not supported; save the message as .eml",
}
_IMAGE = ("png", "jpeg", "gif", "tiff")
_KIND_NAMES = {"pdf": "a PDF", "zip": "a zip archive", "docx": "a Word .docx", "ole": "an old Office file",
               "png": "a PNG image", "jpeg": "a JPEG image", "gif": "a GIF image", "tiff": "a TIFF image",
               "gzip": "gzip data", "rtf": "RTF"}


@dataclass(frozen=True)
class ReadOptions:
    """How to read: column names for JSONL/CSV, OCR, limits. Built from ``Settings`` by the build."""

    text_column: str = "text"
    title_column: str = "title"
    date_column: str = "date"
    id_column: str = "id"
    ocr: bool = True  # OCR pages without a text layer when Tesseract is installed
    ocr_language: str = "eng"
    ocr_cache: Path | None = None  # folder of OCR results keyed by page-image hash (kept across builds)
    max_block_chars: int = 1_000_000  # a "paragraph" longer than this is not prose: the document is skipped
    detect_language: bool = True


@dataclass
class Source:
    """One input: a file on disk, or bytes (an attachment). ``rel`` names it in ids and messages."""

    rel: str
    suffix: str
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return self.path.open("rb")

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def head(self, n: int = 8192) -> bytes:
        if self.data is not None:
            return self.data[:n]
        with self.open() as f:
            return f.read(n)


@dataclass
class Context:
    options: ReadOptions = field(default_factory=ReadOptions)
    warnings: list[str] = field(default_factory=list)
    skipped: list[IngestError] = field(default_factory=list)

    def read(self, source: Source) -> Iterator[tuple[str, Document]]:
        """``(format, document)`` for every document of ``source`` (attachments call this too)."""
        fmt = resolve_format(source, self.warnings)
        reader = _reader(fmt)
        for doc in reader(source, self):
            yield doc.format or fmt, doc


Reader = Callable[[Source, Context], Iterator[Document]]


def _reader(fmt: str) -> Reader:
    module, func = _READERS[fmt].split(":")
    return getattr(importlib.import_module(f"index.readers.{module}"), func)


def sniff(head: bytes) -> str | None:
    """The binary kind of content from its first bytes, or None for text (or unknown)."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    return None


def _is_docx(source: Source) -> bool:
    try:
        with source.open() as f, zipfile.ZipFile(f) as z:
            return "word/document.xml" in z.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def resolve_format(source: Source, warnings: list[str]) -> str:
    """The format to read ``source`` as, or ``IngestError`` with the reason it is skipped.

    The extension decides, checked against the content: a ``.pdf`` that is not a PDF is skipped (wrong
    extension); a text-format file whose content is a PDF or a Word file is read as what it is, with a
    warning; other binary content in a text-format file is skipped.
    """
    suffix = source.suffix.lower()
    fmt = FORMATS.get(suffix)
    head = source.head()
    kind = sniff(head)
    if kind == "zip" and _is_docx(source):
        kind = "docx"
    if fmt in ("pdf", "docx"):
        if fmt == "docx" and kind == "zip":
            raise IngestError(source.rel, "damaged .docx (a zip archive without a readable Word document)")
        if kind != fmt:
            what = _KIND_NAMES.get(kind or "", "text" if _looks_like_text(head) else "unrecognised data")
            raise IngestError(source.rel, f"not {_KIND_NAMES[fmt]} file: the content is {what} "
                                          f"(wrong extension?)")
        return fmt
    if kind in ("pdf", "docx"):
        warnings.append(f"{source.rel}: named {suffix or '(no extension)'} but the content is "
                        f"{_KIND_NAMES[kind]}; read as {kind}")
        return kind
    if fmt is None:
        raise IngestError(source.rel, UNSUPPORTED.get(suffix, f"unsupported file type {suffix or '(none)'}"))
    if kind is not None:
        raise IngestError(source.rel, f"binary file ({_KIND_NAMES[kind]}), not {fmt} text")
    return fmt


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start > len(head) - 4  # a multi-byte character cut by the 8 KiB window
    return True
