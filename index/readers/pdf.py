"""PDF: text per page with pdfminer.six's layout analysis; pages without a text layer OCR'd by Tesseract.

* Each text box pdfminer finds is a paragraph; its lines are joined and words hyphenated across lines
  are rejoined ("nego-" + "tiations").
* Headers and footers (boxes in the top or bottom margin whose text, digits aside, repeats on at least
  half the pages) and bare page numbers are dropped.
* A paragraph never crosses a page break unless its sentence does (the page ends without closing
  punctuation and the next one opens in lower case); ``Document.page_starts`` maps offsets to pages, so
  every paragraph knows its page (or page range).
* A page with images but no text is rendered (pypdfium2) and OCR'd (pytesseract + Debian's tesseract-ocr)
  when Tesseract is installed; results are cached by a hash of the rendered page, so a rebuild does not
  OCR again. Without Tesseract the page is reported in the build's warnings.
* Encrypted (password), truncated, damaged and zero-page PDFs raise ``IngestError`` with the reason.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from index.errors import IngestError
from index.readers import Context, ReadOptions, Source
from index.readers.common import fingerprint, join_lines, normalize_text, title_from_text
from index.records import Document

logging.getLogger("pdfminer").setLevel(logging.ERROR)  # damaged files are reported once, as a skip reason

MARGIN = 0.12  # top and bottom share of the page height where headers and footers live
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–—(\[]?\s*\d{1,4}\s*[-–—)\]]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)
_CLOSES_SENTENCE = tuple('.!?:;…"”’)]')
_JUNK_TITLE = re.compile(
    r"^(?:untitled|microsoft (?:word|powerpoint) - .*|.*\.(?:docx?|pdf|odt|rtf|txt))$", re.I
)


@dataclass
class _Box:
    text: str
    top: float  # distance from the top of the page, 0..1
    bottom: float


@dataclass
class _Page:
    number: int
    boxes: list[_Box] = field(default_factory=list)
    has_image: bool = False
    paragraphs: list[str] = field(default_factory=list)
    ocr: bool = False


def read_pdf(source: Source, ctx: Context) -> Iterator[Document]:
    data = source.read_bytes()
    if b"%%EOF" not in data[-4096:]:
        raise IngestError(source.rel, "truncated PDF (no %%EOF marker at the end: an incomplete copy?)")
    info, pages = _layout(data, source.rel)
    _drop_headers_and_footers(pages)
    for page in pages:
        page.paragraphs = [p for p in (normalize_text(join_lines(b.text)) for b in page.boxes) if p]
    ocr_pages = _ocr_missing(data, pages, source.rel, ctx)
    text, page_starts = _assemble(pages)
    if not text.strip():
        if any(p.has_image for p in pages):
            raise IngestError(source.rel, "no text layer (scanned pages) and no OCR; see the warnings")
        raise IngestError(source.rel, "no text in this PDF")
    meta_title = _meta(info, "Title")
    if meta_title and not _JUNK_TITLE.match(meta_title) and meta_title != PurePosixPath(source.rel).stem:
        title, in_text = " ".join(meta_title.split()), True
    else:
        title, in_text = title_from_text(text)
    metadata = {"pages": str(len(pages))}
    if ocr_pages:
        metadata["ocr_pages"] = ",".join(map(str, ocr_pages))
    for key in ("Subject", "Keywords"):
        if (value := _meta(info, key)) and value.lower() not in ("unspecified", "untitled", "none"):
            metadata[key.lower()] = value
    yield Document(
        id=source.rel, title=title, text=text, date=_pdf_date(_meta(info, "CreationDate")),
        byline=_meta(info, "Author") or None, path=source.rel, fingerprint=fingerprint(data),
        ocr=bool(ocr_pages), title_in_text=in_text, page_starts=tuple(page_starts), metadata=metadata,
    )


# -------------------------------------------------------------------------------------------- parsing


def _layout(data: bytes, rel: str) -> tuple[dict[str, Any], list[_Page]]:
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams
    from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    try:
        doc = PDFDocument(PDFParser(io.BytesIO(data)))
        info = _info(doc)
        manager = PDFResourceManager()
        device = PDFPageAggregator(manager, laparams=LAParams())
        interpreter = PDFPageInterpreter(manager, device)
        pages: list[_Page] = []
        for number, page in enumerate(PDFPage.create_pages(doc), start=1):
            interpreter.process_page(page)
            pages.append(_page(number, device.get_result()))
    except PDFPasswordIncorrect:
        raise IngestError(rel, "encrypted PDF (opening it needs a password); save a decrypted copy") from None
    except IngestError:
        raise
    except Exception as err:  # pdfminer raises many types (PDFSyntaxError, PSEOF, KeyError, ...) on damage
        kind = "encrypted PDF" if "encrypt" in type(err).__name__.lower() else "damaged PDF"
        raise IngestError(rel, f"{kind} ({type(err).__name__}: {str(err)[:120] or 'unreadable'})") from None
    if not pages:
        raise IngestError(rel, "PDF has no pages")
    return info, pages


def _page(number: int, layout: Any) -> _Page:
    from pdfminer.layout import LTFigure, LTImage, LTTextContainer

    height = float(layout.height) or 1.0
    page = _Page(number)

    def walk(items: Any) -> None:
        for item in items:
            if isinstance(item, LTTextContainer):
                text = item.get_text()
                if text.strip():
                    page.boxes.append(_Box(text, (height - item.y1) / height, (height - item.y0) / height))
            elif isinstance(item, LTImage):
                page.has_image = True
            elif isinstance(item, LTFigure):
                walk(item)

    walk(layout)
    return page


def _info(doc: Any) -> dict[str, Any]:
    from pdfminer.pdftypes import resolve1

    out: dict[str, Any] = {}
    for entry in doc.info or []:
        for key, value in (resolve1(entry) or {}).items():
            out[str(key)] = resolve1(value)
    return out


def _meta(info: dict[str, Any], key: str) -> str:
    from pdfminer.utils import decode_text

    value = info.get(key)
    if isinstance(value, bytes):
        value = decode_text(value)
    return normalize_text(str(value)).strip() if value is not None and not isinstance(value, dict) else ""


def _pdf_date(value: str) -> str | None:
    """``D:20250314083000+00'00'`` → ``2025-03-14``."""
    m = re.match(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?", value or "")
    if not m:
        return None
    year, month, day = m.group(1), m.group(2) or "01", m.group(3) or "01"
    return f"{year}-{month}-{day}" if 1 <= int(month) <= 12 and 1 <= int(day) <= 31 else None


# --------------------------------------------------------------------------------- headers and footers


def _margin_key(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def _drop_headers_and_footers(pages: list[_Page]) -> None:
    """Drop margin boxes repeated (digits aside) on at least half the pages, and bare page numbers."""
    def in_margin(box: _Box) -> bool:
        return box.bottom <= MARGIN or box.top >= 1 - MARGIN

    seen: dict[str, set[int]] = defaultdict(set)
    for page in pages:
        for box in page.boxes:
            if in_margin(box):
                seen[_margin_key(box.text)].add(page.number)
    needed = max(2, math.ceil(len(pages) / 2))
    repeated = {key for key, on in seen.items() if len(on) >= needed}
    for page in pages:
        page.boxes = [
            b for b in page.boxes
            if not (in_margin(b) and (_margin_key(b.text) in repeated or _PAGE_NUMBER.match(b.text.strip())))
        ]


# ------------------------------------------------------------------------------------------- assembling


def _continues(before: str, after: str) -> bool:
    """The sentence runs on across the page break."""
    return bool(before) and bool(after) and not before.endswith(_CLOSES_SENTENCE) and after[0].islower()


def _assemble(pages: list[_Page]) -> tuple[str, list[int]]:
    """The document text (paragraphs separated by blank lines) and where each page starts in it."""
    text = ""
    starts: list[int] = []
    for page in pages:
        start = None
        for j, para in enumerate(page.paragraphs):
            if j == 0 and text and _continues(text, para):
                if text.endswith("-") and len(text) > 1 and text[-2].isalpha():
                    text = text[:-1]  # "nego-" | "tiations" across the page break
                    sep = ""
                else:
                    sep = " "
                start = len(text) + len(sep)
                text += sep + para
                continue
            if text:
                text += "\n\n"
            if start is None:
                start = len(text)
            text += para
        starts.append(start if start is not None else len(text))
    return text, starts


# ------------------------------------------------------------------------------------------------- OCR


def _ocr_missing(data: bytes, pages: list[_Page], rel: str, ctx: Context) -> list[int]:
    """OCR every page that has images but no text; returns the page numbers OCR'd."""
    todo = [p for p in pages if not p.paragraphs and p.has_image]
    if not todo:
        return []
    why = _ocr_unavailable(ctx.options)
    if why:
        for p in todo:
            ctx.warnings.append(f"{rel} p. {p.number}: no text layer (scanned page), not indexed: {why}")
        return []
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    done: list[int] = []
    try:
        for p in todo:
            try:
                text = _ocr_page(pdf[p.number - 1], ctx.options)
            except Exception as err:  # a page that will not render or OCR: reported, the rest goes on
                ctx.warnings.append(f"{rel} p. {p.number}: OCR failed ({type(err).__name__}: {err})")
                continue
            blocks = [normalize_text(join_lines(b)) for b in re.split(r"\n\s*\n", text)]
            p.paragraphs = [b for b in blocks if b]
            if p.paragraphs:
                p.ocr = True
                done.append(p.number)
            else:
                ctx.warnings.append(f"{rel} p. {p.number}: scanned page, OCR found no text")
    finally:
        pdf.close()
    return done


