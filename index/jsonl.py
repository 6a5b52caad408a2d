"""JSON lines, read and written one way everywhere (build parts, backends, evaluation inputs, benchmarks).

The corpus reader in ``index/documents.py`` has its own: it reports bad lines as skipped documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class JsonlError(ValueError):
    """A line that is not a JSON object; ``str(err)`` names ``path:line`` and the reason."""


def read_jsonl_numbered(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; raises ``JsonlError`` at the first bad one."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as err:
                raise JsonlError(f"{path}:{n}: invalid JSON ({getattr(err, 'msg', err)})") from None
            if not isinstance(obj, dict):
                raise JsonlError(f"{path}:{n}: expected a JSON object")
            yield n, obj


def read_jsonl(path: Path | str) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file, blank lines skipped."""
    for _, obj in read_jsonl_numbered(path):
        yield obj


def write_jsonl(path: Path | str, rows: Iterable[Any]) -> None:
    """One compact JSON value a line, UTF-8 kept as is."""
    with Path(path).open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
