"""Text helpers every reader shares: normalisation, decoding, fingerprints, titles, dates in headers."""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from datetime import date, datetime

from index.errors import IngestError


def normalize_text(text: str) -> str:
    """NFC, ``\\n`` line ends, no NULs or other C0 controls except tab and newline, no trailing spaces."""
    text = no_surrogates(text)  # JSON "\ud800" escapes decode to lone surrogates; UTF-8 cannot hold them
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = text.replace("\u00a0", " ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # category Cc (C0, DEL, C1) but tab and newline


def no_surrogates(text: str) -> str:
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


def fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


MAX_TITLE_LINE = 200


def title_from_text(text: str) -> tuple[str, bool]:
    """A title for a document that has none: ``(title, title_in_text)``.

    The first line is the title (and not a paragraph) when it is short, not the whole text and not a
    sentence, the way articles and reports open with a headline. Otherwise (a one-line record, a first line
    that is a paragraph) the title is a shortened copy of the first line and the text keeps every word.
    """
    line = first_line(text)
    sentence = line.endswith((".", "!", "?")) and len(line) > 60  # a paragraph's opening, not a headline
    if line and len(line) <= MAX_TITLE_LINE and line != text.strip() and not sentence:
        return line, True
    return shorten(line, 120), False


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:") + "…"


# ------------------------------------------------------------------------------------ header metadata

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_DATE_PATTERNS = [
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "%Y-%m-%d"),
    (re.compile(rf"\b(?:{_MONTHS})[a-z]*\.? \d{{1,2}},? \d{{4}}\b", re.I), None),
    (re.compile(rf"\b\d{{1,2}} (?:{_MONTHS})[a-z]*\.? \d{{4}}\b", re.I), None),
]
BYLINE = re.compile(r"^(?:by|from)\s+([A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){0,3})\s*$", re.I)
DATELINE = re.compile(r"^(?:updated|published|posted|date)\s*:?\s*(.*)$", re.I)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if _ISO_DAY.match(value):  # the common case, without strptime (what the first format would give)
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value[:10]).isoformat()
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
            iso = iso_date(match.group(0))
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
        if m := BYLINE.match(line):
            meta.setdefault("byline", m.group(1))
        elif m := DATELINE.match(line):
            if date := find_date(m.group(1)):
                meta.setdefault("date", date)
        elif (date := find_date(line)) and len(line) <= 40:
            meta.setdefault("date", date)
    return meta


def is_header_block(block: str) -> bool:
    """A short block of byline/date lines ("By Jane Doe" / "Updated: Feb 17, 2025"): metadata, not text."""
    lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
    return (
        bool(lines)
        and len(lines) <= 3
        and all(
            len(ln) <= 80 and (BYLINE.match(ln) or DATELINE.match(ln) or (len(ln) <= 40 and find_date(ln)))
            for ln in lines
        )
    )


_HYPHEN_BREAK = re.compile(r"([^\W\d_])[-\u00ad][ \t]*\n[ \t]*([^\W\d_])")
_SOFT_HYPHEN = "\u00ad"


def _dehyphenate(m: re.Match[str]) -> str:
    return m.group(1) + m.group(2) if m.group(2).islower() else m.group(0)


def join_lines(text: str) -> str:
    """The lines of one paragraph as laid out on a page, joined: "nego-\\ntiations" → "negotiations".

    A hyphen at a line end is dropped when a letter precedes it and a lower-case letter follows on the
    next line (the typesetter's hyphenation); other line breaks become spaces.
    """
    text = _HYPHEN_BREAK.sub(_dehyphenate, text)
    text = text.replace(_SOFT_HYPHEN, "")
    return " ".join(part.strip() for part in text.split("\n") if part.strip())
