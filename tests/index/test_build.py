"""The index folder: manifest, files, atomic swap, killed builds, integrity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index import layout
from index.build import build_index
from index.errors import IndexFormatMismatch, IndexMissing
from index.settings import Settings
from index.store import read_documents, read_paragraphs
from search.searcher import Searcher
from tests.conftest import ROOT, SEEDS


def test_seed_build_layout(seed_index) -> None:
    settings, report = seed_index
    folder = layout.current_build(Path(settings.index_dir))
    assert folder == report.folder
    names = {p.name for p in folder.iterdir()}
    assert names == {
        layout.MANIFEST,
        layout.STORE,
        "store-000001.sqlite",
        layout.WHOOSH_DIR,
        layout.POSTINGS_DIR,
        layout.VECTORS,
        layout.VECTOR_IDS,
        "mentions-000001.jsonl",
        layout.LINKING_STATE,
        "linking-000001.pkl",
        layout.REGISTRY,
        layout.DUPLICATES,
        layout.DUPLICATE_KEYS,
    }
    manifest = layout.read_manifest(folder)
    assert manifest.format == layout.INDEX_FORMAT
    assert manifest.counts["documents"] == 1 and manifest.counts["paragraphs"] == report.paragraphs > 20
    assert manifest.models["encoder"] == "all-MiniLM-L6-v2"
    assert all(layout.sha256_file(folder / rel) == digest for rel, digest in manifest.files.items())
    rows = read_paragraphs(folder)
    doc = read_documents(folder)[0]
    for row in rows:  # offsets round-trip, links and quotes sit inside their paragraph
        assert doc["text"][row["start"] : row["end"]] == row["text"]
        for link in row["links"] + row["quotes"]:
            assert row["text"][link["start"] : link["end"]] == link["text"]


def test_keyword_search_finds_lavrov_quote(seed_searcher) -> None:
    result = seed_searcher.search("rare earth metals", mode="keyword", limit=3)
    top = result["hits"][0]
    assert "rare earth metals" in top["text"] and "Lavrov" in top["text"]
    assert "<mark>rare</mark> <mark>earth</mark> <mark>metals</mark>" in top["snippet"]
    assert result["total"] == 1


def _settings(corpus: Path, index_dir: Path) -> Settings:
    return Settings.load(
        env={}, corpus=str(corpus), index_dir=str(index_dir), entities_file=str(SEEDS / "entities.jsonl")
    )


def _small_corpus(folder: Path, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "one.txt").write_text(
        "Alpha headline\n\nThe first story about river boats.\n", encoding="utf-8"
    )
    (folder / "two.txt").write_text(
        f"Beta headline\n\nA second story on mountain goats. {extra}\n", encoding="utf-8"
    )
    return folder


def test_rebuild_swaps_pointer_and_keeps_old_reader_working(tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "corpus")
    settings = _settings(corpus, tmp_path / "idx")
    first = build_index(settings).folder
    reader = Searcher.open(settings)
    assert reader.search("goats", mode="keyword")["total"] == 1
    (corpus / "three.txt").write_text("Gamma headline\n\nGoats again, on a farm.\n", encoding="utf-8")
    second = build_index(settings).folder
    assert second != first and layout.current_build(Path(settings.index_dir)) == second
    # the old reader still answers from its own build until it refreshes
    assert reader.search("goats", mode="keyword")["total"] == 1
    assert reader.refresh() is True
    assert reader.search("goats", mode="keyword")["total"] == 2
    assert reader.refresh() is False
    build_index(settings)
    builds = sorted(p.name for p in Path(settings.index_dir).glob("build-*"))
    assert len(builds) == layout.KEEP_BUILDS  # older builds are cleaned up
    assert not list(Path(settings.index_dir).glob(".tmp-*"))


def test_killed_build_leaves_previous_index_serving(tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "corpus")
    index_dir = tmp_path / "idx"
    settings = _settings(corpus, index_dir)
    good = build_index(settings).folder
    # A big corpus so the child build is still running when we kill it.
    big = tmp_path / "big"
    big.mkdir()
    for i in range(300):
        (big / f"d{i}.txt").write_text(
            f"Headline {i}\n\n" + "Some words about things. " * 40, encoding="utf-8"
        )
    env = dict(os.environ, PERSONAE_CORPUS=str(big), PERSONAE_INDEX_DIR=str(index_dir))
    proc = subprocess.Popen(
        [sys.executable, "-m", "personae", "build", "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(index_dir.glob(".tmp-*")):
        time.sleep(0.05)
    assert proc.poll() is None, "build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert layout.current_build(index_dir) == good
    assert Searcher.open(settings).search("goats", mode="keyword")["total"] == 1
    again = build_index(settings).folder  # the next build succeeds and sweeps the dead temp folder
    assert layout.current_build(index_dir) == again
    assert not list(index_dir.glob(".tmp-*"))


def test_missing_and_mismatched_index(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="personae build"):
        Searcher.open(Settings.load(env={}, index_dir=str(tmp_path)))
    (tmp_path / "build-x").mkdir()
    (tmp_path / "CURRENT").write_text("build-x")
    with pytest.raises(IndexMissing, match="manifest"):
        layout.read_manifest(tmp_path / "build-x")
    (tmp_path / "build-x" / layout.MANIFEST).write_text(json.dumps({"format": 999}))
    with pytest.raises(IndexFormatMismatch, match="personae build"):
        layout.read_manifest(tmp_path / "build-x")


def test_unreadable_files_are_reported_and_skipped(tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "corpus")
    (corpus / "bad.jsonl").write_text('{"id": "ok", "title": "T", "text": "jsonl goats"}\n{broken\n')
    (corpus / "bin.txt").write_bytes(b"\x00\x01\x02")
    settings = _settings(corpus, tmp_path / "idx")
    report = build_index(settings)
    assert report.documents == 3
    assert sorted(s.split(":")[0] for s in report.skipped) == ["bad.jsonl", "bin.txt"]
    assert any(s.startswith("bad.jsonl:2") for s in report.skipped)
    assert "skipped    2" in report.summary()


class _BrokenEncoder:
    model_id = "broken-encoder"
    dim = 384

    def encode(self, texts, *, batch_size: int = 64, show_progress: bool = False):
        raise RuntimeError("encoder exploded")


def test_failing_encoder_raises_and_leaves_current_and_no_temp_folder(tmp_path: Path) -> None:
    """Encoding runs while another thread links: its error still propagates and the build is undone."""
    corpus = _small_corpus(tmp_path / "corpus")
    index_dir = tmp_path / "idx"
    settings = _settings(corpus, index_dir)
    good = build_index(settings).folder
    pointer = (index_dir / "CURRENT").read_text()
    with pytest.raises(RuntimeError, match="encoder exploded"):
        build_index(settings, encoder=_BrokenEncoder())
    assert (index_dir / "CURRENT").read_text() == pointer
    assert layout.current_build(index_dir) == good
    assert not list(index_dir.glob(".tmp-*"))
    assert sorted(p.name for p in index_dir.glob("build-*")) == [good.name]


class _NoMentions:
    def detect_many(self, texts, batch_size=32, n_process=1):
        return [[] for _ in texts]


class _BrokenLinker:
    detector = _NoMentions()

    def link_corpus(self, docs, mentions, context=None):
        raise RuntimeError("linker exploded")

    def entities(self):
        return {}


def test_failing_linker_raises_from_the_worker_thread(tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "corpus")
    index_dir = tmp_path / "idx"
    settings = _settings(corpus, index_dir)
    with pytest.raises(RuntimeError, match="linker exploded"):
        build_index(settings, linker=_BrokenLinker())
    assert not (index_dir / "CURRENT").exists()
    assert not list(index_dir.glob(".tmp-*")) and not list(index_dir.glob("build-*"))


def test_linking_thread_waiting_for_vectors_hands_the_cores_back() -> None:
    """While the linking thread waits for the encode's vectors it does no work: the encode's ``busy`` check
    (``_Encoded.waiting``) must say so, or torch would keep a core for a thread that sleeps."""
    import threading

    import numpy as np

    from index.build import _Encoded

    encoded = _Encoded(threading.Event())
    assert not encoded.waiting
    got: list[np.ndarray] = []
    waiter = threading.Thread(target=lambda: got.append(encoded.vectors()))
    waiter.start()
    deadline = time.monotonic() + 10
    while not encoded.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert encoded.waiting
    encoded.done(np.ones((2, 3), dtype=np.float32), None, 8)
    waiter.join(10)
    assert not waiter.is_alive() and not encoded.waiting
    assert got[0].shape == (2, 3)
    encoded.vectors()  # ready: no wait
    assert not encoded.waiting


def test_a_build_collects_garbage_less_often_and_restores_the_thresholds() -> None:
    import gc

    from index.build import GC_YOUNG_THRESHOLD, _batch_gc

    before = gc.get_threshold()
    with pytest.raises(RuntimeError), _batch_gc():
        assert gc.get_threshold()[0] >= GC_YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        raise RuntimeError("a build that fails")
    assert gc.get_threshold() == before
