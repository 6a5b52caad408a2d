"""Stores shared between builds (index/store.py layers, index/layers.py policy): an incremental store reads
exactly like a full one, shares the previous build's layers by hard link, never changes them, and compacts."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from index import layers
from index.store import STORE, StoreReader, kept_documents, open_store, record_digest, write_store

ENTITY_IDS = ["ada", "bo", "cy", "dee", "eve"]


def _corpus(seed: int, n_docs: int, *, changed: set[int] = frozenset(), gone: set[int] = frozenset(),
            added: int = 0) -> tuple[list[dict], list[dict], dict[str, dict]]:
    """Documents ``d000``.. with 1-3 paragraphs each, links and quotes drawn from ``seed``; documents in
    ``changed`` get other links, those in ``gone`` are left out, ``added`` new ones are spread between."""
    rng = random.Random(seed)
    ids = [f"d{i:03d}" for i in range(n_docs) if i not in gone]
    for j in range(added):  # new documents sort between old ones (corpus order is by path)
        ids.append(f"d{rng.randrange(n_docs):03d}+{j}")
    ids.sort()
    docs, paras = [], []
    for did in ids:
        r = random.Random(did + ("*" if did[1:4].isdigit() and int(did[1:4]) in changed else ""))
        date = None if r.random() < 0.2 else f"20{r.randrange(10, 24)}-0{r.randrange(1, 9)}-1{r.randrange(9)}"
        docs.append({"id": did, "title": f"T {did}", "text": f"text of {did}", "date": date,
                     "source": None, "url": None})
        for n in range(1, r.randrange(2, 5)):
            links = [{"start": 0, "end": 2, "text": e, "entity_id": e, "type": "person"}
                     for e in r.sample(ENTITY_IDS, r.randrange(0, 3))]
            quotes = [{"start": 0, "end": 1, "text": "q", "speaker": r.choice([None, *ENTITY_IDS])}
                      for _ in range(r.randrange(0, 2))]
            paras.append({"id": f"{did}#{n}", "doc_id": did, "n": n, "text": f"p{n} {did}", "links": links,
                          "quotes": quotes})
    mentions: dict[str, int] = {}
    for p in paras:
        for x in p["links"]:
            mentions[x["entity_id"]] = mentions.get(x["entity_id"], 0) + 1
    entities = {e: {"id": e, "name": e.title(), "type": "person", "aliases": [], "mentions": n,
                    "surfaces": [e]} for e, n in sorted(mentions.items())}
    return docs, paras, entities


def _reads(store: StoreReader) -> dict[str, Any]:
    """Every read of ``StoreReader``, on every id."""
    ids, _ = store.document_list()
    pids = store.paragraph_ids()
    out: dict[str, Any] = {
        "meta": store.meta(), "counts": store.counts(), "check": store.check(),
        "document_list": store.document_list(), "documents": store.documents([*ids, "nope"]),
        "doc_heads": store.doc_heads(ids), "paragraph_ids": pids,
        "paragraphs": store.paragraphs([*pids, "nope"]), "paragraph_docs": store.paragraph_docs(pids),
        "entity_counts": store.entity_counts(pids[::3]), "iter_paragraphs": list(store.iter_paragraphs()),
        "iter_documents": list(store.iter_documents()), "entity_table": store.entity_table(),
        "known": store.known([*ENTITY_IDS, "zed"]), "entity_briefs": store.entity_briefs(ENTITY_IDS),
        "find": [store.find_entities(type=t, q=q, limit=2, offset=o)
                 for t in (None, "person") for q in (None, "d") for o in (0, 1)],
    }
    for i in ids:
        out[f"document {i}"] = store.document(i)
        out[f"doc_paragraphs {i}"] = store.doc_paragraphs(i)
    for p in pids:
        out[f"paragraph {p}"] = store.paragraph(p)
    for e in [*ENTITY_IDS, "zed"]:
        out[f"entity {e}"] = store.entity(e)
        out[f"entity_mentions {e}"] = store.entity_mentions(e, 3)
        out[f"co_mentioned {e}"] = store.co_mentioned(e, 3)
        out[f"quoted {e}"] = store.quoted(e)
    return out


def _write(folder: Path, data: tuple, previous: Path | None = None) -> Path:
    folder.mkdir(parents=True)
    write_store(folder / STORE, *data, previous=previous / STORE if previous else None)
    return folder


def _read_all(folder: Path) -> dict[str, Any]:
    store = open_store(folder)
    try:
        return _reads(store)
    finally:
        store.close()


def _fingerprint(folder: Path) -> dict[str, tuple[int, str]]:
    return {p.name: (p.stat().st_ino, hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.iterdir()}


def test_incremental_store_reads_like_a_full_one_and_shares_the_base(tmp_path: Path) -> None:
    base = _write(tmp_path / "b1", _corpus(1, 60))
    before = _fingerprint(base)
    reader = open_store(base)  # a reader of the old build, open across the next build
    old_reads = _reads(reader)
    data = _corpus(1, 60, changed={3, 10}, gone={5, 6}, added=4)
    inc = _write(tmp_path / "b2", data, previous=base)
    full = _write(tmp_path / "full", data)
    assert _read_all(inc) == _read_all(full)
    assert _fingerprint(base) == before  # the previous build's files are untouched ...
    assert _reads(reader) == old_reads  # ... and its open reader still reads the old build
    reader.close()
    names = sorted(p.name for p in inc.iterdir())
    assert names == sorted([STORE, "store-000001.sqlite", "store-000002.sqlite"])
    assert (inc / "store-000001.sqlite").stat().st_ino == (base / "store-000001.sqlite").stat().st_ino
    con = sqlite3.connect(inc / "store-000002.sqlite")
    assert sorted(r[0] for r in con.execute("SELECT id FROM documents")) == sorted(  # its own share only
        [d["id"] for d in data[0] if "+" in d["id"] or d["id"] in ("d003", "d010")])
    con.close()


def test_unchanged_corpus_writes_no_layer(tmp_path: Path) -> None:
    data = _corpus(2, 30)
    one = _write(tmp_path / "b1", data)
    two = _write(tmp_path / "b2", data, previous=one)
    assert sorted(p.name for p in two.iterdir()) == sorted([STORE, "store-000001.sqlite"])
    assert _read_all(two) == _read_all(one)


def test_a_chain_of_builds_compacts_and_stays_equal(tmp_path: Path) -> None:
    """Small changes build after build: the delta layers stay within ``MAX_DELTAS`` (merged into the new
    layer), and a large change writes a new base; every build reads like a full build of its data."""
    previous = _write(tmp_path / "b0", _corpus(3, 80))
    seen_layers = []
    for step in range(1, 9):
        big = step == 7
        data = _corpus(3, 80, changed=set(range(step, 80, 2)) if big else {step, step + 20},
                       gone={40 + step}, added=step)
        folder = _write(tmp_path / f"b{step}", data, previous=previous)
        assert _read_all(folder) == _read_all(_write(tmp_path / f"full{step}", data))
        files = sorted(p.name for p in folder.glob("store-*.sqlite"))
        seen_layers.append(len(files))
        assert len(files) <= 1 + layers.MAX_DELTAS
        if big:  # half the documents changed: one new base, nothing shared
            assert len(files) == 1 and files[0] not in {p.name for p in previous.iterdir()}
        previous = folder
    assert max(seen_layers) == 1 + layers.MAX_DELTAS and 2 in seen_layers  # merged, then grew again


def test_out_of_order_paragraphs_are_refused(tmp_path: Path) -> None:
    docs, paras, entities = _corpus(4, 5)
    paras = paras[1:] + paras[:1]
    with pytest.raises(ValueError, match="out of build order"):
        write_store(tmp_path / STORE, docs, paras, entities)


def test_missing_layer_is_a_one_line_error(tmp_path: Path) -> None:
    from index.errors import IndexFormatMismatch

    folder = _write(tmp_path / "b1", _corpus(5, 5))
    (folder / "store-000001.sqlite").unlink()
    with pytest.raises(IndexFormatMismatch, match=r"store-000001\.sqlite is missing.*personae build") as err:
        open_store(folder)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("written", "live", "total", "keep"),
    [
        ([], [], 10, []),  # no previous layers
        ([100], [100], 100, [0]),  # nothing changed
        ([100], [90], 100, [0]),  # 10 changed or added: base shared, a new delta
        ([100], [70], 100, []),  # 30 of the base dead: new base
        ([100], [80], 120, []),  # 40 of 120 rows outside the base (> DELTA_SHARE): new base
        ([100, 5, 5], [95, 5, 0], 110, [0, 1]),  # a delta no longer used is dropped
        ([100, 2, 2, 2, 2], [100, 2, 2, 2, 2], 110, [0]),  # too many deltas: merged into the new one
    ],
)
def test_keep_layers(written: list[int], live: list[int], total: int, keep: list[int]) -> None:
    assert layers.keep_layers(written, live, total) == keep


def _kept(data: tuple, previous: tuple) -> tuple[list[dict], list[dict], dict, set[str]]:
    """``data`` as a build that keeps rows hands it over: the documents ``previous`` held with the same
    record and rows come without paragraphs."""
    docs, paras, entities = data

    def rows(data: tuple) -> dict[str, tuple[dict, list[dict]]]:
        out = {d["id"]: (d, []) for d in data[0]}
        for p in data[1]:
            out[p["doc_id"]][1].append(p)
        return out

    before, now = rows(previous), rows(data)
    kept = {i for i, v in now.items() if before.get(i) == v}
    return docs, [p for p in paras if p["doc_id"] not in kept], entities, kept


def test_kept_documents_read_like_a_full_build_through_compactions(tmp_path: Path) -> None:
    """Documents handed over as kept (no paragraphs) keep the previous store's rows, also when their layer
    is compacted away and their rows are copied into the new one (step 7 changes half the documents);
    counts stay right."""
    data0 = _corpus(6, 80)
    previous = _write(tmp_path / "b0", data0)
    prior = data0
    for step in range(1, 9):
        changed = set(range(step, 80, 2)) if step == 7 else {step, step + 20}
        data = _corpus(6, 80, changed=changed, gone={40 + step}, added=step)
        docs, paras, entities, kept = _kept(data, prior)
        assert kept and kept <= kept_documents(previous / STORE, {d["id"]: record_digest(d) for d in docs})
        folder = tmp_path / f"b{step}"
        folder.mkdir()
        records = {d["id"]: record_digest(d) for d in docs} if step % 2 else None  # given, or computed
        counts = write_store(folder / STORE, docs, paras, entities, previous=previous / STORE, kept=kept,
                             records=records)
        full = _write(tmp_path / f"full{step}", data)
        assert _read_all(folder) == _read_all(full)
        assert counts == open_store(full).counts()
        previous, prior = folder, data


def test_a_kept_document_must_be_the_one_the_previous_store_recorded(tmp_path: Path) -> None:
    data = _corpus(7, 10)
    one = _write(tmp_path / "b1", data)
    docs, paras, entities = data
    moved = [dict(d, url="https://example.org/moved") if d["id"] == "d002" else d for d in docs]
    records = {d["id"]: record_digest(d) for d in moved}
    assert "d002" not in kept_documents(one / STORE, records)  # its record changed: linked again
    assert len(kept_documents(one / STORE, records)) == len(docs) - 1
    (tmp_path / "b2").mkdir()
    with pytest.raises(ValueError, match="'d002' is kept"):
        write_store(tmp_path / "b2" / STORE, moved, [p for p in paras if p["doc_id"] != "d002"], entities,
                    previous=one / STORE, kept={"d002"})


def test_a_store_written_before_records_keeps_nothing(tmp_path: Path) -> None:
    data = _corpus(8, 10)
    one = _write(tmp_path / "b1", data)
    con = sqlite3.connect(one / STORE)
    for column in ("record", "paragraphs", "link_rows", "quote_rows"):
        con.execute(f"ALTER TABLE live DROP COLUMN {column}")
    con.commit()
    con.close()
    assert kept_documents(one / STORE, {d["id"]: record_digest(d) for d in data[0]}) == set()
    two = _write(tmp_path / "b2", data, previous=one)  # still shares its unchanged rows by digest
    assert _read_all(two)["iter_paragraphs"] == _read_all(one)["iter_paragraphs"]
