"""Plain text and Markdown: the first short line is the title; a byline/date block under it is metadata."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from index.errors import IngestError
from index.readers import Context, Source
from index.readers.common import decode_bytes, fingerprint, header_metadata, normalize_text, title_from_text
from index.records import Document

_CHAR_REF_RE = re.compile(r"&(?:#\d{2,7}|#x[0-9a-fA-F]{2,6}|amp|quot|apos|lt|gt|nbsp|[lr][sd]quo|[mn]dash);")


def read_text(source: Source, ctx: Context) -> Iterator[Document]:
    raw = source.read_bytes()
    if not raw.strip():
        raise IngestError(source.rel, "empty file")
    text = normalize_text(decode_bytes(raw, source.rel, ctx.warnings))
    if _CHAR_REF_RE.search(text):  # text saved from a web page keeps its references ("AT&amp;T", "&#8217;")
        text = html.unescape(text)
    if not text.strip():
        raise IngestError(source.rel, "empty file (only whitespace or control characters)")
    title, in_text = title_from_text(text)
    if source.suffix.lower() in (".md", ".markdown"):
        title = re.sub(r"^#+\s*", "", title).strip()
    meta = header_metadata(text)
    yield Document(
        id=source.rel, title=title, text=text, date=meta.get("date"), byline=meta.get("byline"),
        path=source.rel, fingerprint=fingerprint(raw), title_in_text=in_text,
    )
