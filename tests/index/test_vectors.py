"""Vector index: flat and HNSW on random unit vectors, on-disk round trip, failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.errors import IndexFormatMismatch, IndexMissing, PersonaeError
from index.layout import VECTOR_IDS, VECTORS
from index.vectors import VectorIndex, write_vector_index

DIM = 384


def unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ids_for(n: int) -> list[str]:
    return [f"doc{i}#0" for i in range(n)]


def test_flat_round_trip_and_exact_top1(tmp_path: Path) -> None:
    vecs = unit(300)
    info = write_vector_index(tmp_path, vecs, ids_for(300), hnsw_threshold=1000)
    assert info == {"kind": "flat", "count": 300, "dim": DIM}
    assert (tmp_path / VECTORS).is_file() and (tmp_path / VECTOR_IDS).is_file()
    index = VectorIndex.open(tmp_path)
    assert len(index) == 300 and index.kind == "flat"
    for i in (0, 17, 299):
        hits = index.search(vecs[i], 5)
        assert hits[0][0] == f"doc{i}#0"
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    # Scores are cosines: check one against numpy.
    hits = index.search(vecs[3], 300)
    expected = vecs @ vecs[3]
    got = {pid: s for pid, s in hits}
    assert got["doc42#0"] == pytest.approx(float(expected[42]), abs=1e-5)


def test_query_shapes_and_k_edges(tmp_path: Path) -> None:
    vecs = unit(10)
    write_vector_index(tmp_path, vecs, ids_for(10), hnsw_threshold=100)
    index = VectorIndex.open(tmp_path)
    assert len(index.search(vecs[0:1], 3)) == 3  # (1, dim) works as well as (dim,)
    assert len(index.search(vecs[0], 1000)) == 10  # k larger than count
    assert index.search(vecs[0], 0) == []
    with pytest.raises(IndexFormatMismatch, match="another model"):
        index.search(np.ones(DIM + 1, dtype=np.float32), 3)


def test_threshold_boundary(tmp_path: Path) -> None:
    vecs = unit(50)
    assert write_vector_index(tmp_path / "a", vecs, ids_for(50), hnsw_threshold=50)["kind"] == "flat"
    assert write_vector_index(tmp_path / "b", vecs, ids_for(50), hnsw_threshold=49)["kind"] == "hnsw"
    assert VectorIndex.open(tmp_path / "b").kind == "hnsw"


def test_hnsw_recall_vs_exact(tmp_path: Path) -> None:
    """Random 384-d unit vectors are HNSW's hard case (no cluster structure); recall must still hold."""
    n, nq = 5000, 200
    vecs = unit(n, seed=1)
    queries = unit(nq, seed=2)
    ids = ids_for(n)
    assert write_vector_index(tmp_path / "flat", vecs, ids, hnsw_threshold=n)["kind"] == "flat"
    assert write_vector_index(tmp_path / "hnsw", vecs, ids, hnsw_threshold=100)["kind"] == "hnsw"
    flat = VectorIndex.open(tmp_path / "flat")
    hnsw = VectorIndex.open(tmp_path / "hnsw")
    exact = flat.search_many(queries, 10)
    approx = hnsw.search_many(queries, 10)
    recall = np.mean(
        [len({i for i, _ in e} & {i for i, _ in a}) / 10 for e, a in zip(exact, approx, strict=True)]
    )
    assert recall >= 0.95, recall
    # The stored vector itself is found first.
    assert hnsw.search(vecs[123], 1)[0][0] == "doc123#0"
    # Asking for more than efSearch still returns k results.
    assert len(hnsw.search(queries[0], 400)) == 400


def test_empty_index(tmp_path: Path) -> None:
    info = write_vector_index(tmp_path, np.zeros((0, DIM), dtype=np.float32), [], hnsw_threshold=10)
    assert info == {"kind": "flat", "count": 0, "dim": DIM}
    index = VectorIndex.open(tmp_path)
    assert len(index) == 0
    assert index.search(unit(1)[0], 10) == []


