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
      <segment id>/                   # another segment's arrays, the same files (an incremental build's
                                      # delta segment; the base's above are shared with the previous build)

Arrays hold a segment's postings whatever the deletions are: readers drop deleted docnums as they drop
them from Whoosh's own postings.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
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

    def every_term(self, field: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """All of a field's terms in their stored (sorted) order, with the term number of each posting and
        its docnum: a whole field in three arrays, for per-document columns built in one pass."""
        f = self._fields[field]
        starts = f.term_starts.tolist()
        terms = [f.terms[a:b].decode("utf-8") for a, b in zip(starts, starts[1:], strict=False)]
        sizes = np.diff(np.asarray(f.offsets, dtype=np.int64))
        term_of = np.repeat(np.arange(len(terms), dtype=np.int64), sizes)
        return terms, term_of, np.asarray(f.docs, dtype=np.int64)

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
    """Write the arrays of the Whoosh index in ``whoosh_dir`` into ``out``, reading every posting list back.
    False (nothing written) when the index has more than one segment or deletions: the reader then stays on
    Whoosh's own postings. A build gathers them while writing instead (:class:`PostingsCollector`)."""
    from whoosh import index as whoosh_index

    ix = whoosh_index.open_dir(str(whoosh_dir))
    try:
        with ix.reader() as reader:
            segment = getattr(reader, "segment", None)
            if not callable(segment) or reader.has_deletions():
                return False
            out.mkdir(parents=True, exist_ok=True)
            fields = _array_fields(reader.schema)
            for name, positions in fields.items():
                _save_field(out, name, _read_field(reader, name, positions=positions))
            _write_meta(out, segment().segment_id(), fields)
            return True
    finally:
        ix.close()


def _array_fields(schema: Any) -> dict[str, bool]:
    """The fields that get arrays, each with whether it has positions (schema order)."""
    fields: dict[str, bool] = {}
    for name in schema.names():
        field = schema[name]
        if name not in SKIP_FIELDS and field.indexed:
            fields[name] = bool(field.format and field.format.supports("positions"))
    return fields


def _write_meta(out: Path, segment_id: str, fields: dict[str, bool]) -> None:
    (out / META).write_text(json.dumps({"segment": segment_id, "fields": fields}), encoding="utf-8")


@dataclass
class _Lists:
    """One field's posting lists as flat arrays, terms in bytes order (what ``_save_field`` writes)."""

    terms: list[bytes]
    sizes: np.ndarray  # postings per term
    docs: np.ndarray
    weights: np.ndarray  # float64
    counts: np.ndarray | None  # positions per posting (fields with positions)
    positions: np.ndarray | None


def _read_field(reader: Any, name: str, *, positions: bool) -> _Lists:
    from index.keyword import _term_postings

    rows: list[tuple[bytes, np.ndarray, np.ndarray, list[list[int]]]] = []
    for text in reader.field_terms(name):
        ids, w = _term_postings(reader, name, text)
        runs = [list(ps) for _, ps in reader.postings(name, text).items_as("positions")] if positions else []
        rows.append((text.encode("utf-8") if isinstance(text, str) else bytes(text), ids, w, runs))
    rows.sort(key=lambda r: r[0])  # bytes order, for the bisect in ``_Field.find``
    runs = [run for r in rows for run in r[3]]
    return _Lists(
        terms=[r[0] for r in rows], sizes=np.array([len(r[1]) for r in rows], dtype=np.int64),
        docs=_cat([r[1] for r in rows], np.int64), weights=_cat([r[2] for r in rows], np.float64),
        counts=np.array([len(run) for run in runs], dtype=np.int64) if positions else None,
        positions=np.array([p for run in runs for p in run], dtype=np.int32) if positions else None,
    )


def _cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _save_field(out: Path, name: str, lists: _Lists) -> None:
    def starts(lengths: Any) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)

    weights = lists.weights
    w32 = weights.astype(np.float32)
    (out / f"{name}.terms.bin").write_bytes(b"".join(lists.terms))
    np.save(out / f"{name}.terms.npy", starts([len(t) for t in lists.terms]))
    np.save(out / f"{name}.offsets.npy", starts(lists.sizes))
    np.save(out / f"{name}.docs.npy", lists.docs.astype(np.int32))
    np.save(out / f"{name}.weights.npy", w32 if np.array_equal(w32.astype(np.float64), weights) else weights)
    if lists.counts is not None and lists.positions is not None:
        np.save(out / f"{name}.poffsets.npy", starts(lists.counts))
        np.save(out / f"{name}.positions.npy", lists.positions.astype(np.int32))


