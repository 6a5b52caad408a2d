"""Near-duplicate documents (wire copies, lightly edited re-publications), found at build time.

Each document's title and text become a set of word 5-grams ("shingles"); ``datasketch`` MinHash LSH
proposes pairs whose estimated Jaccard similarity may pass ``THRESHOLD``, and each proposed pair is kept
only if the exact Jaccard similarity of the two shingle sets passes it too (LSH alone lets some lower
pairs through). Kept pairs are joined into clusters (union-find). The build writes the clusters to
``duplicates.json``; the query side folds a cluster's lower-ranked copies into its best-ranked one
(``duplicates=collapse``), and every copy stays indexed and searchable.

Incremental: LSH proposes two documents when they share a band (``datasketch.MinHashLSH``'s banding of the
signature: ``b`` bands of ``r`` hash values), and whether a pair is kept depends on its two texts alone. So
a build keeps each document's band keys (a 64-bit hash of each band) and a digest of its text in
``duplicates-keys.npz``, and its kept pairs in ``duplicates.json``. The next build shingles and MinHashes
only the documents that are new or changed, looks their band keys up against every document's (per band,
in numpy: a bitmap of their keys' low bits gathered over all keys, then a binary search), confirms those
candidates with the exact Jaccard, and takes the pairs between two unchanged documents from the previous
``duplicates.json``. A full build is the same code with nothing to reuse, so both give the same pairs and
clusters. (Two different bands hash to one key with probability 2**-64: such a pair is still only kept if
its exact Jaccard passes.)
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index import layout
from index.groups import connected_groups
from index.records import Document

THRESHOLD = 0.7  # Jaccard of word 5-gram sets; judged on BBC pairs (benchmarks/duplicate_pairs.py)
SHINGLE = 5
NUM_PERM = 128
MIN_SHINGLES = 8  # shorter texts (a headline and a line) are never called duplicates
SEED = 1  # of MinHash's permutations
KEYS_SCHEME = 1  # how band keys and text digests are computed; another value makes the next build full
CHUNK = 1000  # documents shingled and MinHashed at a time: memory does not grow with the corpus
_WORD = re.compile(r"\w+")


def shingles(text: str, size: int = SHINGLE) -> set[str]:
    words = _WORD.findall(text.casefold())
    return {" ".join(words[i : i + size]) for i in range(max(0, len(words) - size + 1))}


@dataclass(frozen=True)
class Duplicates:
    """One build's near-duplicates, and what finding them cost."""

    clusters: list[list[str]]  # two or more ids each, sorted; clusters sorted by first id
    pairs: list[tuple[str, str]]  # (a, b), a < b: exact Jaccard >= threshold among LSH candidates; sorted
    hashed: int = 0  # documents shingled in this build (new or changed ones; MinHashed if long enough)
    reused: int = 0  # documents whose band keys came from the previous build


@dataclass(eq=False)
class BandKeys:
    """Per document (in corpus order): id, text digest, whether it has enough shingles, its band keys."""

    params: dict[str, Any]
    ids: list[str]
    digests: np.ndarray  # (n, 2) uint64: 128 bits of the text's sha256
    eligible: np.ndarray  # (n,) bool: at least MIN_SHINGLES shingles
    keys: np.ndarray  # (n, bands) uint64; zero rows where not eligible
    _rows: dict[str, int] | None = field(default=None, repr=False)

    def row_of(self) -> dict[str, int]:
        if self._rows is None:
            self._rows = {doc_id: i for i, doc_id in enumerate(self.ids)}
        return self._rows

    def reuse(self, before: BandKeys) -> np.ndarray:
        """Take ``before``'s eligibility and band keys for documents it holds with the same id and text
        digest; returns which rows it filled in."""
        rows = before.row_of()
        at = np.array([rows.get(doc_id, -1) for doc_id in self.ids], dtype=np.int64)
        known = np.flatnonzero(at >= 0)
        known = known[(before.digests[at[known]] == self.digests[known]).all(axis=1)]
        self.keys[known] = before.keys[at[known]]
        self.eligible[known] = before.eligible[at[known]]
        reused = np.zeros(len(self.ids), dtype=bool)
        reused[known] = True
        return reused

    def save(self, path: Path) -> None:
        encoded = [i.encode("utf-8", "surrogatepass") for i in self.ids]
        ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        with path.open("wb") as fh:
            np.savez(fh, params=np.array(json.dumps(self.params, sort_keys=True)),
                     ids=np.frombuffer(b"".join(encoded), dtype=np.uint8), id_ends=ends,
                     digests=self.digests, eligible=self.eligible, keys=self.keys)

    @classmethod
    def load(cls, path: Path) -> BandKeys:
        with np.load(path, allow_pickle=False) as z:
            blob, ends = z["ids"].tobytes(), z["id_ends"].tolist()
            ids = [blob[s:e].decode("utf-8", "surrogatepass") for s, e in zip([0, *ends], ends, strict=False)]
            keys = cls(json.loads(str(z["params"])), ids, z["digests"], z["eligible"], z["keys"])
        n, bands = len(ids), keys.params.get("bands")
        if (keys.digests.shape, keys.eligible.shape, keys.keys.shape) != ((n, 2), (n,), (n, bands)):
            raise ValueError(f"{path}: arrays of other shapes than {n} documents and {bands} bands")
        return keys