def test_empty_index_above_zero_threshold(tmp_path: Path) -> None:
    info = write_vector_index(tmp_path, np.zeros((0, 8), dtype=np.float32), [], hnsw_threshold=0)
    assert info["count"] == 0
    assert VectorIndex.open(tmp_path).search(np.ones(8, dtype=np.float32) / np.sqrt(8), 5) == []


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="personae build"):
        VectorIndex.open(tmp_path)
    write_vector_index(tmp_path, unit(5), ids_for(5), hnsw_threshold=10)
    (tmp_path / VECTOR_IDS).unlink()
    with pytest.raises(IndexMissing, match=VECTOR_IDS):
        VectorIndex.open(tmp_path)


def test_count_mismatch(tmp_path: Path) -> None:
    write_vector_index(tmp_path, unit(5), ids_for(5), hnsw_threshold=10)
    meta = json.loads((tmp_path / VECTOR_IDS).read_text(encoding="utf-8"))
    meta["ids"] = meta["ids"][:4]
    (tmp_path / VECTOR_IDS).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(IndexFormatMismatch, match="5 vectors but 4 ids"):
        VectorIndex.open(tmp_path)


def test_files_from_different_builds(tmp_path: Path) -> None:
    write_vector_index(tmp_path / "a", unit(5), ids_for(5), hnsw_threshold=10)
    write_vector_index(tmp_path / "b", unit(7), ids_for(7), hnsw_threshold=10)
    (tmp_path / "a" / VECTORS).write_bytes((tmp_path / "b" / VECTORS).read_bytes())
    with pytest.raises(IndexFormatMismatch, match="inconsistent"):
        VectorIndex.open(tmp_path / "a")


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a faiss index", None])
def test_corrupt_vectors_file(tmp_path: Path, content: bytes | None) -> None:
    write_vector_index(tmp_path, unit(5), ids_for(5), hnsw_threshold=10)
    path = tmp_path / VECTORS
    path.write_bytes(content if content is not None else path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IndexFormatMismatch) as err:
        VectorIndex.open(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", ["", "{not json", '{"ids": [1, 2]}', '{"format": 99, "ids": []}'])
def test_corrupt_ids_file(tmp_path: Path, content: str) -> None:
    write_vector_index(tmp_path, unit(2), ids_for(2), hnsw_threshold=10)
    (tmp_path / VECTOR_IDS).write_text(content, encoding="utf-8")
    with pytest.raises(IndexFormatMismatch):
        VectorIndex.open(tmp_path)


def test_bad_input_rejected(tmp_path: Path) -> None:
    with pytest.raises(PersonaeError, match="3 vectors but 2 ids"):
        write_vector_index(tmp_path, unit(3), ["a", "b"], hnsw_threshold=10)
    with pytest.raises(PersonaeError, match="not unique"):
        write_vector_index(tmp_path, unit(2), ["a", "a"], hnsw_threshold=10)
    with pytest.raises(PersonaeError, match="2-d"):
        write_vector_index(tmp_path, unit(1)[0], ["a"], hnsw_threshold=10)
    bad = unit(2)
    bad[1, 0] = np.nan
    with pytest.raises(PersonaeError, match="NaN"):
        write_vector_index(tmp_path, bad, ["a", "b"], hnsw_threshold=10)


@pytest.mark.parametrize("threshold", [10_000, 0], ids=["flat", "hnsw"])
def test_search_subset_is_exact(tmp_path: Path, threshold: int) -> None:
    vecs = unit(2000, seed=3)
    ids = ids_for(2000)
    write_vector_index(tmp_path, vecs, ids, hnsw_threshold=threshold)
    index = VectorIndex.open(tmp_path)
    q = unit(1, seed=4)[0]
    allowed = [f"doc{i}#0" for i in range(0, 2000, 7)] + ["unknown#0", "doc0#0"]  # unknown and repeated ids
    hits = index.search_subset(q, allowed, 10)
    rows = np.arange(0, 2000, 7)
    scores = vecs[rows] @ q
    expected = [f"doc{rows[i]}#0" for i in np.argsort(-scores)[:10]]
    assert [pid for pid, _ in hits] == expected
    assert hits[0][1] == pytest.approx(float(scores.max()), abs=1e-5)
    assert len(index.search_subset(q, allowed, 10_000)) == len(rows)
    assert index.search_subset(q, [], 10) == []
    assert index.search_subset(q, ["unknown#0"], 10) == []
    assert index.search_subset(vecs[14], ["doc14#0", "doc15#0"], 1) == [
        ("doc14#0", pytest.approx(1.0, abs=1e-5))
    ]


def test_concurrent_searches(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    vecs = unit(1000, seed=5)
    write_vector_index(tmp_path, vecs, ids_for(1000), hnsw_threshold=100)
    index = VectorIndex.open(tmp_path)
    expected = [index.search(vecs[i], 5) for i in range(40)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda i: index.search(vecs[i], 5), range(40)))
    assert got == expected


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vectors_are_mapped_from_the_file_not_copied(tmp_path: Path, kind: str) -> None:
    """Server workers share one copy of the vectors (and the HNSW graph) through the page cache."""
    vecs = unit(400)
    write_vector_index(tmp_path, vecs, ids_for(400), hnsw_threshold=100 if kind == "hnsw" else 1000)
    index = VectorIndex.open(tmp_path)
    assert index.kind == kind
    maps = Path("/proc/self/maps").read_text()
    assert str((tmp_path / VECTORS).resolve()) in maps
    assert index.search(vecs[7], 1)[0][0] == "doc7#0"
    assert index.search_subset(vecs[9], ["doc9#0", "doc1#0"], 1)[0][0] == "doc9#0"


@pytest.mark.parametrize("threshold", [100_000, 0], ids=["flat", "hnsw"])
def test_large_subsets_picked_by_faiss_equal_the_plain_scan(tmp_path: Path, threshold: int) -> None:
    """``search_rows`` on a big subset (faiss picks candidates, numpy rescores them) returns exactly what
    scoring every allowed row returns, ties included: duplicated vectors tie exactly, and among ties the
    earlier row of the given order comes first, at the cut too."""
    base = unit(1500, seed=5)
    vecs = np.concatenate([base, base[:900], base[:600]])  # exact duplicates: many tied scores
    write_vector_index(tmp_path, vecs, ids_for(len(vecs)), hnsw_threshold=threshold)
    index = VectorIndex.open(tmp_path)
    rng = np.random.default_rng(6)
    picked = 0
    for trial in range(40):
        rows = rng.choice(len(vecs), int(rng.integers(2048, len(vecs))), replace=False)  # any order
        q = vecs[rng.integers(len(vecs))] if trial % 2 else unit(1, seed=100 + trial)[0]
        k = int(rng.choice([1, 10, 100, 700]))
        picked += index._select(q, rows, k) is not None
        assert index.search_rows(q, rows, k) == index._scan(q, rows, k), trial
    assert picked > 20  # the faiss path is what ran


def test_scan_keeps_ties_at_the_cut_in_row_order(tmp_path: Path) -> None:
    vecs = np.repeat(unit(3, seed=8), 10, axis=0)  # 3 distinct vectors, 10 copies each
    write_vector_index(tmp_path, vecs, ids_for(30), hnsw_threshold=1000)
    index = VectorIndex.open(tmp_path)
    rows = np.arange(29, -1, -1)  # reversed: the later rows come first
    hits = index._scan(vecs[0], rows, 4)
    assert [pid for pid, _ in hits] == [f"doc{i}#0" for i in (9, 8, 7, 6)]
