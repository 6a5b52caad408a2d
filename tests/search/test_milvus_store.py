"""The Milvus twin of the record store (search/backends/milvus_store.py) against the SQLite store it copies,
on the real seed build exported to milvus-lite; the live-build pointer; records longer than a VARCHAR."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from index import layout
from index.errors import IndexFormatMismatch, IndexMissing
from index.store import StoreReader, open_store

LAVROV = "sergei-lavrov"
_MISSING = [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(_MISSING),
                                reason=f"needs {', '.join(_MISSING)}: pip install 'personae[milvus]'")


@pytest.fixture(scope="module")
def build_folder(seed_index) -> Path:
    settings, _ = seed_index
    return layout.current_build(settings.index_path)


@pytest.fixture(scope="module")
def exported(build_folder, tmp_path_factory):
    """(uri, the live build opened from Milvus): the seed build exported as `personae export-milvus` does."""
    from search.backends.milvus import write
    from search.backends.milvus_store import open_live

    uri = str(tmp_path_factory.mktemp("milvus-store") / "milvus.db")
    info = write(build_folder, uri)
    assert info["live"] and info["records"] > 0
    live = open_live(uri, "personae")
    yield uri, live
    live.backend.close()


@pytest.fixture(scope="module")
def sqlite(build_folder):
    store = open_store(build_folder)
    yield store
    store.close()


@pytest.mark.parametrize("scan", [None, 3])
def test_every_read_equals_the_sqlite_store(exported, sqlite: StoreReader, build_folder, scan, monkeypatch
                                            ) -> None:
    """``scan=3``: every listing longer than 3 rows goes through Milvus' query iterator, 3 rows a batch."""
    from search.backends import milvus_store
    from search.backends.milvus_store import MilvusStore

    _, live = exported
    if scan:
        monkeypatch.setattr(milvus_store, "_SCAN", scan)
    ms = MilvusStore.open(live.store.client, live.store.paragraph_collection)  # its own per-entity cache
    assert live.name == build_folder.name
    assert live.manifest == layout.read_manifest(build_folder)
    assert ms.document_list() == sqlite.document_list()
    assert ms.counts() == sqlite.counts() and ms.check() == []
    assert ms._ids_field() == "entity_text"  # no linked id holds whitespace: the fast field
    docs = sqlite.document_list()[0]
    assert ms.documents(docs) == sqlite.documents(docs) and ms.doc_heads(docs) == sqlite.doc_heads(docs)
    assert ms.document(docs[0]) == sqlite.document(docs[0]) and ms.document("no/such") is None
    assert ms.doc_paragraphs(docs[0]) == sqlite.doc_paragraphs(docs[0])
    pids = sqlite.paragraph_ids()
    assert ms.paragraph_ids() == pids
    assert ms.paragraphs(pids) == sqlite.paragraphs(pids)
    assert ms.paragraph(pids[3]) == sqlite.paragraph(pids[3])
    assert ms.paragraph_docs([*pids, "nope"]) == sqlite.paragraph_docs(pids)
    assert ms.entity_counts(pids[:7]) == sqlite.entity_counts(pids[:7])
    assert list(ms.iter_paragraphs()) == list(sqlite.iter_paragraphs())
    assert list(ms.iter_documents()) == list(sqlite.iter_documents())
    table = sqlite.entity_table()
    assert ms.entity_table() == table and list(ms.entity_table()) == list(table)
    assert ms.entity_briefs([*table, "nope"]) == sqlite.entity_briefs(table)
    assert ms.known([*table, "nope"]) == set(table)
    for eid in table:
        assert ms.entity(eid) == sqlite.entity(eid), eid
        assert ms.entity_mentions(eid, 3) == sqlite.entity_mentions(eid, 3), eid
        assert ms.co_mentioned(eid, 5) == sqlite.co_mentioned(eid, 5), eid
        assert ms.quoted(eid) == sqlite.quoted(eid), eid
    assert sqlite.quoted(LAVROV)  # the seed has quotes: the comparison above is not of two empty lists


@pytest.mark.parametrize("kwargs", [
    {"type": None, "q": None, "limit": 5, "offset": 0},
    {"type": None, "q": None, "limit": 100, "offset": 7},
    {"type": "person", "q": None, "limit": 3, "offset": 2},
    {"type": "place", "q": None, "limit": 50, "offset": 0},
    {"type": None, "q": "LAV", "limit": 10, "offset": 0},
    {"type": "org", "q": "a", "limit": 2, "offset": 1},
    {"type": None, "q": "e_", "limit": 10, "offset": 0},  # like's wildcards are searched as text
    {"type": None, "q": '%"\\', "limit": 10, "offset": 0},
    {"type": "person", "q": "zzzz", "limit": 10, "offset": 0},
])
def test_entity_list_pages_like_the_sqlite_store(exported, sqlite: StoreReader, kwargs) -> None:
    _, live = exported
    assert live.store.find_entities(**kwargs) == sqlite.find_entities(**kwargs)


def test_registry_copy_is_the_builds(exported, build_folder) -> None:
    _, live = exported
    with live.store.registry_copy() as folder:
        copy = folder / layout.REGISTRY
        assert copy.read_bytes() == (build_folder / layout.REGISTRY).read_bytes()
    assert not copy.exists()  # a temporary folder: nothing stays on the server's disk


