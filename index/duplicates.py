"""Near-duplicate documents (wire copies, lightly edited re-publications), found at build time.

Each document's title and text become a set of word 5-grams ("shingles"); ``datasketch`` MinHash LSH
proposes pairs whose estimated Jaccard similarity may pass ``THRESHOLD``, and each proposed pair is kept
only if the exact Jaccard similarity of the two shingle sets passes it too (LSH alone lets some lower
pairs through). Kept pairs are joined into clusters (union-find). The build writes the clusters to
``duplicates.json``; the query side folds a cluster's lower-ranked copies into its best-ranked one
(``duplicates=collapse``), and every copy stays indexed and searchable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from index import layout
from index.records import Document

THRESHOLD = 0.7  # Jaccard of word 5-gram sets; judged on BBC pairs (benchmarks/duplicate_pairs.py)
SHINGLE = 5
NUM_PERM = 128
MIN_SHINGLES = 8  # shorter texts (a headline and a line) are never called duplicates
_WORD = re.compile(r"\w+")


def shingles(text: str, size: int = SHINGLE) -> set[str]:
    words = _WORD.findall(text.casefold())
    return {" ".join(words[i : i + size]) for i in range(max(0, len(words) - size + 1))}


def find_clusters(docs: Iterable[tuple[str, str]], *, threshold: float = THRESHOLD) -> list[list[str]]:
    """Clusters (two or more ids, sorted; clusters sorted by first id) of near-duplicate ``(id, text)``."""
    from datasketch import MinHash, MinHashLSH

    ids: list[str] = []
    sets: list[set[str]] = []
    for doc_id, text in docs:
        sh = shingles(text)
        if len(sh) >= MIN_SHINGLES:
            ids.append(doc_id)
            sets.append(sh)
    if len(ids) < 2:
        return []
    hashes = MinHash.bulk([[s.encode("utf-8") for s in sh] for sh in sets], num_perm=NUM_PERM, seed=1)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for i, mh in enumerate(hashes):
        lsh.insert(i, mh)
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, mh in enumerate(hashes):
        for j in lsh.query(mh):
            if j > i and _jaccard(sets[i], sets[j]) >= threshold:
                parent[root(j)] = root(i)
    groups: dict[int, list[str]] = {}
    for i, doc_id in enumerate(ids):
        groups.setdefault(root(i), []).append(doc_id)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def document_text(doc: Document) -> str:
    return f"{doc.title}\n{doc.text}"


def write_duplicates(folder: Path, documents: Sequence[Document]) -> int:
    """Write ``duplicates.json`` for a build; returns the number of clusters."""
    clusters = find_clusters((d.id, document_text(d)) for d in documents)
    payload = {"threshold": THRESHOLD, "shingle": SHINGLE, "num_perm": NUM_PERM, "clusters": clusters}
    (folder / layout.DUPLICATES).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return len(clusters)


def read_clusters(folder: Path) -> list[list[str]]:
    """The clusters of a build; none for a build made before duplicates were detected."""
    path = folder / layout.DUPLICATES
    if not path.is_file():
        return []
    return [list(c) for c in json.loads(path.read_text(encoding="utf-8")).get("clusters", [])]