def lsh_params(threshold: float = THRESHOLD, num_perm: int = NUM_PERM) -> dict[str, Any]:
    """What band keys depend on; a previous build's keys are reused only under equal params."""
    import datasketch
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, 0.5, 0.5)  # what MinHashLSH(threshold, num_perm) uses
    return {"threshold": threshold, "shingle": SHINGLE, "num_perm": num_perm, "min_shingles": MIN_SHINGLES,
            "seed": SEED, "bands": bands, "rows": rows, "scheme": KEYS_SCHEME,
            "datasketch": datasketch.__version__}


def find_clusters(docs: Iterable[tuple[str, str]], *, threshold: float = THRESHOLD) -> list[list[str]]:
    """Clusters (two or more ids, sorted; clusters sorted by first id) of near-duplicate ``(id, text)``."""
    pairs = list(docs)
    return detect([i for i, _ in pairs], lambda k: pairs[k][1], threshold=threshold)[0].clusters


def detect(
    ids: Sequence[str],
    text: Callable[[int], str],
    previous: tuple[BandKeys, Iterable[tuple[str, str]]] | None = None,
    *,
    threshold: float = THRESHOLD,
) -> tuple[Duplicates, BandKeys]:
    """Near-duplicates among documents ``ids`` (unique) whose texts ``text(k)`` gives, and the band keys
    for the next build. Texts are asked for when needed (never all held at once): every one for its
    digest, then those shingled.

    ``previous`` is a former run's band keys and kept pairs: under the same ``lsh_params``, a document
    whose id and text digest it holds is not shingled or MinHashed again, and a pair between two such
    documents is taken from its pairs instead of being confirmed again."""
    if len(set(ids)) != len(ids):
        raise ValueError("near-duplicate detection needs unique document ids")
    params = lsh_params(threshold)
    table = BandKeys(params, list(ids), _digests(text(k) for k in range(len(ids))),
                     np.zeros(len(ids), dtype=bool), np.zeros((len(ids), params["bands"]), dtype=np.uint64))
    reused = np.zeros(len(ids), dtype=bool)
    if previous is not None and previous[0].params == params:
        reused = table.reuse(previous[0])
    fresh = np.flatnonzero(~reused)
    for start in range(0, len(fresh), CHUNK):
        _hash(table, text, fresh[start : start + CHUNK])
    pairs = _confirmed(table, text, fresh[table.eligible[fresh]], threshold)
    if previous is not None and reused.any():
        unchanged = {ids[k] for k in np.flatnonzero(reused).tolist()}
        pairs.update((a, b) for a, b in previous[1] if a in unchanged and b in unchanged)
    result = Duplicates(_clusters(pairs), sorted(pairs), hashed=len(fresh), reused=int(reused.sum()))
    return result, table


def _hash(table: BandKeys, text: Callable[[int], str], rows: np.ndarray) -> None:
    """Shingle and MinHash documents ``rows``, filling in their eligibility and band keys."""
    sets = {k: sh for k in rows.tolist() if len(sh := shingles(text(k))) >= MIN_SHINGLES}
    if sets:
        at = np.fromiter(sets, dtype=np.int64, count=len(sets))
        table.eligible[at] = True
        table.keys[at] = _band_keys(list(sets.values()), table.params)


def _confirmed(table: BandKeys, text: Callable[[int], str], queries: np.ndarray,
               threshold: float) -> set[tuple[str, str]]:
    """Pairs of ``queries`` with any eligible document, sharing a band, whose exact Jaccard passes."""
    pool = np.flatnonzero(table.eligible)
    sets: dict[int, set[str]] = {}
    pairs: set[tuple[str, str]] = set()
    for i, j in _candidates(table.keys[pool], np.searchsorted(pool, queries)).tolist():
        a, b = int(pool[i]), int(pool[j])
        for k in (a, b):
            if k not in sets:
                sets[k] = shingles(text(k))
        if _jaccard(sets[a], sets[b]) >= threshold:
            pairs.add((min(table.ids[a], table.ids[b]), max(table.ids[a], table.ids[b])))
    return pairs


