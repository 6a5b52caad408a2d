"""Base + delta indexes (index/vectors.py, index/keyword.py): an incremental build shares the previous
build's files and writes only what changed, and searches answer what a full write of the same rows answers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from index.keyword import (
    KeywordIndex,
    Restrict,
    row_key,
    write_keyword_delta,
    write_keyword_index,
)
from index.layers import link_or_copy
from index.vectors import (
    VECTORS_DELTA,
    VectorIndex,
    share_base,
    stored_keys,
    write_vector_delta,
    write_vector_index,
)
from tests.index.test_postings import QUERIES, _rows
from tests.index.test_vectors import unit


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file's inode, mtime and sha256: what "never modified" means."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns,
                                               hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _brute(vecs: np.ndarray, ids: list[str], q: np.ndarray, k: int) -> list[str]:
    scores = vecs @ q
    order = np.lexsort((np.arange(len(ids)), -scores))[:k]
    return [ids[i] for i in order]


@pytest.mark.parametrize("kind_threshold", [10_000, 100])  # flat base, HNSW base
def test_vector_delta_searches_live_rows_only(tmp_path: Path, kind_threshold: int) -> None:
    n, dim = 3000, 64
    vecs = unit(n, dim, seed=1)
    ids = [f"p{i}" for i in range(n)]
    write_vector_index(tmp_path / "old", vecs, ids, hnsw_threshold=kind_threshold, keys=ids)
    before = _snapshot(tmp_path / "old")
    # changed rows 0..99 (new vectors), removed 100..199, added 300 new ids
    changed = unit(100, dim, seed=2)
    added = unit(300, dim, seed=3)
    new = tmp_path / "new"
    new.mkdir()
    assert share_base(tmp_path / "old", new) is False  # this format's base: hard-linked, not rewritten
    delta_ids = ids[:100] + [f"n{i}" for i in range(300)]
    info = write_vector_delta(new, np.vstack([changed, added]), delta_ids, delta_ids, removed=range(200))
    assert info["count"] == n - 200 + 400 and (new / VECTORS_DELTA).is_file()
    assert _snapshot(tmp_path / "old") == before  # the base is shared, not written
    assert (new / "vectors.faiss").stat().st_ino == (tmp_path / "old" / "vectors.faiss").stat().st_ino

    live_ids = ids[200:] + delta_ids
    live = np.vstack([vecs[200:], changed, added])
    index = VectorIndex.open(new)
    assert len(index) == len(live_ids) and sorted(index.live_ids()) == sorted(live_ids)
    np.testing.assert_array_equal(index.vectors(index.rows_of(live_ids)), live)
    _, _, known = stored_keys(new)  # type: ignore[misc]
    assert sorted(known) == sorted(live_ids)
    queries = unit(20, dim, seed=4)
    recall = []
    for q in queries:
        got = [pid for pid, _ in index.search(q, 10)]
        want = _brute(live, live_ids, q, 10)
        assert not set(got) & {f"p{i}" for i in range(100, 200)}  # removed rows never come back
        if index.kind == "flat":
            assert got == want
        recall.append(len(set(got) & set(want)) / 10)
        # a filtered (exact) search over rows of both parts, large enough for faiss's bitmap selection
        allowed = live_ids[::2]
        rows = index.rows_of(allowed)
        hits = index.search_rows(q, rows, 10)
        assert [pid for pid, _ in hits] == _brute(live[::2], allowed, q, 10)
    assert np.mean(recall) >= 0.95


def _by_id(ki: KeywordIndex, query: str, k: int = 10_000, **kw) -> dict[str, float]:
    return dict(ki.search(ki.parse(query), k, **kw))


def test_keyword_delta_shares_the_base_segment_and_matches_a_full_write(tmp_path: Path) -> None:
    rows = _rows(600)
    write_keyword_index(tmp_path / "old" / "whoosh", rows, postings=tmp_path / "old" / "postings")
    before = _snapshot(tmp_path / "old")
    new_rows = [dict(r) for r in rows if not r["id"].startswith("d5#")]  # a document deleted
    new_rows[0]["text"] += " storm peace"  # a paragraph changed
    new_rows[3]["entity"] = "Q4"  # a paragraph's links changed, not its text
    new_rows += [dict(r, id=f"x{r['id']}", doc_id=f"x{r['doc_id']}") for r in _rows(30, seed=3)]  # added
    report = write_keyword_delta(tmp_path / "new" / "whoosh", tmp_path / "old" / "whoosh", new_rows,
                                 postings=tmp_path / "new" / "postings",
                                 previous_postings=tmp_path / "old" / "postings", max_fraction=0.2,
                                 link=link_or_copy)
    assert report is not None and (report.kept, report.written, report.deleted) == (595, 32, 5)
    assert _snapshot(tmp_path / "old") == before
    write_keyword_index(tmp_path / "full" / "whoosh", new_rows, postings=tmp_path / "full" / "postings")
    delta = KeywordIndex(tmp_path / "new" / "whoosh", postings=tmp_path / "new" / "postings")
    plain = KeywordIndex(tmp_path / "new" / "whoosh")  # Whoosh's own postings: the reference for scores
    full = KeywordIndex(tmp_path / "full" / "whoosh", postings=tmp_path / "full" / "postings")
    assert len(delta) == len(full) == len(new_rows)
    s = delta._searcher()
    assert len(list(s.leaf_searchers())) == 2
    assert all(delta._segment_arrays(leaf.reader()) is not None for leaf, _ in s.leaf_searchers())
    # per-segment columns are joined once per open index, not on every call
    assert delta._global_pids(s) is delta._global_pids(s)
    # ids per docnum, the base's from its row file: as Whoosh's stored fields say, deleted docnums blank
    stored = [""] * sum(leaf.reader().doc_count_all() for leaf, _ in s.leaf_searchers())
    offset = 0
    for leaf, _ in s.leaf_searchers():
        for docnum, fields in leaf.reader().iter_docs():
            stored[offset + docnum] = fields["id"]
        offset += leaf.reader().doc_count_all()
    assert list(delta._global_pids(s)) == stored and stored.count("") == report.deleted
    # document ordinals and days per docnum, from the arrays in one pass: as read term by term from Whoosh
    for mine, whooshs in zip(delta._global_columns(s), plain._global_columns(plain._searcher()), strict=True):
        np.testing.assert_array_equal(mine, whooshs)
    assert delta.doc_names() == plain.doc_names()
    assert delta._global_columns(s) is delta._global_columns(s)
    for text in [*QUERIES, "storm peace"]:
        for kw in ({}, {"entities": ["Q4"]}, {"restrict": Restrict(date_from="2024-03-01")}):
            got = _by_id(delta, text, **kw)
            assert got == pytest.approx(_by_id(plain, text, **kw), abs=1e-9)  # arrays answer as Whoosh
            assert set(got) == set(_by_id(full, text, **kw)), (text, kw)  # scores: deleted-row statistics
            q = delta.parse(text)
            assert delta.count(q, **kw) == full.count(full.parse(text), **kw)
    pids = [r["id"] for r in new_rows[::7]]
    for text in ['"peace talks"', "storm -peace", '"gas prices" storm']:
        assert delta.matching(delta.parse(text), pids) == full.matching(full.parse(text), pids)


def test_keyword_delta_declines_past_the_fraction_and_for_a_new_language(tmp_path: Path) -> None:
    rows = _rows(90)
    write_keyword_index(tmp_path / "old" / "whoosh", rows, postings=tmp_path / "old" / "postings")

    def delta(new_rows: list[dict[str, str]], name: str):  # type: ignore[no-untyped-def]
        return write_keyword_delta(tmp_path / name / "whoosh", tmp_path / "old" / "whoosh", new_rows,
                                   postings=tmp_path / name / "postings",
                                   previous_postings=tmp_path / "old" / "postings", max_fraction=0.2,
                                   link=link_or_copy)

    assert delta(rows[:60], "a") is None  # a third deleted: a full write is due
    assert not (tmp_path / "a").exists()
    assert delta([*rows, dict(rows[0], id="de#0", lang="de")], "b") is None  # no text_de field in the base
    assert delta(rows, "c") == (report := delta(rows, "c2")) and report.written == 0 and report.deleted == 0
    assert row_key(rows[0]) != row_key(dict(rows[0], said="Q9"))



def test_keyword_deltas_stack_one_segment_per_build_and_merge_past_the_limit(tmp_path: Path) -> None:
    """Each incremental write adds one segment holding only its own changes; rows it is told are unchanged
    are kept by id, wherever they live; past ``max_segments`` the delta segments merge into one. Every step
    answers as a full write of the same rows does."""
    rows = _rows(400)
    write_keyword_index(tmp_path / "b0" / "whoosh", rows, postings=tmp_path / "b0" / "postings")
    current = {r["id"]: r for r in rows}
    extra = _rows(60, seed=5)
    for step in range(1, 6):
        changed = [dict(current[f"d{step}#0"], entity=f"Q{step}")]  # a paragraph's links changed
        added = [dict(r, id=f"s{step}{r['id']}", doc_id=f"s{step}{r['doc_id']}") for r in extra[step::12]]
        gone = f"d{10 + step}#1"
        for r in [*changed, *added]:
            current[r["id"]] = r
        current.pop(gone, None)
        fresh = {r["id"] for r in [*changed, *added]}
        unchanged = [pid for pid in current if pid not in fresh]
        old, new = tmp_path / f"b{step - 1}", tmp_path / f"b{step}"
        snapshot = _snapshot(old)
        report = write_keyword_delta(new / "whoosh", old / "whoosh", [*changed, *added],
                                     postings=new / "postings", previous_postings=old / "postings",
                                     max_fraction=0.5, link=link_or_copy, unchanged=unchanged,
                                     all_rows=lambda c=dict(current): iter(c.values()), max_segments=3)
        assert _snapshot(old) == snapshot
        merged = step == 4  # three delta segments before it: they merge into the new one
        assert report is not None and report.segments == {1: 2, 2: 3, 3: 4, 4: 2, 5: 3}[step]
        in_base = sum(1 for r in rows if current.get(r["id"]) is r)  # the first write's rows, as they were
        if merged:
            assert (report.kept, report.written) == (in_base, len(current) - in_base)
        else:
            assert (report.kept, report.written) == (len(unchanged), len(fresh))
        delta = KeywordIndex(new / "whoosh", postings=new / "postings")
        write_keyword_index(tmp_path / f"full{step}" / "whoosh", list(current.values()),
                            postings=tmp_path / f"full{step}" / "postings")
        full_dir = tmp_path / f"full{step}"
        full = KeywordIndex(full_dir / "whoosh", postings=full_dir / "postings")
        plain = KeywordIndex(new / "whoosh")
        s = delta._searcher()
        assert len(list(s.leaf_searchers())) == report.segments
        assert sorted(pid for pid in delta._global_pids(s) if pid) == sorted(current)
        assert len(delta) == len(current) and delta.ix.doc_count_all() == len(current) + report.deleted
        for text in [*QUERIES, "storm peace"]:
            for kw in ({}, {"entities": [f"Q{step}"]}):
                got = _by_id(delta, text, **kw)
                assert got == pytest.approx(_by_id(plain, text, **kw), abs=1e-9)
                assert set(got) == set(_by_id(full, text, **kw)), (step, text, kw)


FILLER = ["Harbour", "Ferry", "Strike", "Council", "Budget", "Railway", "Election", "Harvest", "Storm",
          "Museum"]


def _corpus(folder: Path, docs: dict[str, str]) -> None:
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, text in docs.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")


def _duplicates(folder: Path) -> dict[str, object]:
    import json

    from index.layout import DUPLICATES

    return json.loads((folder / DUPLICATES).read_text(encoding="utf-8"))


def _docs() -> dict[str, str]:
    from tests.index.test_incremental import DOCS

    docs = dict(DOCS)
    for i in range(25):
        topic = FILLER[i % len(FILLER)]
        docs[f"n{i:02d}.txt"] = (f"{topic} report {i}\n\nThe {topic.lower()} committee of Felixstowe met on "
                                 f"day {i} to discuss {FILLER[(i + 3) % 10].lower()} plans.\n\nMarta Okonkwo "
                                 f"said the {topic.lower()} plan number {i} would go ahead.")
    return docs


def test_incremental_build_shares_its_base_and_equals_a_full_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.duplicates
    import index.vectors
    from index import layout
    from index.build import build_index
    from index.duplicates import read_clusters
    from index.settings import Settings
    from index.store import read_paragraphs
    from search.searcher import Searcher
    from tests.conftest import SEEDS

    def settings(index_dir: str, **kw) -> Settings:  # type: ignore[no-untyped-def]
        return Settings.load(env={}, corpus=str(tmp_path / "corpus"), index_dir=str(tmp_path / index_dir),
                             entities_file=str(SEEDS / "entities.jsonl"), **kw)

    docs = _docs()
    docs["n03-copy.txt"] = docs["n03.txt"] + " Reporting by agencies."  # a near-duplicate of one to delete
    _corpus(tmp_path / "corpus", docs)
    inc = settings("inc", delta_fraction=0.3)
    first = build_index(inc)
    assert read_clusters(first.folder) == [["n03-copy.txt", "n03.txt"]]
    before = _snapshot(first.folder)
    docs["b.txt"] = docs["b.txt"].replace("lower profits", "record profits")  # changed
    del docs["n03.txt"]  # deleted
    docs["0-new.txt"] = "Ferry talks\n\nDana Whitfield met Okonkwo to discuss Galloway Ferries routes."
    docs["n05-copy.txt"] = docs["n05.txt"].replace("go ahead", "go ahead, he said")  # a new near-duplicate
    _corpus(tmp_path / "corpus", docs)
    reader = Searcher.open(inc)  # a server that opened the previous build keeps answering throughout
    answer = reader.search("Okonkwo", limit=10)["hits"]

    def killed(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:  # a build that dies after the keyword delta, before the vector delta
        m.setattr(index.vectors, "write_vector_delta", killed)
        with pytest.raises(OSError):
            build_index(inc)
    assert layout.current_build(inc.index_path) == first.folder and _snapshot(first.folder) == before
    hashed: list[Path] = []
    sha256 = layout.sha256_file
    monkeypatch.setattr(layout, "sha256_file", lambda path: hashed.append(Path(path)) or sha256(path))
    shingled: set[str] = set()
    shingles = index.duplicates.shingles
    monkeypatch.setattr(index.duplicates, "shingles",
                        lambda text, *a: shingled.add(text) or shingles(text, *a))
    logs: list[str] = []
    second = build_index(inc, log=logs.append)
    monkeypatch.undo()
    # near-duplicates: b.txt, 0-new.txt, n05-copy.txt and n05.txt (the new copy's candidate) only
    assert 3 <= len(shingled) <= 5 < len(docs)
    # checksums read in the new build's folder: only for the files it wrote, not for those it links
    parts = [p.relative_to(inc.index_path).parts for p in hashed if p.is_relative_to(inc.index_path)]
    written = {"/".join(rel[1:]) for rel in parts if rel[0].startswith(".tmp-")}
    assert "vectors-delta.faiss" in written and "vectors.faiss" not in written
    assert reader.search("Okonkwo", limit=10)["hits"] == answer
    assert any(m.startswith("vectors: ") and "shared" in m for m in logs), logs
    assert any(m.startswith("keyword: ") and "shared" in m for m in logs), logs
    assert _snapshot(first.folder) == before  # the previous build is never written to
    for rel in ("vectors.faiss", "vector_ids.json"):
        assert (second.folder / rel).stat().st_ino == (first.folder / rel).stat().st_ino
    assert (second.folder / VECTORS_DELTA).is_file()
    shared = [rel for rel in before if rel.startswith(("whoosh/", "postings/"))
              and (second.folder / rel).is_file()
              and (second.folder / rel).stat().st_ino == before[rel][0]]
    assert any(rel.startswith("whoosh/MAIN_") for rel in shared)  # the base segment's part files
    assert any(rel.endswith(".npy") for rel in shared)
    assert not written & set(shared)
    manifest = layout.verify(second.folder, deep=True)  # reused checksums are the files' checksums
    assert manifest.files["vectors.faiss"] == layout.read_manifest(first.folder).files["vectors.faiss"]

    full = settings("full")
    build_index(full, incremental=False)
    fb = layout.current_build(full.index_path)
    assert read_paragraphs(second.folder) == read_paragraphs(fb)
    assert read_clusters(second.folder) == [["n05-copy.txt", "n05.txt"]]
    assert _duplicates(second.folder) == _duplicates(fb)  # pairs and clusters, from band keys reused
    a, b = Searcher.open(inc), Searcher.open(full)
    va, vb = VectorIndex.open(second.folder), VectorIndex.open(fb)
    assert sorted(va.live_ids()) == sorted(vb.live_ids())
    ids = vb.live_ids()  # the same vectors (to the encoder's batch-to-batch rounding)
    np.testing.assert_allclose(va.vectors(va.rows_of(ids)), vb.vectors(vb.rows_of(ids)), atol=1e-5)
    for q in ["strike Felixstowe", "Okonkwo", "record profits", "ferry routes", "budget plans", "museum"]:
        for kw in ({}, {"entities": ["marta-okonkwo"]}):
            ra, rb = a.search(q, mode="vector", limit=10, **kw), b.search(q, mode="vector", limit=10, **kw)
            assert [h["paragraph_id"] for h in ra["hits"]] == [h["paragraph_id"] for h in rb["hits"]], (q, kw)
            scores = [h["score"] for h in rb["hits"]]
            assert [h["score"] for h in ra["hits"]] == pytest.approx(scores, abs=1e-5)
            ra = a.search(q, mode="keyword", limit=100, **kw)
            rb = b.search(q, mode="keyword", limit=100, **kw)
            assert {h["paragraph_id"] for h in ra["hits"]} == {h["paragraph_id"] for h in rb["hits"]}, q
            assert ra["total"] == rb["total"] and ra["facets"] == rb["facets"]

    from search.backends.milvus import rows_from_build  # what `personae export-milvus` sends

    (ra, xa, _), (rb, xb, _) = rows_from_build(second.folder), rows_from_build(fb)
    assert ra == rb
    np.testing.assert_allclose(xa, xb, atol=1e-5)

    # on top of a delta build: the base stays shared, the delta is written again
    docs["n05.txt"] += " The plan was delayed."
    _corpus(tmp_path / "corpus", docs)
    third = build_index(inc)
    assert (third.folder / "vectors.faiss").stat().st_ino == before["vectors.faiss"][0]
    assert _duplicates(third.folder) == _duplicates(build_index(full, incremental=False).folder)
    # past the fraction: compacted into one base again
    for i in range(6, 20):
        docs[f"n{i:02d}.txt"] += " Everything changed."
    _corpus(tmp_path / "corpus", docs)
    fourth = build_index(inc)
    assert not (fourth.folder / VECTORS_DELTA).exists()
    assert (fourth.folder / "vectors.faiss").stat().st_ino != before["vectors.faiss"][0]
    assert not [p for p in (fourth.folder / "postings").iterdir() if p.is_dir()]
    layout.verify(fourth.folder, deep=True)


@pytest.mark.parametrize("threshold", [10_000, 10])  # flat, and HNSW with its exact rows file
def test_a_builds_vectors_read_reused_rows_from_the_previous_index_only_when_asked(
        tmp_path: Path, threshold: int) -> None:
    from index.build import _BuildVectors, _OldVectors

    vecs = unit(50, 16)
    write_vector_index(tmp_path, vecs, [f"p{i}" for i in range(50)], hnsw_threshold=threshold,
                       keys=[f"k{i}" for i in range(50)])
    old = _OldVectors(VectorIndex.open(tmp_path), {f"k{i}": i for i in range(50)})
    fresh = unit(2, 16, seed=9)
    built = _BuildVectors(["k3", "new0", "k7", "new1", "k3"], old, [1, 3], fresh, dim=0)
    want = np.vstack([vecs[3], fresh[0], vecs[7], fresh[1], vecs[3]])
    assert built.shape == (5, 16) and len(built) == 5
    np.testing.assert_array_equal(built.array(), want)
    np.testing.assert_array_equal(built[2], vecs[7])
    np.testing.assert_array_equal(built[[4, 1, 0]], want[[4, 1, 0]])
    np.testing.assert_array_equal(built[np.array([3])], want[[3]])