def test_parts_never_split_a_character() -> None:
    from search.backends.milvus_store import _parts

    text = "aé€😀" * 5000  # 1 + 2 + 3 + 4 bytes
    pieces = _parts(text, size=1000)
    assert "".join(pieces) == text and all(len(p.encode()) <= 1000 for p in pieces) and len(pieces) > 40
    assert _parts("") == [""]


def test_a_record_longer_than_a_varchar_round_trips(tmp_path) -> None:
    """Documents past 64 KiB (a long report) are stored in parts and read back whole."""
    from search.backends.milvus import connect
    from search.backends.milvus_store import PART_BYTES, MilvusStore, _dumps, _row, create_records

    client = connect(str(tmp_path / "m.db"))
    try:
        create_records(client, "t__records", local=True)
        long = {"id": "report", "text": "Зеленський сказав « ok » " * 12_000}
        short = {"id": "note", "text": "short"}
        rows = [*_row("document", "report", _dumps(long), ord=0),
                *_row("document", "note", _dumps(short), ord=1)]
        assert len(rows) > 3 and len(_dumps(long).encode()) > 3 * PART_BYTES
        client.insert("t__records", rows)
        client.flush("t__records")
        client.load_collection("t__records")
        store = MilvusStore(client, "t__records", "t")
        assert store.documents(["report", "note", "none"]) == {"report": long, "note": short}
        assert [d["id"] for d in store.iter_documents()] == ["report", "note"]
    finally:
        client.close()


def test_live_pointer(build_folder, tmp_path) -> None:
    """Nothing exported: IndexMissing. A folder export moves the pointer; a bare (rows, vectors) load does
    not, and the live build is never pruned; the pointer keeps a bounded history."""
    from search.backends.milvus import connect, exported, rows_from_build, write
    from search.backends.milvus_store import (
        _KEEP_POINTERS,
        _pointers,
        live_build,
        live_collection,
        open_live,
        set_live,
    )

    uri = str(tmp_path / "m.db")
    client = connect(uri)
    try:
        with pytest.raises(IndexMissing, match="export-milvus"):
            open_live(uri, "personae", client=client)
        write(build_folder, uri, client=client)
        assert live_build(client, "personae") == build_folder.name
        rows, vectors, _ = rows_from_build(build_folder)
        for i in range(3):
            info = write((rows[:2], vectors[:2]), uri, build=f"build-29991231T00000000000{i}Z", keep=1,
                         client=client)
            assert not info["live"]
        assert live_build(client, "personae") == build_folder.name
        names = exported(client, "personae")
        assert len(names) == 2 and names[0].endswith(build_folder.name.replace("-", "_"))  # live + newest
        for _ in range(_KEEP_POINTERS + 3):
            set_live(client, "personae", build_folder.name)
        assert len(_pointers(client, live_collection("personae"))) == _KEEP_POINTERS
    finally:
        client.close()


def test_an_export_without_records_is_refused(build_folder, tmp_path) -> None:
    """A paragraph collection alone (an older export) cannot serve: one line that says to re-export."""
    from search.backends.milvus import connect, rows_from_build, write
    from search.backends.milvus_store import open_live, set_live

    uri = str(tmp_path / "m.db")
    client = connect(uri)
    try:
        rows, vectors, _ = rows_from_build(build_folder)
        write((rows, vectors), uri, build="build-old", client=client)
        set_live(client, "personae", "build-old")
        with pytest.raises(IndexFormatMismatch, match="records .*export-milvus"):
            open_live(uri, "personae", client=client)
    finally:
        client.close()


def test_linked_ids_with_whitespace_are_read_from_the_array(build_folder, tmp_path) -> None:
    """``entity_text`` splits on whitespace: a build whose linked ids hold a space is read from the
    ``entity`` array instead, and counts stay exact."""
    import shutil

    from index.store import STORE, read_documents, read_entities, read_paragraphs, write_store
    from search.backends.milvus import connect, write
    from search.backends.milvus_store import open_live

    spaced = "local:sergei lavrov"
    copy = tmp_path / build_folder.name
    shutil.copytree(build_folder, copy)
    paragraphs = read_paragraphs(build_folder)
    for p in paragraphs:
        for x in p["links"]:
            x["entity_id"] = spaced if x["entity_id"] == LAVROV else x["entity_id"]
        for q in p["quotes"]:
            q["speaker"] = spaced if q.get("speaker") == LAVROV else q.get("speaker")
    entities = read_entities(build_folder)
    entities[spaced] = dict(entities.pop(LAVROV), id=spaced)
    (copy / STORE).unlink()
    write_store(copy / STORE, read_documents(build_folder), paragraphs, entities)
    uri = str(tmp_path / "m.db")
    client = connect(uri)
    sqlite = open_store(copy)
    try:
        write(copy, uri, client=client)
        ms = open_live(uri, "personae", client=client).store
        pids = sqlite.paragraph_ids()
        assert ms._ids_field() == "entity"
        assert ms.entity_counts(pids) == sqlite.entity_counts(pids) and sqlite.entity_counts(pids)[spaced]
        for eid in (spaced, "donald-trump"):
            assert ms.co_mentioned(eid, 50) == sqlite.co_mentioned(eid, 50)
            assert ms.entity_mentions(eid, 5) == sqlite.entity_mentions(eid, 5)
    finally:
        sqlite.close()
        client.close()