def _digests(texts: Iterable[str]) -> np.ndarray:
    """(n, 2) uint64: the first 128 bits of each text's sha256 (the fastest of hashlib's here)."""
    raw = b"".join(hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest()[:16] for t in texts)
    return np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)


def _band_keys(sets: Sequence[set[str]], params: dict[str, Any]) -> np.ndarray:
    """(n, bands) uint64: each band of ``r`` MinHash values (``MinHashLSH``'s ``hashranges``) hashed to
    64 bits: a chain of the splitmix64 finaliser over the band's values, vectorised over documents."""
    from datasketch import MinHash

    hashes = MinHash.bulk([[s.encode("utf-8") for s in sh] for sh in sets], num_perm=params["num_perm"],
                          seed=params["seed"])
    bands, rows = params["bands"], params["rows"]
    values = np.stack([mh.hashvalues[: bands * rows] for mh in hashes]).astype(np.uint64)
    values = values.reshape(len(sets), bands, rows)
    key = np.full((len(sets), bands), rows, dtype=np.uint64)
    for r in range(rows):
        key = _mix(key ^ values[:, :, r])
    return key


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _candidates(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Unordered pairs ``(i, j)``, ``i < j``, of rows of ``keys`` sharing at least one band key, one of
    them in ``queries``. Per band: a bitmap of the queries' keys' low bits picks the rows that may share
    one (a gather over all rows, no sort of them), and a binary search among the queries' sorted keys
    finds which do, and with which queries."""
    n = len(keys)
    found: list[np.ndarray] = []
    bits = np.uint64((1 << min(24, max(16, (16 * len(queries)).bit_length()))) - 1)  # <= 1/16 full
    for band in range(keys.shape[1] if n and len(queries) else 0):
        col = keys[:, band]
        bitmap = np.zeros(int(bits) + 1, dtype=bool)
        bitmap[col[queries] & bits] = True
        rows = np.flatnonzero(bitmap[col & bits])
        order = np.argsort(col[queries], kind="stable")
        ranked = col[queries][order]
        lo = np.searchsorted(ranked, col[rows], "left")
        counts = np.searchsorted(ranked, col[rows], "right") - lo  # queries with each row's key
        offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        query = queries[order[np.repeat(lo, counts) + offset]]
        row = np.repeat(rows, counts)
        other = row != query
        query, row = query[other], row[other]
        found.append(np.minimum(query, row).astype(np.int64) * n + np.maximum(query, row))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    codes = np.unique(np.concatenate(found))
    return np.stack([codes // n, codes % n], axis=1)


def _clusters(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    return [g for g in connected_groups(pairs) if len(g) > 1]


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def document_text(doc: Document) -> str:
    return f"{doc.title}\n{doc.text}"


def write_duplicates(folder: Path, documents: Sequence[Document], previous: Path | None = None) -> Duplicates:
    """Write ``duplicates.json`` (clusters and kept pairs) and ``duplicates-keys.npz`` (band keys) for a
    build. With ``previous`` (the build folder this one reuses), documents whose id and text it holds
    reuse its band keys and pairs; a previous build without them, or with other parameters, reuses
    nothing."""
    result, keys = detect([d.id for d in documents], lambda k: document_text(documents[k]),
                          _previous(previous))
    payload = {"threshold": THRESHOLD, "shingle": SHINGLE, "num_perm": NUM_PERM, "clusters": result.clusters,
               "pairs": [list(p) for p in result.pairs]}
    (folder / layout.DUPLICATES).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    keys.save(folder / layout.DUPLICATE_KEYS)
    return result


def _previous(folder: Path | None) -> tuple[BandKeys, list[tuple[str, str]]] | None:
    """A previous build's band keys and pairs, or None where it lacks either or they do not read."""
    if folder is None or not (folder / layout.DUPLICATE_KEYS).is_file():
        return None
    try:
        payload = json.loads((folder / layout.DUPLICATES).read_text(encoding="utf-8"))
        keys = BandKeys.load(folder / layout.DUPLICATE_KEYS)
        pairs = [(str(a), str(b)) for a, b in payload["pairs"]]
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None
    if (payload.get("threshold"), payload.get("shingle"), payload.get("num_perm")) != (
            keys.params.get("threshold"), keys.params.get("shingle"), keys.params.get("num_perm")):
        return None
    return keys, pairs


def read_clusters(folder: Path) -> list[list[str]]:
    """The clusters of a build; none for a build made before duplicates were detected."""
    path = folder / layout.DUPLICATES
    if not path.is_file():
        return []
    return [list(c) for c in json.loads(path.read_text(encoding="utf-8")).get("clusters", [])]
