"""Paragraph ids by row number, held in a few numpy arrays instead of a Python list and dict.

A server worker needs the id of every row of the vector index and of every docnum of the keyword index,
and the way back. As a list of ``str`` and a ``dict`` that is ~80 bytes an id plus ~100 bytes an entry,
twice over (one table per leg) in every worker; here it is the UTF-8 bytes of the ids in one buffer, their
end offsets, and their hashes sorted for lookup: ~40 bytes an id.

Lookups go through Python's ``hash`` of the id (stable within a process, which is all a table lives in):
``searchsorted`` finds the rows with that hash, and the id itself is compared, so a collision costs a
second look, never a wrong row. The empty id stands for a dead row (deleted or replaced) and is never
found.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np


class IdTable:
    """An immutable sequence of ids (``table[row]``, ``len``, iteration) with ``rows_of`` for the way back."""

    def __init__(self, ids: Iterable[str]):
        ids = ids if isinstance(ids, list) else list(ids)
        blob, starts, lengths = _encoded(ids)
        self._set(blob, starts + lengths, np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)))

    def _set(self, blob: bytes, ends: np.ndarray, hashes: np.ndarray) -> None:
        """The table from its bytes, each id's end offset and each row's hash (in row order)."""
        self._blob, self._ends = blob, ends
        self._order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[self._order]
        self.live = int(np.count_nonzero(np.diff(self._ends, prepend=0)))  # rows with an id

    @classmethod
    def concat(cls, tables: Sequence[IdTable]) -> IdTable:
        """One table of ``tables`` one after the other (a keyword index's segments), from their bytes and
        hashes: no id is decoded or hashed again."""
        if len(tables) == 1:
            return tables[0]
        starts = np.cumsum([0] + [len(t._blob) for t in tables[:-1]])
        hashes = []
        for t in tables:
            in_rows = np.empty_like(t._hashes)
            in_rows[t._order] = t._hashes
            hashes.append(in_rows)
        table = cls.__new__(cls)
        table._set(b"".join(t._blob for t in tables),
                   np.concatenate([t._ends + start for t, start in zip(tables, starts, strict=True)]),
                   np.concatenate(hashes))
        return table

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, row: int) -> str: ...
    @overload
    def __getitem__(self, row: slice) -> list[str]: ...

    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return self.take(range(*row.indices(len(self))))
        row = int(row)
        if row < 0:
            row += len(self._ends)
        start = int(self._ends[row - 1]) if row > 0 else 0
        return self._blob[start : int(self._ends[row])].decode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[str]:
        blob, start = self._blob, 0
        for end in self._ends.tolist():
            yield blob[start:end].decode("utf-8", "surrogatepass")
            start = end

    def take(self, rows: Iterable[int]) -> list[str]:
        """The ids of ``rows``, in their order."""
        return [self[row] for row in rows]

    def row(self, pid: str) -> int:
        """The first row holding ``pid``; -1 when none does (always for the empty id)."""
        if not pid:
            return -1
        h = hash(pid)
        lo = int(np.searchsorted(self._hashes, h, side="left"))
        while lo < len(self._hashes) and int(self._hashes[lo]) == h:
            row = int(self._order[lo])
            if self[row] == pid:
                return row
            lo += 1
        return -1

    def rows_of(self, pids: Iterable[str]) -> np.ndarray:
        """``row`` of each of ``pids`` (int64; -1 where absent), vectorised: hashes are matched, then the
        bytes of each matched id compared with the id asked for."""
        pids = pids if isinstance(pids, list) else list(pids)
        out = np.full(len(pids), -1, dtype=np.int64)
        if not len(self._hashes) or not pids:
            return out
        hashes = np.fromiter(map(hash, pids), dtype=np.int64, count=len(pids))
        by_hash = np.argsort(hashes, kind="stable")  # sorted queries walk the table in order: cache-friendly
        at = np.empty(len(pids), dtype=np.int64)
        at[by_hash] = np.searchsorted(self._hashes, hashes[by_hash], side="left")
        at = np.minimum(at, len(self._hashes) - 1)
        asked_ids = np.fromiter(map(bool, pids), dtype=bool, count=len(pids))  # the empty id is never found
        hit = np.flatnonzero((self._hashes[at] == hashes) & asked_ids)
        rows = self._order[at[hit]]
        asked = _encoded([pids[i] for i in hit.tolist()])
        same = _equal_bytes((np.frombuffer(self._blob, np.uint8), self._starts(rows), self._lengths(rows)),
                            (np.frombuffer(asked[0], np.uint8), *asked[1:]))
        out[hit[same]] = rows[same]
        for i in hit[~same].tolist():  # a hash shared by two ids: look past the first
            out[i] = self.row(pids[i])
        return out

    def _starts(self, rows: np.ndarray) -> np.ndarray:
        return np.where(rows > 0, self._ends[np.maximum(rows - 1, 0)], 0)

    def _lengths(self, rows: np.ndarray) -> np.ndarray:
        return self._ends[rows] - self._starts(rows)



def _encoded(ids: list[str]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """(UTF-8 bytes of ``ids`` one after the other, each one's start, each one's length in bytes)."""
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    blob = "".join(ids).encode("utf-8", "surrogatepass")
    if len(blob) != int(lengths.sum()):  # not all ASCII: lengths in bytes, one id at a time
        lengths = np.fromiter((len(pid.encode("utf-8", "surrogatepass")) for pid in ids), dtype=np.int64,
                              count=len(ids))
    return blob, np.cumsum(lengths) - lengths, lengths


def _equal_bytes(a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray],
                 chunk: int = 65536) -> np.ndarray:
    """Whether the ``i``-th string of ``a`` equals the ``i``-th of ``b``; each side is (bytes as uint8,
    starts, lengths). Compared as padded byte matrices, ``chunk`` strings at a time."""
    (blob_a, start_a, len_a), (blob_b, start_b, len_b) = a, b
    out = len_a == len_b
    for lo in range(0, len(out), chunk):
        sl = slice(lo, lo + chunk)
        width = int(len_a[sl].max(initial=0))
        cols = np.arange(width)
        valid = cols < len_a[sl, None]
        for blob, start in ((blob_a, start_a), (blob_b, start_b)):
            idx = np.minimum(start[sl, None] + cols, max(len(blob) - 1, 0))
            mat = np.where(valid, blob[idx] if len(blob) else 0, 0)
            if blob is blob_a:
                first = mat
        out[sl] &= (first == mat).all(axis=1)
    return out
