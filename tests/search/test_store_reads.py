"""The query side reads records from the build's store: results, pages and exports agree with it, threads
share one reader, and a missing or damaged store is a one-line error."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from index import layout
from index.errors import IndexFormatMismatch
from index.settings import Settings
from index.store import read_documents, read_entities, read_paragraphs
from search.results import SearchRequest
from search.searcher import Searcher

LAVROV = "sergei-lavrov"


def test_hits_and_pages_come_from_the_store(seed_searcher: Searcher) -> None:
    folder = seed_searcher.build_folder
    paragraphs = {p["id"]: p for p in read_paragraphs(folder)}
    doc = read_documents(folder)[0]
    result = seed_searcher.search("Lavrov", limit=20)
    assert result["hits"]
    for h in result["hits"]:
        p = paragraphs[h["paragraph_id"]]
        assert (h["text"], h["quotes"], h["n"]) == (p["text"], p["quotes"], p["n"])
        assert h["entities"] == sorted({x["entity_id"] for x in p["links"]})
        assert h["title"] == doc["title"]
    page = seed_searcher.document(doc["id"])
    assert page["paragraphs"] == list(paragraphs.values())
    assert "fingerprint" not in page and page["text"] == doc["text"]


def test_entity_page_and_list_come_from_the_store(seed_searcher: Searcher) -> None:
    folder = seed_searcher.build_folder
    table = read_entities(folder)
    page = seed_searcher.entity(LAVROV, limit=3)
    linked = [p for p in read_paragraphs(folder) if any(x["entity_id"] == LAVROV for x in p["links"])]
    assert page["mention_count"] == len(linked) and len(page["mentions"]) == 3
    assert [m["paragraph_id"] for m in page["mentions"]] == [p["id"] for p in linked[:3]]  # one undated doc
    said: dict[str, str] = {}  # a quote across paragraphs is one entry, its segments joined
    for p in read_paragraphs(folder):
        for q in p["quotes"]:
            if q["speaker"] == LAVROV:
                key = q["quote_id"] or f"{p['id']}/{q['start']}"
                said[key] = f"{said[key]} … {q['text']}" if key in said else q["text"]
    assert said and [q["text"] for q in page["quotes"]] == list(said.values())
    assert page["co_mentioned"] and all(c["known"] and c["id"] in table for c in page["co_mentioned"])
    listing = seed_searcher.entities(type="person", limit=500)
    persons = sorted((e for e in table.values() if e["type"] == "person"),
                     key=lambda e: (-e["mentions"], e["id"]))
    assert listing["total"] == len(persons) and listing["entities"] == persons
    assert seed_searcher.entity_name(LAVROV) == table[LAVROV]["name"]
    assert seed_searcher.entity_name("no-such-entity") == "no-such-entity"


def test_threads_search_one_searcher(seed_searcher: Searcher) -> None:
    """The server's threads share a Searcher: each reads the store through its own connection."""
    queries = ["Lavrov", "peace talks in Riyadh", "rare earth metals", f"said:{LAVROV}",
               "security guarantees"]
    requests = [SearchRequest(q=q, group=g, limit=10) for q in queries for g in (False, True)]
    expected = [_comparable(seed_searcher.run(r).to_dict()) for r in requests]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda r: _comparable(seed_searcher.run(r).to_dict()), requests * 4))
    assert got == expected * 4


def _comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "took_ms"}


@pytest.fixture
def seed_copy(seed_index, tmp_path: Path) -> Settings:
    """A copy of the seed index that a test may damage."""
    settings, _ = seed_index
    shutil.copytree(settings.index_path, tmp_path / "index")
    return Settings.load(env={}, corpus=settings.corpus, index_dir=str(tmp_path / "index"))


def test_missing_store_is_a_one_line_error(seed_copy: Settings) -> None:
    (layout.current_build(seed_copy.index_path) / layout.STORE).unlink()
    with pytest.raises(IndexFormatMismatch, match=r"store\.sqlite is missing.*personae build") as err:
        Searcher.open(seed_copy)
    assert "\n" not in str(err.value)


def test_store_damaged_after_start_up_answers_with_a_one_line_error(seed_copy: Settings) -> None:
    """Damage the cheap start-up check cannot see (same size) reaches a request as IndexFormatMismatch
    (503 at the web edge), not a bare sqlite3 error."""
    path = layout.current_build(seed_copy.index_path) / layout.STORE
    searcher = Searcher.open(seed_copy)
    data = bytearray(path.read_bytes())
    data[4096:] = b"\x5a" * (len(data) - 4096)  # every page after the schema page
    path.write_bytes(bytes(data))
    with ThreadPoolExecutor(max_workers=1) as pool:  # a request thread: its own connection
        with pytest.raises(IndexFormatMismatch, match=r"store\.sqlite is damaged") as err:
            pool.submit(searcher.entity, LAVROV).result()
    assert "\n" not in str(err.value)
