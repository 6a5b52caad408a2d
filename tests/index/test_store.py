"""The record store (index/store.py): a real SQLite file written once, read by id, read-only, by threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from index.errors import IndexFormatMismatch, StorageError
from index.store import (
    STORE,
    StoreReader,
    open_store,
    read_documents,
    read_entities,
    read_paragraphs,
    write_store,
)

DOCS = [
    {"id": "b", "title": "Later", "text": "Later\n\nAda met Bo. \"Yes,\" Ada said.", "date": "2024-05-01",
     "source": "wire", "url": "http://x/b"},
    {"id": "a", "title": "Undated", "text": "Undated\n\nBo alone.", "date": None, "source": None,
     "url": None},
    {"id": "c", "title": "Earlier", "text": "Earlier\n\nAda and Cy.\n\n\"No,\" said Cy.",
     "date": "2021-01-02", "source": None, "url": None},
]


def _link(eid: str, start: int = 0) -> dict:
    return {"start": start, "end": start + 2, "text": eid, "entity_id": eid, "type": "person",
            "confidence": 1.0, "rule": "exact", "candidates": [[eid, 1.0]]}


def _quote(speaker: str | None, text: str, quote_id: str = "") -> dict:
    return {"start": 0, "end": len(text), "text": text, "speaker": speaker, "confidence": 0.9, "cue": "said",
            "how": "explicit", "descriptor": "", "quote_id": quote_id}


PARAGRAPHS = [
    {"id": "b#1", "doc_id": "b", "n": 1, "start": 7, "end": 12, "text": "Ada met Bo.",
     "links": [_link("ada"), _link("bo", 8), _link("ada", 3)], "quotes": [], "page": None},
    {"id": "b#2", "doc_id": "b", "n": 2, "start": 13, "end": 30, "text": "\"Yes,\" Ada said.",
     "links": [_link("ada", 7)], "quotes": [_quote("ada", "Yes")]},
    {"id": "a#1", "doc_id": "a", "n": 1, "start": 9, "end": 18, "text": "Bo alone.", "links": [_link("bo")],
     "quotes": [_quote(None, "alone")]},
    {"id": "c#1", "doc_id": "c", "n": 1, "start": 9, "end": 20, "text": "Ada and Cy.",
     "links": [_link("ada"), _link("cy", 8)], "quotes": []},
    {"id": "c#2", "doc_id": "c", "n": 2, "start": 22, "end": 35, "text": "\"No,\" said Cy.", "links": [],
     "quotes": [_quote("ada", "No")]},  # a quote attributed where the paragraph links nobody
]
ENTITIES = {
    "ada": {"id": "ada", "name": "Ada Lovelace", "type": "person", "aliases": ["Countess of Lovelace"],
            "mentions": 4, "surfaces": ["Ada"]},
    "bo": {"id": "bo", "name": "Bo", "type": "person", "aliases": [], "mentions": 2, "surfaces": ["Bo"]},
    "cy": {"id": "cy", "name": "Cy Corp", "type": "org", "aliases": [], "mentions": 1, "surfaces": ["Cy"]},
}


@pytest.fixture
def store(tmp_path: Path) -> StoreReader:
    write_store(tmp_path / STORE, DOCS, PARAGRAPHS, ENTITIES)
    reader = open_store(tmp_path)
    yield reader
    reader.close()


def test_round_trip(tmp_path: Path, store: StoreReader) -> None:
    assert read_documents(tmp_path) == DOCS
    assert read_paragraphs(tmp_path) == PARAGRAPHS
    assert read_entities(tmp_path) == ENTITIES
    assert store.counts() == {"documents": 3, "paragraphs": 5, "entities": 3, "link_rows": 6, "quote_rows": 2}
    assert store.check() == []
    assert store.document_list() == (["b", "a", "c"], ["2024-05-01", None, "2021-01-02"])
    assert store.document("c") == DOCS[2] and store.document("nope") is None
    assert store.doc_heads(["a", "b", "nope"]) == {
        "a": {"title": "Undated", "date": None, "source": None, "url": None},
        "b": {"title": "Later", "date": "2024-05-01", "source": "wire", "url": "http://x/b"},
    }
    assert store.paragraph("c#2") == PARAGRAPHS[4] and store.paragraph("c#9") is None
    assert store.paragraphs(["c#1", "b#1", "x"]) == {"c#1": PARAGRAPHS[3], "b#1": PARAGRAPHS[0]}
    assert store.paragraph_docs(["c#1", "b#2", "a#1"]) == {"c#1": 2, "b#2": 0, "a#1": 1}
    assert [p["id"] for p in store.doc_paragraphs("b")] == ["b#1", "b#2"]
    assert store.known(["ada", "zed", "cy"]) == {"ada", "cy"}
    assert store.entity_briefs(["cy", "zed"]) == {"cy": ("Cy Corp", "org")}
    assert store.entity_counts(["b#1", "b#2", "c#1", "b#1"]) == {"ada": 3, "bo": 1, "cy": 1}


def test_many_ids_are_read_in_chunks(tmp_path: Path) -> None:
    docs = [{"id": f"d{i}", "title": f"T{i}", "text": "x", "date": None} for i in range(1200)]
    paras = [{"id": f"d{i}#1", "doc_id": f"d{i}", "n": 1, "text": "x", "links": [], "quotes": []}
             for i in range(1200)]
    write_store(tmp_path / STORE, docs, paras, {})
    reader = open_store(tmp_path)
    wanted = [f"d{i}#1" for i in range(0, 1200, 1)]
    assert list(reader.paragraphs(wanted)) == wanted  # id order of the rows, across chunks
    assert len(reader.paragraph_docs(wanted)) == 1200
    reader.close()


def test_entity_lookups(store: StoreReader) -> None:
    def find(type: str | None = None, q: str | None = None, limit: int = 10, offset: int = 0):  # noqa: A002
        return store.find_entities(type=type, q=q, limit=limit, offset=offset)

    assert find()[0] == 3
    assert [e["id"] for e in find(limit=2, offset=1)[1]] == ["bo", "cy"]  # most mentioned first
    assert [e["id"] for e in find(type="person")[1]] == ["ada", "bo"]
    assert find(q="COUNTESS")[1] == [ENTITIES["ada"]]  # aliases, casefolded
    assert find(q="lovelacecountess")[0] == 0  # no match across two names
    assert find(type="org", q="ada") == (0, [])
    count, paras, dates = store.entity_mentions("ada", 2)
    assert count == 3 and sorted(dates) == ["2021-01-02", "2024-05-01", "2024-05-01"]
    assert [p["id"] for p in paras] == ["c#1", "b#1"]  # oldest document first; limit applies
    assert paras[0]["_doc"]["title"] == "Earlier"
    assert store.co_mentioned("ada", 5) == [("bo", 1), ("cy", 1)]
    assert [p["id"] for p in store.quoted("ada")] == ["c#2", "b#2"]  # speaker lookups need no link
    assert store.quoted("bo") == []


def test_reader_cannot_write(store: StoreReader) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store._con().execute("DELETE FROM documents")
    assert store.counts()["documents"] == 3


def test_threads_read_with_their_own_connections(store: StoreReader) -> None:
    expected = {p["id"]: p for p in PARAGRAPHS}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def reader() -> None:
        try:
            barrier.wait()
            for _ in range(200):
                assert store.paragraphs(expected) == expected
                assert store.entity_mentions("ada", 10)[0] == 3
        except BaseException as err:  # reported below, from the main thread
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store._all) >= 8  # one connection per thread that read
    late = threading.Thread(target=store.paragraph, args=("b#1",))
    late.start()
    late.join()
    assert set(store._all) == {threading.current_thread(), late}  # a new connection closed the dead ones'


def test_write_refuses_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / STORE).write_bytes(b"")
    with pytest.raises(FileExistsError):
        write_store(tmp_path / STORE, DOCS, PARAGRAPHS, ENTITIES)


def test_write_failure_names_the_file(tmp_path: Path) -> None:
    """SQLite reports a full disk or an unopenable file as ``sqlite3.Error``, which the CLI would not make
    one line: it becomes ``StorageError`` naming the file."""
    path = tmp_path / "gone" / STORE
    with pytest.raises(StorageError, match=rf"cannot write {path}: unable to open database file"):
        write_store(path, DOCS, PARAGRAPHS, ENTITIES)


def test_missing_store_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatMismatch, match=r"store\.sqlite is missing; rebuild") as err:
        open_store(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["header", "truncate", "tables"])
def test_damaged_store_is_one_line(tmp_path: Path, damage: str) -> None:
    path = tmp_path / STORE
    write_store(path, DOCS, PARAGRAPHS, ENTITIES)
    data = bytearray(path.read_bytes())
    if damage == "header":
        data[:16] = b"not a database!!"
    elif damage == "truncate":
        data = data[:1024]  # the first page only: the tables' pages are gone
    else:
        data[4096:] = b"\xa5" * (len(data) - 4096)  # every page after the first overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatMismatch) as err:
        reader = open_store(tmp_path)
        problems = reader.check()
        if problems:
            raise IndexFormatMismatch("; ".join(problems))
        reader.paragraphs([p["id"] for p in PARAGRAPHS])
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)


def test_other_store_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / STORE
    write_store(path, DOCS, PARAGRAPHS, ENTITIES)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    con.commit()
    con.close()
    with pytest.raises(IndexFormatMismatch, match="store format 99"):
        open_store(tmp_path)
