"""The keyword index's posting lists as flat numpy arrays, written once at build time.

Whoosh decodes a posting list a block at a time in Python (pickle, zlib, delta decoding): a word found in a
quarter of 100k paragraphs costs milliseconds on every query that uses it, and a phrase test had to walk
positions through its matchers. The build reads every posting list back from the finished (single-segment)
Whoosh index once and writes it here as arrays that are memory-mapped at query time, so the keyword leg,
entity filters, counts and the exact-phrase guard slice arrays instead. The arrays hold exactly what Whoosh
holds (docnums, weights, positions), so every score and match is the same; an index without them (or whose
segment changed) is read through Whoosh as before.

::

    postings/
      meta.json                       # {"segment": Whoosh segment id, "fields": {name: has_positions}}
      <field>.terms.bin / .terms.npy  # the field's terms (UTF-8, sorted), concatenated / start offsets
      <field>.offsets.npy             # int64: term i's postings are docs[offsets[i]:offsets[i + 1]]
      <field>.docs.npy                # int32 docnums, ascending within a term
      <field>.weights.npy             # float32 (float64 if a weight is not exactly representable)
      <field>.poffsets.npy, <field>.positions.npy   # fields with positions: int32 positions per posting
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

META = "meta.json"
SKIP_FIELDS = ("id",)  # one term per paragraph, never queried by term


@dataclass
class _Field:
    terms: bytes
    term_starts: np.ndarray  # int64, len(terms) + 1
    offsets: np.ndarray
    docs: np.ndarray
    weights: np.ndarray
    poffsets: np.ndarray | None
    positions: np.ndarray | None

    def find(self, text: str | bytes) -> int:
        """The term's ordinal, or -1."""
        key = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        starts, blob = self.term_starts, self.terms
        lo, hi = 0, len(starts) - 1
        while lo < hi:  # bisect over the concatenated, sorted terms
            mid = (lo + hi) // 2
            if blob[starts[mid] : starts[mid + 1]] < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(starts) - 1 and blob[starts[lo] : starts[lo + 1]] == key:
            return lo
        return -1