@cache
def _tesseract_version() -> str:
    """Tesseract's version, or "" when pytesseract or the tesseract binary is missing."""
    try:
        import pytesseract

        return str(pytesseract.get_tesseract_version())
    except Exception:  # ImportError, TesseractNotFoundError, a broken install
        return ""


def _ocr_unavailable(options: ReadOptions) -> str:
    if not options.ocr:
        return "OCR is turned off (setting ocr)"
    if not _tesseract_version():
        return "Tesseract is not installed (Debian: apt-get install tesseract-ocr)"
    return ""


OCR_DPI = 300


def _ocr_page(page: Any, options: ReadOptions) -> str:
    import pytesseract

    image = page.render(scale=OCR_DPI / 72).to_pil().convert("L")
    key = hashlib.sha256(
        image.tobytes() + f"{image.size}|{options.ocr_language}|{_tesseract_version()}".encode()
    ).hexdigest()
    cached = _cache_path(options.ocr_cache, key)
    if cached is not None and cached.is_file():
        return cached.read_text(encoding="utf-8")
    text = pytesseract.image_to_string(image, lang=options.ocr_language)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(cached)
    return text


def _cache_path(folder: Path | None, key: str) -> Path | None:
    return None if folder is None else Path(folder) / key[:2] / f"{key}.txt"

