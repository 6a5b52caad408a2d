"""Rebuild under traffic: readers searching and refreshing while the index is rebuilt twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from index import layout
from index.build import build_index
from index.encoder import load_encoder
from index.store import read_paragraphs
from search.searcher import Searcher
from tests.conftest import hash_settings

QUERIES = ["goats", "river boats", "Okonkwo strike", "harbour", "farm goats OR ferries", '"mountain goats"']


def _corpus(folder: Path, version: int) -> None:
    for p in folder.glob("*.txt"):
        p.unlink()
    for i in range(12 if version < 3 else 6):  # version 3 deletes half the documents
        body = (
            f"Story {i} version {version}\n\nRiver boats and mountain goats, part {i}, edition {version}.\n\n"
            f"Marta Okonkwo led the harbour strike {i} times. Ferries stopped.\n"
        )
        if version == 2 and i % 3 == 0:
            body += f"\nA new paragraph about a farm with goats, revision {version}.\n"
        (folder / f"d{i:02}.txt").write_text(body, encoding="utf-8")
    if version >= 2:
        (folder / "new.txt").write_text(
            "New arrivals\n\nGoats arrived at the harbour by ferry.\n", encoding="utf-8"
        )


def _snapshot(folder: Path) -> dict[str, str]:
    return {r["id"]: r["text"] for r in read_paragraphs(folder)}


@pytest.mark.slow
def test_queries_and_refresh_during_two_rebuilds(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _corpus(corpus, 1)
    settings = hash_settings(corpus, tmp_path / "idx")
    encoder = load_encoder("hash")
    first = build_index(settings, encoder=encoder).folder
    builds = {first.name: _snapshot(first)}
    searcher = Searcher.open(settings)
    searcher.linker()  # load spaCy before the clock starts

    stop = threading.Event()
    answers: list[tuple[str, list[tuple[str, str]]]] = []
    lock = threading.Lock()

    def reader(n: int) -> int:
        done = 0
        while not stop.is_set():
            q = QUERIES[(n + done) % len(QUERIES)]
            before = searcher.build_folder.name
            result = searcher.search(q, mode="hybrid" if done % 2 else "keyword", limit=20)
            after = searcher.build_folder.name
            if before == after:  # the query certainly ran on this build
                with lock:
                    answers.append((before, [(h["paragraph_id"], h["text"]) for h in result["hits"]]))
            searcher.refresh()
            done += 1
        return done

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(reader, n) for n in range(4)]
        try:
            for version in (2, 3):
                time.sleep(0.3)
                _corpus(corpus, version)
                folder = build_index(settings, encoder=encoder).folder
                builds[folder.name] = _snapshot(folder)
            time.sleep(0.5)  # let the readers move on to the last build
        finally:
            stop.set()
        counts = [f.result() for f in futures]  # re-raises any reader's exception

    assert all(c > 0 for c in counts)
    seen_builds = {b for b, _ in answers}
    assert len(seen_builds) >= 2, seen_builds  # traffic really overlapped the rebuilds
    for build, hits in answers:
        paragraphs = builds[build]
        for pid, text in hits:
            assert paragraphs.get(pid) == text, (build, pid)
    last = layout.current_build(settings.index_path)
    searcher.refresh()
    assert searcher.build_folder == last
    result = searcher.search("arrived ferry", mode="keyword")
    assert result["hits"] and result["hits"][0]["doc_id"] == "new.txt"
    assert searcher.stats()["counts"]["documents"] == 7
