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


def _write_format1(folder: Path, vecs: np.ndarray, ids: list[str]) -> None:
    """A base as format 1 wrote it: an HNSW graph holding the float32 rows, no exact file."""
    import faiss

    from index.vectors import HNSW_M

    graph = faiss.IndexHNSWFlat(vecs.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.add(vecs)
    folder.mkdir(parents=True)
    faiss.write_index(graph, str(folder / VECTORS))
    meta = {"format": 1, "kind": "hnsw", "dim": vecs.shape[1], "count": len(ids), "ids": ids, "keys": ids}
    (folder / VECTOR_IDS).write_text(json.dumps(meta), encoding="utf-8")


def test_hnsw_base_holds_8bit_codes_and_returns_exact_scores(tmp_path: Path) -> None:
    """Above the threshold the graph walks 8-bit codes (a quarter of float32's pages); the float32 rows are
    in their own file, read back bit for bit, and every score a search returns is the exact inner product."""
    from index.vectors import VECTORS_EXACT

    vecs = unit(3000, seed=11)
    write_vector_index(tmp_path, vecs, ids_for(3000), hnsw_threshold=100)
    assert (tmp_path / VECTORS).stat().st_size < 0.5 * vecs.nbytes  # codes and graph, no float32 rows
    assert (tmp_path / VECTORS_EXACT).stat().st_size > vecs.nbytes
    index = VectorIndex.open(tmp_path)
    rows = np.array([5, 0, 2999, 5, 1234])
    np.testing.assert_array_equal(index.vectors(rows), vecs[rows])
    queries = unit(30, seed=12)
    exact = queries @ vecs.T
    for q, row in zip(queries, exact, strict=True):
        hits = index.search(q, 20)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        for pid, score in hits:
            assert abs(score - row[int(pid[3:-2])]) < 1e-5
        assert hits[0][0] == f"doc{int(np.argmax(row))}#0"
    maps = Path("/proc/self/maps").read_text()
    assert str((tmp_path / VECTORS_EXACT).resolve()) not in maps  # mapped only while a call reads it


def test_8bit_score_error_stays_within_the_bound_the_filtered_search_relies_on(tmp_path: Path) -> None:
    """``_select`` trusts that no row's 8-bit score is further from its float32 score than ``slack``."""
    import faiss

    rng = np.random.default_rng(13)
    vecs = unit(2000, seed=13) * rng.uniform(0.2, 1.0, (1, DIM)).astype(np.float32)  # uneven ranges
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    write_vector_index(tmp_path, vecs, ids_for(2000), hnsw_threshold=100)
    index = VectorIndex.open(tmp_path)
    base = index._parts[0]
    every = np.arange(2000)
    worst = 0.0
    for q in np.vstack([unit(20, seed=14), vecs[:5]]):
        scores, found = base.codes.search(q.reshape(1, -1), 2000,
                                          params=faiss.SearchParameters())  # all rows, 8-bit scores
        approx = np.empty(2000, dtype=np.float32)
        approx[found[0]] = scores[0]
        error = np.abs(approx - vecs[every] @ q).max()
        assert error <= base.slack(q)
        worst = max(worst, error / base.slack(q))
    assert worst > 0.05  # the bound is not vacuous: real errors come within reach of it


def test_a_format1_base_is_read_and_upgraded_without_a_new_graph(tmp_path: Path) -> None:
    from index.vectors import VECTORS_EXACT, share_base

    vecs, ids = unit(2000, seed=15), ids_for(2000)
    _write_format1(tmp_path / "old", vecs, ids)
    old = VectorIndex.open(tmp_path / "old")
    assert old.kind == "hnsw"
    queries = unit(10, seed=16)
    before = [old.search(q, 10) for q in queries]
    (tmp_path / "new").mkdir()
    assert share_base(tmp_path / "old", tmp_path / "new") is True
    meta = json.loads((tmp_path / "new" / VECTOR_IDS).read_text(encoding="utf-8"))
    assert meta["format"] == 2 and meta["keys"] == ids and (tmp_path / "new" / VECTORS_EXACT).is_file()
    new = VectorIndex.open(tmp_path / "new")
    np.testing.assert_array_equal(new.vectors(np.arange(2000)), vecs)
    after = [new.search(q, 10) for q in queries]
    # the same graph, the same exact scores: the 8-bit walk may only reorder near-ties it then re-scores
    pairs = list(zip(after, before, strict=True))
    assert np.mean([len({p for p, _ in a} & {p for p, _ in b}) / 10 for a, b in pairs]) >= 0.95
    for a, b in pairs:
        known = dict(b)
        assert all(abs(score - known.get(pid, score)) < 1e-5 for pid, score in a)
    (tmp_path / "newer").mkdir()
    assert share_base(tmp_path / "new", tmp_path / "newer") is False  # now shared as it is
    inode = (tmp_path / "new" / VECTORS_EXACT).stat().st_ino
    assert (tmp_path / "newer" / VECTORS_EXACT).stat().st_ino == inode


def test_missing_or_torn_exact_rows_are_reported(tmp_path: Path) -> None:
    from index.vectors import VECTORS_EXACT

    write_vector_index(tmp_path, unit(300), ids_for(300), hnsw_threshold=100)
    path = tmp_path / VECTORS_EXACT
    data = path.read_bytes()
    path.write_bytes(data[:-4])
    with pytest.raises(IndexFormatMismatch, match=VECTORS_EXACT):
        VectorIndex.open(tmp_path)
    path.unlink()
    with pytest.raises(IndexMissing, match=VECTORS_EXACT):
        VectorIndex.open(tmp_path)


def test_an_8bit_index_answers_after_its_build_folder_is_removed(tmp_path: Path) -> None:
    """A server may still finish a search on a build that a newer build's clean-up has just removed."""
    import shutil

    vecs = unit(3000, seed=17)
    write_vector_index(tmp_path / "b", vecs, ids_for(3000), hnsw_threshold=100)
    index = VectorIndex.open(tmp_path / "b")
    want = index.search(vecs[5], 5)
    shutil.rmtree(tmp_path / "b")
    assert index.search(vecs[5], 5) == want
    rows = np.arange(0, 3000, 2)
    assert index.search_rows(vecs[5], rows, 3) == index._scan(vecs[5], rows, 3)
    np.testing.assert_array_equal(index.vectors(np.arange(4500) % 3000), vecs[np.arange(4500) % 3000])