class PostingArrays:
    """One Whoosh segment's posting lists (see the module docstring), memory-mapped."""

    def __init__(self, segment: str, fields: dict[str, _Field]):
        self.segment = segment
        self._fields = fields

    def has(self, field: str) -> bool:
        return field in self._fields

    def postings(self, field: str, text: str | bytes) -> tuple[np.ndarray, np.ndarray]:
        """(docnums int64, weights float64) of a term of a stored field (empty when the term is absent)."""
        f = self._fields[field]
        i = f.find(text)
        if i < 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        lo, hi = int(f.offsets[i]), int(f.offsets[i + 1])
        return f.docs[lo:hi].astype(np.int64), f.weights[lo:hi].astype(np.float64)

    def phrase_docs(self, field: str, words: list[bytes], docnums: np.ndarray) -> np.ndarray:
        """The docnums (of sorted ``docnums``) where ``words`` stand at consecutive positions: a phrase
        with slop 1, which is what Whoosh's span test accepts at that slop."""
        f = self._fields[field]
        keys: np.ndarray | None = None
        for shift, word in enumerate(words):
            docs, at = self._runs(field, word, docnums)
            lo = np.asarray(f.poffsets[at], dtype=np.int64)
            counts = np.asarray(f.poffsets[at + 1], dtype=np.int64) - lo
            first = np.cumsum(counts) - counts  # where each document's positions start in the gathered run
            gathered = f.positions[np.repeat(lo - first, counts) + np.arange(int(counts.sum()))]
            # (document, position the phrase would start at) as one int64 key
            start = gathered.astype(np.int64) - shift
            here = (np.repeat(docs, counts) * (1 << 32) + start)[start >= 0]
            keys = np.unique(here) if keys is None else np.intersect1d(keys, here)
            if not len(keys):
                break
        return np.unique(keys >> 32) if keys is not None else docnums[:0]

    def _runs(self, field: str, text: bytes, docnums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the docnums of ``docnums`` holding the term, the index of each one's posting)."""
        f = self._fields[field]
        i = f.find(text)
        if i < 0 or f.poffsets is None:
            return docnums[:0], docnums[:0]
        lo, hi = int(f.offsets[i]), int(f.offsets[i + 1])
        docs = f.docs[lo:hi]
        at = np.searchsorted(docs, docnums)
        present = at < len(docs)
        present[present] = docs[at[present]] == docnums[present]
        return docnums[present], at[present] + lo

    def positions(self, field: str, text: str | bytes, docnums: np.ndarray) -> list[list[int] | None]:
        """The term's positions in each of ``docnums`` (None where the document does not hold it)."""
        f = self._fields[field]
        i = f.find(text)
        if i < 0 or f.poffsets is None or f.positions is None:
            return [None] * len(docnums)
        lo, hi = int(f.offsets[i]), int(f.offsets[i + 1])
        docs = f.docs[lo:hi]
        at = np.searchsorted(docs, docnums)
        at_ok = np.minimum(at, max(len(docs) - 1, 0))
        present = (at < len(docs)) & (docs[at_ok] == docnums) if len(docs) else np.zeros(len(docnums), bool)
        out: list[list[int] | None] = []
        for j, ok in zip((at + lo).tolist(), present.tolist(), strict=True):
            out.append(f.positions[f.poffsets[j] : f.poffsets[j + 1]].tolist() if ok else None)
        return out


def write_postings(whoosh_dir: Path, out: Path) -> bool:
    """Write the arrays of the Whoosh index in ``whoosh_dir`` into ``out``. False (nothing written) when the
    index has more than one segment or deletions: the reader then stays on Whoosh's own postings."""
    from whoosh import index as whoosh_index

    ix = whoosh_index.open_dir(str(whoosh_dir))
    try:
        with ix.reader() as reader:
            segment = getattr(reader, "segment", None)
            if not callable(segment) or reader.has_deletions():
                return False
            out.mkdir(parents=True, exist_ok=True)
            fields: dict[str, bool] = {}
            for name in reader.schema.names():
                field = reader.schema[name]
                if name in SKIP_FIELDS or not field.indexed:
                    continue
                fields[name] = bool(field.format and field.format.supports("positions"))
                _write_field(reader, name, out, positions=fields[name])
            (out / META).write_text(json.dumps({"segment": segment().segment_id(), "fields": fields}),
                                    encoding="utf-8")
            return True
    finally:
        ix.close()


def _write_field(reader: Any, name: str, out: Path, *, positions: bool) -> None:
    from index.keyword import _term_postings

    rows: list[tuple[bytes, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    no_pos = np.zeros(0, dtype=np.int32)
    for text in reader.field_terms(name):
        ids, w = _term_postings(reader, name, text)
        counts, pos = np.zeros(0, dtype=np.int64), no_pos
        if positions:
            runs = [ps for _, ps in reader.postings(name, text).items_as("positions")]
            counts = np.array([len(r) for r in runs], dtype=np.int64)
            pos = np.array([p for r in runs for p in r], dtype=np.int32)
        rows.append((text.encode("utf-8") if isinstance(text, str) else bytes(text), ids, w, counts, pos))
    rows.sort(key=lambda r: r[0])  # bytes order, for the bisect in ``_Field.find``

    def cat(i: int, dtype: Any) -> np.ndarray:
        return np.concatenate([r[i] for r in rows]).astype(dtype) if rows else np.zeros(0, dtype=dtype)

    def starts(lengths: list[int] | np.ndarray) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    weights = cat(2, np.float64)
    w32 = weights.astype(np.float32)
    (out / f"{name}.terms.bin").write_bytes(b"".join(r[0] for r in rows))
    np.save(out / f"{name}.terms.npy", starts([len(r[0]) for r in rows]))
    np.save(out / f"{name}.offsets.npy", starts([len(r[1]) for r in rows]))
    np.save(out / f"{name}.docs.npy", cat(1, np.int32))
    np.save(out / f"{name}.weights.npy", w32 if np.array_equal(w32.astype(np.float64), weights) else weights)
    if positions:
        np.save(out / f"{name}.poffsets.npy", starts(cat(3, np.int64)))
        np.save(out / f"{name}.positions.npy", cat(4, np.int32))


def read_postings(folder: Path) -> PostingArrays | None:
    """The arrays in ``folder``, memory-mapped; None when the folder is absent (older builds, tests that
    write a bare Whoosh index)."""
    meta_path = folder / META
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    fields: dict[str, _Field] = {}
    for name, has_positions in meta["fields"].items():
        suffixes = ("offsets", "docs", "weights", *(("poffsets", "positions") if has_positions else ()))
        # plain ndarray views of the maps: slicing a ``np.memmap`` costs a Python-level finaliser per slice
        arr = {suffix: np.asarray(np.load(folder / f"{name}.{suffix}.npy", mmap_mode="r"))
               for suffix in suffixes}
        fields[name] = _Field(
            terms=(folder / f"{name}.terms.bin").read_bytes(),
            term_starts=np.load(folder / f"{name}.terms.npy"),
            offsets=arr["offsets"], docs=arr["docs"], weights=arr["weights"],
            poffsets=arr.get("poffsets"), positions=arr.get("positions"),
        )
    return PostingArrays(meta["segment"], fields)
