"""Word .docx through python-docx: paragraphs and tables in body order, headings, core properties."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from index.errors import IngestError
from index.readers import Context, Source
from index.readers.common import fingerprint, normalize_text, title_from_text
from index.records import Document


def read_docx(source: Source, ctx: Context) -> Iterator[Document]:
    import docx

    data = source.read_bytes()
    try:
        word = docx.Document(source.open())
    except Exception as err:  # zipfile.BadZipFile, KeyError (missing part), lxml errors on damaged files
        raise IngestError(source.rel, f"damaged .docx ({type(err).__name__}: {str(err)[:120]})") from None
    blocks: list[str] = []
    heading = ""
    for item in word.iter_inner_content():
        for block, style in _blocks(item):
            if block:
                blocks.append(block)
                if not heading and style.startswith(("title", "heading")):
                    heading = block
    text = normalize_text("\n\n".join(blocks))
    if not text.strip():
        raise IngestError(source.rel, "no text in this .docx")
    props = word.core_properties
    title = normalize_text(props.title or "").replace("\n", " ").strip()
    in_text = True
    if not title:
        if heading and text.startswith(heading) and "\n" not in heading:
            title = heading
        else:
            title, in_text = title_from_text(text)
    metadata = {k: v for k, v in {"subject": props.subject, "keywords": props.keywords,
                                  "last_modified_by": props.last_modified_by}.items() if v}
    created = props.created or props.modified
    yield Document(
        id=source.rel, title=title, text=text, date=created.date().isoformat() if created else None,
        byline=props.author or None, path=source.rel, fingerprint=fingerprint(data), title_in_text=in_text,
        metadata=metadata,
    )


def _blocks(item: Any) -> Iterator[tuple[str, str]]:
    """(text, lower-case style name) of a paragraph, or one block per table row ("cell | cell")."""
    if hasattr(item, "rows"):
        for row in item.rows:
            cells: list[str] = []
            for cell in row.cells:
                value = " ".join(cell.text.split())
                if value and (not cells or cells[-1] != value):  # merged cells repeat their text
                    cells.append(value)
            yield " | ".join(cells), "table"
        return
    style = (item.style.name if item.style is not None else "") or ""
    yield " ".join(item.text.split()), style.lower()
