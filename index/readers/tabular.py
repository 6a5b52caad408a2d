"""JSONL and CSV, streamed a record at a time: memory stays flat however large the file.

One record is one document. ``id`` (JSONL also takes BEIR's ``_id``; CSV falls back to ``file:row``),
the text column (required), and optional title and date columns, named by ``ReadOptions``. Without a
title the first line of the text stands in for it, and the text keeps every word.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

from index.errors import IngestError
from index.readers import Context, Source
from index.readers.common import (
    decode_bytes,
    fingerprint,
    iso_date,
    no_surrogates,
    normalize_text,
    title_from_text,
)
from index.records import Document

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # one CSV cell may hold a whole long document


def read_jsonl(source: Source, ctx: Context) -> Iterator[Document]:
    opts = ctx.options
    any_line = False
    with source.open() as f:
        for lineno, raw in enumerate(f, start=1):
            raw = raw.removesuffix(b"\n")
            if not raw.strip():
                continue
            any_line = True
            where = f"{source.rel}:{lineno}"
            try:
                obj = json.loads(decode_bytes(raw, where, ctx.warnings))
            except IngestError as err:
                ctx.skipped.append(err)
                continue
            except ValueError as err:
                ctx.skipped.append(IngestError(where, f"malformed JSON ({err})"))
                continue
            if not isinstance(obj, dict):
                ctx.skipped.append(IngestError(where, "expected a JSON object"))
                continue
            doc_id = obj.get(opts.id_column, obj.get("_id"))
            try:
                yield _record(obj, doc_id, where, raw, ctx, id_name=f"{opts.id_column!r} (or BEIR '_id')")
            except IngestError as err:
                ctx.skipped.append(err)
    if not any_line:
        raise IngestError(source.rel, "empty file")


def read_csv(source: Source, ctx: Context) -> Iterator[Document]:
    opts = ctx.options
    with source.open() as f:
        text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="replace", newline="")
        rows = csv.DictReader(text)
        columns = rows.fieldnames or []
        if not columns:
            raise IngestError(source.rel, "empty file")
        if opts.text_column not in columns:
            raise IngestError(source.rel, f"no {opts.text_column!r} column (columns: "
                                          f"{', '.join(map(str, columns))}); name it with --text-column")
        has_id = opts.id_column in columns
        for rowno, row in enumerate(rows, start=2):  # row 1 is the header
            where = f"{source.rel}:{rowno}"
            doc_id = row.get(opts.id_column) if has_id else f"{source.rel}:{rowno}"
            raw = "\x1f".join(str(v) for v in row.values()).encode("utf-8", "surrogatepass")
            try:
                yield _record(row, doc_id, where, raw, ctx, id_name=repr(opts.id_column))
            except IngestError as err:
                ctx.skipped.append(err)


def _record(
    obj: dict[str, Any], doc_id: Any, where: str, raw: bytes, ctx: Context, *, id_name: str
) -> Document:
    opts = ctx.options
    if doc_id is None or str(doc_id).strip() == "":
        raise IngestError(where, f"missing {id_name}")
    text = _column(obj, opts.text_column, "text")
    if isinstance(text, str):
        text = normalize_text(text)
    if not isinstance(text, str) or not text.strip():
        raise IngestError(where, f"missing or empty {opts.text_column!r}")
    title = _column(obj, opts.title_column, "title") or ""
    if not isinstance(title, str):
        raise IngestError(where, f"{opts.title_column!r} must be a string")
    title = normalize_text(title).replace("\n", " ")
    in_text = True
    if not title:
        title, in_text = title_from_text(text)
    opt = {k: (no_surrogates(str(obj[k])) if obj.get(k) is not None else None) for k in ("url", "source")}
    date = _column(obj, opts.date_column, "date")
    date = no_surrogates(str(date)) if date is not None else None
    author = obj.get("author")
    return Document(
        id=no_surrogates(str(doc_id).strip()),
        title=title,
        text=text,
        date=iso_date(date) or date,
        url=opt["url"],
        source=opt["source"],
        byline=no_surrogates(author) if isinstance(author, str) else None,
        path=where,
        fingerprint=fingerprint(raw),
        title_in_text=in_text,
    )


def _column(obj: dict[str, Any], name: str, default: str) -> Any:
    """The named column; a record without it falls back to the usual name (a JSONL beside a CSV)."""
    return obj[name] if name in obj else obj.get(default)