class PostingsCollector:
    """The arrays of a Whoosh index gathered while its writer writes it, instead of read back afterwards.

    ``attach`` wraps the writer's field writer (``FieldWriter.add_postings``, which receives every posting of
    the new segment as sorted ``(field, term bytes, docnum, weight, value)`` tuples): each posting is noted
    as it goes by, positions decoded with the field's own format. What a segment holds is exactly what its
    writer was handed, so ``write`` saves the same arrays ``write_postings`` reads back (weights as Whoosh
    stores them, float32). Only for a single-process writer (``procs=1``) into a new index.
    """

    def __init__(self, schema: Any):
        self._fields = {name: _Gathering(schema[name].format if positions else None)
                        for name, positions in _array_fields(schema).items()}
        self._segment: str | None = None

    def attach(self, writer: Any) -> None:
        fieldwriter = writer.fieldwriter
        add_postings = fieldwriter.add_postings

        def noting(schema: Any, lengths: Any, items: Iterable[tuple]) -> Any:
            return add_postings(schema, lengths, self._note(items))

        fieldwriter.add_postings = noting
        self._segment = writer.newsegment.segment_id()

    def _note(self, items: Iterable[tuple]) -> Iterator[tuple]:
        name, field = None, None
        for item in items:
            if item[0] != name:
                name = item[0]
                field = self._fields.get(name)
            if field is not None and item[2] >= 0:  # docnum -1: a spelling word, not a posting
                field.add(item[1], item[2], item[3], item[4])
            yield item

    def write(self, out: Path) -> None:
        """Save the gathered arrays into ``out`` (after the writer committed)."""
        if self._segment is None:
            raise RuntimeError("PostingsCollector.write before attach")
        out.mkdir(parents=True, exist_ok=True)
        for name, field in self._fields.items():
            _save_field(out, name, field.lists())
        _write_meta(out, self._segment, {name: f.format is not None for name, f in self._fields.items()})


class _Gathering:
    """One field's postings as the writer hands them over (terms ascending, docnums ascending per term)."""

    def __init__(self, fmt: Any):
        self.format = fmt  # the positions format, or None for a field without positions
        self.terms: list[bytes] = []
        self.starts: list[int] = []
        self.docs = array("q")
        self.weights = array("d")
        self.counts = array("q")
        self.positions = array("i")

    def add(self, term: bytes, docnum: int, weight: float, value: bytes) -> None:
        if not self.terms or term != self.terms[-1]:
            self.terms.append(term)
            self.starts.append(len(self.docs))
        self.docs.append(docnum)
        self.weights.append(weight)
        if self.format is not None:
            run = self.format.decode_positions(value)
            self.counts.append(len(run))
            self.positions.extend(run)

    def lists(self) -> _Lists:
        bounds = np.array([*self.starts, len(self.docs)], dtype=np.int64)
        has_positions = self.format is not None
        return _Lists(
            terms=list(self.terms), sizes=np.diff(bounds), docs=np.frombuffer(self.docs, dtype=np.int64),
            # Whoosh keeps weights as float32 (its blocks are ``array("f")``): the same rounding here
            weights=np.frombuffer(self.weights, dtype=np.float64).astype(np.float32).astype(np.float64),
            counts=np.frombuffer(self.counts, dtype=np.int64) if has_positions else None,
            positions=np.frombuffer(self.positions, dtype=np.int32) if has_positions else None,
        )


def read_segment_postings(folder: Path) -> dict[str, PostingArrays]:
    """Every segment's arrays under ``folder`` (its own and its sub-folders'), by Whoosh segment id."""
    found: dict[str, PostingArrays] = {}
    if not folder.is_dir():
        return found
    for place in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        arrays = read_postings(place)
        if arrays is not None:
            found[arrays.segment] = arrays
    return found


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
