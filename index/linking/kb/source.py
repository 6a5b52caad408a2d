"""Reading knowledge-base files one JSON object per line, compressed or not, in constant memory."""

from __future__ import annotations

import bz2
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from index.errors import PersonaeError


def open_text(path: str | Path) -> IO[str]:
    """``path`` for reading as UTF-8 text; ``.gz`` and ``.bz2`` (as the Wikidata dumps ship) decompress."""
    p = Path(path)
    if not p.is_file():
        raise PersonaeError(f"{p}: no such file")
    if p.suffix == ".gz":
        return gzip.open(p, "rt", encoding="utf-8")
    if p.suffix == ".bz2":
        return bz2.open(p, "rt", encoding="utf-8")
    return p.open(encoding="utf-8")


def json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """``(line number, object)`` for each line, or ``(line number, why it is not one)``.

    Tolerates the Wikidata dump's framing: a first line ``[``, a last line ``]`` and a comma after each
    object. Blank lines are skipped.
    """
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if text in ("", "[", "]"):
                continue
            if text.endswith(","):
                text = text[:-1]
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                yield n, f"invalid JSON ({e.msg})"
                continue
            yield (n, obj) if isinstance(obj, dict) else (n, "not a JSON object")


def first_object(path: str | Path) -> dict[str, Any] | None:
    """The first JSON object of the file (to tell its format), or None."""
    for _, obj in json_lines(path):
        if isinstance(obj, dict):
            return obj
    return None
