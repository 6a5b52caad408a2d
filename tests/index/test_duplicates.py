"""Near-duplicate clusters (MinHash LSH, confirmed by exact Jaccard), full and incremental."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from index import duplicates, layout
from index.duplicates import (
    MIN_SHINGLES,
    NUM_PERM,
    SEED,
    THRESHOLD,
    BandKeys,
    _jaccard,
    detect,
    document_text,
    find_clusters,
    shingles,
    write_duplicates,
)
from index.records import Document
from tests.conftest import SEEDS, shared_path

STORY = ("The central bank held interest rates at four per cent on Thursday, saying inflation was falling "
         "more slowly than expected and that wage growth remained strong across most of the economy. "
         "Markets had priced in a cut, and the pound rose against the dollar after the announcement. The "
         "governor said the committee would look again at the figures next month before any decision.")
OTHER = ("The national football team reached the final after a late penalty in a match watched by a record "
         "crowd, and the coach said the young side had surprised everyone this season.")


def test_copies_cluster_and_different_stories_do_not() -> None:
    docs = [("a", STORY), ("b", STORY + " Additional reporting by the agency."), ("c", OTHER),
            ("d", STORY.replace("Thursday", "Friday")), ("e", "Short item."), ("f", "Short item.")]
    assert find_clusters(docs) == [["a", "b", "d"]]  # texts under 8 shingles are never called copies


def test_same_topic_is_not_a_duplicate() -> None:
    rewrite = ("Interest rates stay at four per cent: the bank's committee voted to hold on Thursday as "
               "price rises slowed less than forecast, while pay kept climbing in most sectors.")
    assert find_clusters([("a", STORY), ("b", rewrite)]) == []


# --- incremental == full == datasketch's MinHashLSH --------------------------------------------------------

WORDS = sorted({w for w in duplicates._WORD.findall(
    (SEEDS / "000_f549e937e1170963.txt").read_text(encoding="utf-8").casefold())})


def _reference_pairs(docs: Sequence[tuple[str, str]], threshold: float = THRESHOLD) -> set[tuple[str, str]]:
    """Pairs as datasketch finds them: ``MinHashLSH`` candidates (any shared band), exact Jaccard kept."""
    from datasketch import MinHash, MinHashLSH

    ids, sets = [], []
    for doc_id, text in docs:
        if len(sh := shingles(text)) >= MIN_SHINGLES:
            ids.append(doc_id)
            sets.append(sh)
    hashes = MinHash.bulk([[s.encode("utf-8") for s in sh] for sh in sets], num_perm=NUM_PERM, seed=SEED)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for i, mh in enumerate(hashes):
        lsh.insert(i, mh)
    return {(min(ids[i], ids[j]), max(ids[i], ids[j]))
            for i, mh in enumerate(hashes) for j in lsh.query(mh)
            if j != i and _jaccard(sets[i], sets[j]) >= threshold}


def _components(pairs: set[tuple[str, str]]) -> list[list[str]]:
    groups: list[set[str]] = []
    for a, b in sorted(pairs):
        touching = [g for g in groups if a in g or b in g]
        merged = {a, b}.union(*touching)
        groups = [g for g in groups if g not in touching] + [merged]
    return sorted((sorted(g) for g in groups), key=lambda g: g[0])


def _edit(text: str, rng: random.Random, n: int) -> str:
    """``text`` with ``n`` words replaced, spread over its length (each kills up to SHINGLE shingles)."""
    words = text.split()
    for k in range(n):
        words[(k * len(words)) // n + rng.randrange(max(1, len(words) // n))] = rng.choice(WORDS)
    return " ".join(words)


def _corpus(rng: random.Random) -> dict[str, str]:
    """Generated paragraphs of the seed article's words, with near-copies planted at edit distances on both
    sides of the threshold, and short texts that are never duplicates."""
    docs = {f"g{i:03d}": " ".join(rng.choices(WORDS, k=rng.randint(60, 160))) for i in range(80)}
    for i in range(0, 60, 3):
        docs[f"g{i:03d}-v"] = _edit(docs[f"g{i:03d}"], rng, rng.randint(0, 9))
    docs["s1"] = docs["s2"] = "Lavrov spoke in Moscow on Monday."
    return docs


def _documents(docs: dict[str, str]) -> list[Document]:
    return [Document(id=doc_id, title=f"Item {doc_id}", text=text) for doc_id, text in docs.items()]


def _build(folder: Path, docs: dict[str, str], previous: Path | None) -> duplicates.Duplicates:
    """An incremental write, checked against a full one and against datasketch."""
    folder.mkdir()
    result = write_duplicates(folder, _documents(docs), previous)
    texts = [(d.id, document_text(d)) for d in _documents(docs)]
    full = detect([i for i, _ in texts], lambda k: texts[k][1])[0]
    reference = _reference_pairs(texts)
    assert result.pairs == full.pairs == sorted(reference)
    assert result.clusters == full.clusters == _components(reference)
    stored = json.loads((folder / layout.DUPLICATES).read_text(encoding="utf-8"))
    assert stored["clusters"] == result.clusters and [tuple(p) for p in stored["pairs"]] == result.pairs
    return result


def _chain(rng: random.Random) -> tuple[str, str, str]:
    """a ~ b ~ c with a !~ c: b is two edits from each, a and c four apart."""
    a = " ".join(rng.choices(WORDS, k=200))
    b = _edit(a, rng, 4)
    c = _edit(b, rng, 4)
    sa, sb, sc = shingles(a), shingles(b), shingles(c)
    assert _jaccard(sa, sb) >= THRESHOLD and _jaccard(sb, sc) >= THRESHOLD and _jaccard(sa, sc) < THRESHOLD
    return a, b, c


def test_incremental_builds_equal_full_ones_and_datasketch(tmp_path: Path) -> None:
    rng = random.Random(17)
    docs = _corpus(rng)
    first = _build(tmp_path / "1", docs, None)
    assert first.reused == 0 and first.hashed == len(docs)
    assert len(first.pairs) >= 5  # planted copies on both sides of the threshold: some kept, some not
    assert ["s1", "s2"] not in first.clusters

    docs["x-a"], docs["x-b"], docs["x-c"] = _chain(rng)  # added: a cluster bridged by x-b
    docs["g005-copy"] = _edit(docs["g005"], rng, 1)  # added: a copy of an unchanged document
    second = _build(tmp_path / "2", docs, tmp_path / "1")
    assert (second.hashed, second.reused) == (4, len(docs) - 4)
    assert ["x-a", "x-b", "x-c"] in second.clusters and ("x-a", "x-c") not in second.pairs
    assert ("g005", "g005-copy") in second.pairs

    kept = next(p for p in first.pairs if not p[0].startswith("g005"))
    docs[kept[1]] = " ".join(rng.choices(WORDS, k=90))  # changed: breaks a pair
    docs["g050"] = docs["g040"]  # changed: makes one (a verbatim re-publication)
    third = _build(tmp_path / "3", docs, tmp_path / "2")
    assert (third.hashed, third.reused) == (2, len(docs) - 2)
    assert kept not in third.pairs and ("g040", "g050") in third.pairs

    del docs["x-b"]  # deleted: the bridge; its two neighbours are no longer one cluster
    fourth = _build(tmp_path / "4", docs, tmp_path / "3")
    assert (fourth.hashed, fourth.reused) == (0, len(docs))
    assert not any("x-a" in c or "x-c" in c for c in fourth.clusters)

    (tmp_path / "4" / layout.DUPLICATE_KEYS).unlink()  # a previous build made before band keys were kept
    fifth = _build(tmp_path / "5", docs, tmp_path / "4")
    assert (fifth.hashed, fifth.reused) == (len(docs), 0) and fifth.pairs == fourth.pairs
    (tmp_path / "5" / layout.DUPLICATE_KEYS).write_bytes(b"cut short")  # a damaged one: the same
    sixth = _build(tmp_path / "6", docs, tmp_path / "5")
    assert (sixth.hashed, sixth.reused) == (len(docs), 0) and sixth.pairs == fourth.pairs


def test_unchanged_documents_are_not_shingled_unless_a_new_one_is_their_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _corpus(random.Random(5))
    write_duplicates(tmp_path, _documents(docs))
    docs["new"] = _edit(docs["g031"], random.Random(1), 1)
    seen: list[str] = []
    real = duplicates.shingles
    monkeypatch.setattr(duplicates, "shingles", lambda text, *a: seen.append(text) or real(text, *a))
    (tmp_path / "next").mkdir()
    result = write_duplicates(tmp_path / "next", _documents(docs), tmp_path)
    by_text = {document_text(d): d.id for d in _documents(docs)}
    # the new document (to MinHash it, and again for the exact Jaccard), and the unchanged one it copies
    assert sorted(by_text[t] for t in seen) == ["g031", "new", "new"]
    assert ("g031", "new") in result.pairs and (result.hashed, result.reused) == (1, len(docs) - 1)


def test_other_parameters_reuse_nothing(tmp_path: Path) -> None:
    docs = list(_corpus(random.Random(9)).items())
    ids, text = [i for i, _ in docs], lambda k: docs[k][1]
    result, keys = detect(ids, text)
    keys.save(tmp_path / "keys.npz")
    again = BandKeys.load(tmp_path / "keys.npz")
    assert again.ids == keys.ids and (again.keys == keys.keys).all() and again.params == keys.params
    assert detect(ids, text, (again, result.pairs))[0] == duplicates.Duplicates(
        result.clusters, result.pairs, hashed=0, reused=len(docs))
    stricter = detect(ids, text, (again, result.pairs), threshold=0.8)[0]  # other bands: everything again
    assert stricter.reused == 0 and stricter.pairs == sorted(_reference_pairs(docs, 0.8))


def test_bbc_incremental_equals_full_and_datasketch(tmp_path: Path) -> None:
    bbc = shared_path("data", "bbc-news", "bbc")  # real wire copies and re-publications
    from index.documents import read_corpus
    from index.readers import ReadOptions

    corpus = read_corpus(bbc, options=ReadOptions(detect_language=False))
    docs = {d.id: document_text(d) for d in corpus.documents}
    ids = sorted(docs)
    before = {i: docs[i] for k, i in enumerate(ids) if k % 10 or k < len(ids) // 2}  # later tenths are new
    (tmp_path / "1").mkdir()
    write_duplicates(tmp_path / "1", _documents(before))
    nxt = dict(docs)
    nxt[ids[0]] = nxt[ids[0]][: len(nxt[ids[0]]) // 2]  # changed
    del nxt[ids[1]]  # deleted
    result = _build(tmp_path / "2", nxt, tmp_path / "1")
    assert result.reused == len(before) - 2 and len(result.clusters) > 10
