"""Start-up and ``personae verify`` integrity checks: damaged or mismatched builds give a clear error."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from index import layout
from index.build import _checksums, build_index
from index.encoder import load_encoder
from index.errors import IndexFormatMismatch
from index.settings import Settings
from index.store import StoreReader
from index.vectors import VectorIndex, write_vector_index
from personae.cli import cli
from search.searcher import Searcher
from tests.conftest import hash_settings


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("integrity")
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"d{i}.txt").write_text(
            f"Story {i}\n\nRiver boats and mountain goats, part {i}.\n\n"
            f"A second paragraph about harbours {i}.\n",
            encoding="utf-8",
        )
    settings = hash_settings(corpus, root / "idx")
    build_index(settings, encoder=load_encoder("hash"))
    return root / "idx"


@pytest.fixture()
def index(pristine: Path, tmp_path: Path) -> tuple[Settings, Path]:
    """A private copy of the built index: (settings, live build folder)."""
    shutil.copytree(pristine, tmp_path / "idx")
    settings = Settings.load(env={}, index_dir=str(tmp_path / "idx"), model="hash")
    return settings, layout.current_build(settings.index_path)


def _verify_cli(settings: Settings, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["verify", "--index-dir", settings.index_dir, *extra])
    return res.exit_code, res.output


def test_whole_index_verifies(index: tuple[Settings, Path]) -> None:
    settings, folder = index
    manifest = layout.verify(folder, deep=True)
    assert set(manifest.sizes) == set(manifest.files) and manifest.sizes[layout.STORE] > 0
    assert Searcher.open(settings).search("goats", mode="keyword")["total"] == 4
    code, out = _verify_cli(settings)
    assert code == 0 and out.startswith("ok: ") and "checksums" in out


def _truncate(folder: Path) -> None:
    path = folder / layout.STORE
    path.write_bytes(path.read_bytes()[:-40])


def _delete_vectors(folder: Path) -> None:
    (folder / layout.VECTORS).unlink()


def _delete_whoosh(folder: Path) -> None:
    shutil.rmtree(folder / layout.WHOOSH_DIR)


def _format(folder: Path) -> None:
    data = json.loads((folder / layout.MANIFEST).read_text())
    data["format"] = layout.INDEX_FORMAT + 1
    (folder / layout.MANIFEST).write_text(json.dumps(data))


def _garbage_manifest(folder: Path) -> None:
    (folder / layout.MANIFEST).write_bytes(b"\xff\xfe not json")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, r"store\.sqlite is \d+ bytes, the manifest says \d+"),
        (_delete_vectors, r"vectors\.faiss is missing"),
        (_delete_whoosh, r"whoosh/\S+ is missing"),
        (_format, rf"index format {layout.INDEX_FORMAT + 1}, this Personae reads {layout.INDEX_FORMAT}"),
        (_garbage_manifest, r"unreadable manifest"),
    ],
)
def test_damage_found_at_start_up(
    index: tuple[Settings, Path], damage: Callable[[Path], None], message: str
) -> None:
    settings, folder = index
    damage(folder)
    with pytest.raises(IndexFormatMismatch, match=message) as err:
        Searcher.open(settings)
    assert "personae build" in str(err.value)
    code, out = _verify_cli(settings)
    assert code == 1 and "personae build" in out and "Traceback" not in out


def test_flipped_byte_needs_the_deep_check(index: tuple[Settings, Path]) -> None:
    settings, folder = index
    path = folder / layout.VECTORS
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x40  # inside the last vector's floats: same size, faiss still reads it
    path.write_bytes(bytes(data))
    layout.verify(folder)  # the cheap start-up check only looks at sizes ...
    with pytest.raises(IndexFormatMismatch, match=r"vectors\.faiss does not match its checksum"):
        layout.verify(folder, deep=True)  # ... `personae verify` hashes every file
    assert _verify_cli(settings, "--quick")[0] == 0
    code, out = _verify_cli(settings)
    assert code == 1 and "does not match its checksum" in out


def test_same_size_garbage_in_the_store_is_a_clear_error(index: tuple[Settings, Path]) -> None:
    settings, folder = index
    path = folder / layout.STORE
    data = bytearray(path.read_bytes())
    data[0:1] = b"x"  # the SQLite header no longer says "SQLite format 3"
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatMismatch, match="damaged.*personae build"):
        Searcher.open(settings)


def test_vector_count_differs_from_paragraph_count(index: tuple[Settings, Path]) -> None:
    """A self-consistent faiss/ids pair with one row missing, and a manifest whose checksums agree."""
    settings, folder = index
    vi = VectorIndex.open(folder)
    mat = vi._index.reconstruct_n(0, len(vi))
    write_vector_index(folder, np.asarray(mat[:-1]), vi.ids[:-1], hnsw_threshold=10**6)
    manifest = layout.read_manifest(folder)
    manifest.files, manifest.sizes, manifest.stats = _checksums(folder)
    layout.write_manifest(folder, manifest)
    with pytest.raises(IndexFormatMismatch, match=r"\d+ vectors rows but \d+ paragraphs"):
        Searcher.open(settings)
    code, out = _verify_cli(settings)
    assert code == 1 and "vectors but" in out


def test_verify_exit_codes_without_an_index(tmp_path: Path) -> None:
    code, out = _verify_cli(Settings.load(env={}, index_dir=str(tmp_path / "none")))
    assert code == 2 and "personae build" in out


def test_an_incremental_build_rehashes_only_files_written_since_their_checksum(
        pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[Path] = []
    sha256 = layout.sha256_file
    monkeypatch.setattr(layout, "sha256_file", lambda path: hashed.append(Path(path)) or sha256(path))
    copy = layout.current_build(shutil.copytree(pristine, tmp_path / "copy"))
    manifest = layout.verify(copy, deep=True, trust_unchanged=True)
    assert len(hashed) == len(manifest.files)  # a copy: other inodes, every file read

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Harbour\n\nRiver boats and mountain goats.\n", encoding="utf-8")
    settings = hash_settings(corpus, tmp_path / "idx")
    folder = build_index(settings, encoder=load_encoder("hash")).folder
    hashed.clear()
    checked: list[object] = []
    store_check = StoreReader.check
    monkeypatch.setattr(StoreReader, "check", lambda self: checked.append(self) or store_check(self))
    layout.verify(folder, deep=True, trust_unchanged=True)
    assert hashed == [] and checked == []  # as the build left it: nothing read or counted again
    path = folder / layout.VECTORS
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x40
    path.write_bytes(bytes(data))  # written again: a new mtime, so hashed again and caught
    with pytest.raises(IndexFormatMismatch, match=r"vectors\.faiss does not match its checksum"):
        layout.verify(folder, deep=True, trust_unchanged=True)
    assert checked == []  # a checksum failed: counting the parts would add nothing
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old mtime forged back: a full check sees it
    layout.verify(folder, deep=True, trust_unchanged=True)
    with pytest.raises(IndexFormatMismatch, match=r"does not match its checksum"):
        layout.verify(folder, deep=True)
    data[-8] ^= 0x40
    path.write_bytes(bytes(data))  # the same bytes written again: hashed again, and the parts counted
    layout.verify(folder, deep=True, trust_unchanged=True)
    assert len(checked) == 1
