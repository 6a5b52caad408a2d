"""Exports of a result set: CSV and JSON Lines, one row per paragraph shown.

CSV cells that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return) get a leading apostrophe (OWASP's advice against CSV injection); JSONL is left as is.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from html import unescape
from typing import Any

from search.results import Hit

COLUMNS = ("paragraph_id", "doc_id", "date", "title", "score", "snippet", "entity_ids", "entity_names")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_TAG = re.compile(r"<[^>]+>")


def row(hit: Hit, entity_name: Callable[[str], str]) -> dict[str, Any]:
    """The exported fields of one hit; ``snippet`` is the snippet's text (no markup)."""
    return {
        "paragraph_id": hit.paragraph_id, "doc_id": hit.doc_id, "date": hit.date, "title": hit.title,
        "score": hit.score, "snippet": unescape(_TAG.sub("", hit.snippet)),
        "entity_ids": list(hit.entities), "entity_names": [entity_name(e) for e in hit.entities],
    }


def safe_cell(value: Any) -> str:
    text = "" if value is None else "; ".join(value) if isinstance(value, list) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([safe_cell(r[c]) for c in COLUMNS])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for r in rows:
        yield json.dumps(r, ensure_ascii=False) + "\n"
