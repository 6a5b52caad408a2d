"""One builder per index folder, and a build that is durable before CURRENT names it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index import layout
from index.build import build_index
from index.errors import BuildLocked
from index.vectors import write_vector_index
from tests.conftest import ROOT, hash_settings


def _corpus(folder: Path, n: int, words: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"d{i:04d}.txt").write_text(
            f"Headline {i}\n\n" + f"Goats and ports, story {i}. " * words, encoding="utf-8")
    return folder


def test_a_second_build_is_refused_while_one_runs_and_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    small = _corpus(tmp_path / "small", 3)
    good = build_index(hash_settings(small, index_dir)).folder
    big = _corpus(tmp_path / "big", 600, words=40)  # NER keeps this build busy for many seconds
    env = dict(os.environ, PERSONAE_CORPUS=str(big), PERSONAE_INDEX_DIR=str(index_dir), PERSONAE_MODEL="hash")
    first = subprocess.Popen([sys.executable, "-m", "personae", "build", "--quiet"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(index_dir.glob(".tmp-*")):
            time.sleep(0.05)
        assert first.poll() is None, "the first build ended before the second could start"
        second = subprocess.run([sys.executable, "-m", "personae", "build", "--quiet"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first build ended while the second ran: the test proves nothing"
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert lines == [f"Error: another build is running on {index_dir} (pid {first.pid}); "
                         "wait for it to finish"], second.stderr
        assert len(list(index_dir.glob(".tmp-*"))) == 1  # the refused build made no folder of its own
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: the kernel releases the flock
        first.wait()
    assert layout.current_build(index_dir) == good
    again = build_index(hash_settings(small, index_dir)).folder
    assert layout.current_build(index_dir) == again != good


def test_the_lock_refuses_a_second_holder_in_the_same_process(tmp_path: Path) -> None:
    with layout.build_lock(tmp_path):
        held = rf"another build is running on {tmp_path} \(pid {os.getpid()}\)"
        with pytest.raises(BuildLocked, match=held):
            with layout.build_lock(tmp_path):
                pass
    with layout.build_lock(tmp_path):  # released on exit
        pass


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name fsynced files")
def test_build_files_folder_and_pointer_are_fsynced_before_and_after_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "idx"
    settings = hash_settings(_corpus(tmp_path / "corpus", 3), index_dir)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", _fd_path(fd)))
        real_fsync(fd)

    def replace(src: os.PathLike | str, dst: os.PathLike | str) -> None:
        events.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    final = build_index(settings).folder

    steps = list(events)
    tmp_folder = str(index_dir / f".tmp-{final.name.removeprefix('build-')}-{os.getpid()}")
    publish = steps.index(("replace", f"{tmp_folder} -> {final}"))
    pointer_tmp = str(index_dir / (layout.POINTER + ".tmp"))
    swap = steps.index(("replace", f"{pointer_tmp} -> {index_dir / layout.POINTER}"))
    before_publish = {p for kind, p in steps[:publish] if kind == "fsync"}
    # every file and folder of the build, the build folder itself included, before it is renamed
    for rel in [*layout.read_manifest(final).files, layout.MANIFEST, layout.WHOOSH_DIR]:
        assert f"{tmp_folder}/{rel}" in before_publish, rel
    assert tmp_folder in before_publish
    # the renamed build's parent after the rename; the pointer file before its swap; the folder after it
    assert str(index_dir) in {p for kind, p in steps[publish + 1:swap] if kind == "fsync"}
    assert ("fsync", pointer_tmp) in steps[:swap]
    assert ("fsync", str(index_dir)) in steps[swap + 1:]


def test_a_full_disk_while_writing_vectors_is_an_os_error_naming_the_file(tmp_path: Path) -> None:
    """faiss's own writer only prints a failed final flush; through a Python file the kernel's ENOSPC
    (here from /dev/full) reaches the caller."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    (tmp_path / "vectors.faiss.tmp").symlink_to("/dev/full")
    vectors = np.eye(4, dtype=np.float32)
    with pytest.raises(OSError) as caught:
        write_vector_index(tmp_path, vectors, ["a", "b", "c", "d"], hnsw_threshold=100)
    assert caught.value.errno == 28 and caught.value.filename == str(tmp_path / "vectors.faiss.tmp")
