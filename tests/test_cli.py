"""The CLI front door, driven through click's runner against real indexes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from personae.cli import cli
from tests.conftest import SEEDS


def test_build_then_search_json(tmp_path: Path) -> None:
    runner = CliRunner()
    idx = str(tmp_path / "idx")
    res = runner.invoke(cli, ["build", "--corpus", str(SEEDS), "--index-dir", idx, "--quiet"])
    assert res.exit_code == 0, res.output
    assert "documents  1" in res.output and "skipped    0" in res.output
    res = runner.invoke(cli, ["search", "rare earth metals", "--index-dir", idx, "--json", "--limit", "2"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert "rare earth metals" in data["hits"][0]["text"]
    res = runner.invoke(cli, ["search", "Lavrov", "--index-dir", idx, "-n", "3"])
    assert "linked: Lavrov → Sergei Lavrov" in res.output


def test_errors_are_one_line_not_tracebacks(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["search", "x", "--index-dir", str(tmp_path / "none")])
    assert res.exit_code == 1
    assert "run `personae build`" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["search", "x"], env={"PERSONAE_RRF_K": "many"})
    assert res.exit_code == 1 and "rrf_k" in res.output


def test_help_settings_lists_every_setting() -> None:
    from dataclasses import fields

    from index.settings import Settings

    res = CliRunner().invoke(cli, ["--help-settings"])
    assert res.exit_code == 0
    for f in fields(Settings):
        assert f.name in res.output and f"PERSONAE_{f.name.upper()}" in res.output
        assert f.metadata.get("help"), f"setting {f.name} has no help text"


def test_curation_commands_write_the_registry(tmp_path: Path) -> None:
    reg = tmp_path / "entities.jsonl"
    reg.write_text((SEEDS / "entities.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(
        cli, ["entities", "rename", "sergei-lavrov", "Sergey Lavrov", "--entities-file", str(reg)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        cli,
        [
            "entities",
            "show",
            "sergei-lavrov",
            "--entities-file",
            str(reg),
            "--index-dir",
            str(tmp_path / "none"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["name"] == "Sergey Lavrov"
    res = runner.invoke(
        cli, ["entities", "merge", "local:person:lavrov", "sergei-lavrov", "--entities-file", str(reg)]
    )
    assert res.exit_code == 0, res.output
    assert '"into": "sergei-lavrov"' in reg.read_text(encoding="utf-8").replace('"into":"', '"into": "')
    res = runner.invoke(
        cli, ["entities", "merge", "sergei-lavrov", "nobody-at-all", "--entities-file", str(reg)]
    )
    assert res.exit_code == 1 and "Traceback" not in res.output


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_runs_the_production_server(seed_index, workers: int) -> None:
    """`personae serve` (waitress; gunicorn with --workers 2) answers over real HTTP on 127.0.0.1."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.conftest import ROOT

    settings, _ = seed_index
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "personae", "serve", "--port", str(port), "--index-dir", settings.index_dir]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 180  # each worker loads its models and answers one query first
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/search?q=Lavrov&limit=1") as resp:
                    data = json.loads(resp.read())
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.time() < deadline, "server did not come up"
                time.sleep(0.3)
        assert data["linked"][0]["id"] == "sergei-lavrov"
        if workers > 1:  # every worker maps the one vectors file (shared pages), none holds a copy
            from index import layout

            vectors = str((layout.current_build(settings.index_path) / layout.VECTORS).resolve())
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            assert len(children) == workers
            for pid in map(int, children):
                deadline = time.time() + 180
                while vectors not in Path(f"/proc/{pid}/maps").read_text():  # a worker still warming up
                    assert time.time() < deadline, f"worker {pid} never mapped {vectors}"
                    time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_refuses_several_workers_on_a_milvus_lite_file(tmp_path: Path) -> None:
    env = {"PERSONAE_BACKEND": "milvus", "PERSONAE_MILVUS_URI": str(tmp_path / "m.db")}
    res = CliRunner().invoke(cli, ["serve", "--workers", "2", "--index-dir", str(tmp_path)], env=env)
    assert res.exit_code == 2 and "one process only" in res.output and "Traceback" not in res.output


# ------------------------------------------------------------------------------ faults read like messages


def _one_error_line(res) -> str:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


def _hash_build(runner: CliRunner, idx: Path):
    return runner.invoke(cli, ["build", "--corpus", str(SEEDS), "--index-dir", str(idx), "--quiet"],
                         env={"PERSONAE_MODEL": "hash"})


@pytest.mark.parametrize("fault", [
    OSError(28, "No space left on device"),
    RuntimeError("Error in faiss::FileIOWriter::operator()(const void*, size_t, size_t) at io.cpp:120: "
                 "Error: 'ret == n' failed: write error in vectors.faiss.tmp: 0 != 1536 "
                 "(No space left on device)"),
])
def test_full_disk_during_a_build_is_one_line_and_the_old_build_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    import faiss

    from index import layout

    runner = CliRunner()
    idx = tmp_path / "idx"
    assert _hash_build(runner, idx).exit_code == 0
    good = layout.current_build(idx)

    def full_disk(*_args: object) -> None:
        raise fault

    monkeypatch.setattr(faiss, "write_index", full_disk)
    line = _one_error_line(_hash_build(runner, idx))
    assert line.startswith("Error: build failed, the current build, if any, still serves: ")
    # the second build is incremental: it writes the vector delta (a first build writes vectors.faiss)
    assert re.search(r"vectors(-delta)?\.faiss\.tmp", line) and "No space left on device" in line
    assert "faiss::" not in line and "io.cpp" not in line
    assert layout.current_build(idx) == good
    assert not list(idx.glob(".tmp-*"))  # the temp folder is removed
    res = runner.invoke(cli, ["search", "Lavrov", "--index-dir", str(idx), "--mode", "keyword"])
    assert res.exit_code == 0 and "Lavrov" in res.output


def test_build_into_a_path_under_a_file_or_a_file_is_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    line = _one_error_line(_hash_build(runner, blocker / "idx"))
    assert f"{blocker / 'idx'}: Not a directory" in line
    res = runner.invoke(cli, ["build", "--corpus", str(SEEDS), "--quiet"],
                        env={"PERSONAE_MODEL": "hash", "PERSONAE_INDEX_DIR": str(blocker)})
    assert f"cannot build in {blocker}: it is a file, not a folder" in _one_error_line(res)


def test_server_start_os_errors_are_one_line(tmp_path: Path) -> None:
    import socket

    runner = CliRunner()
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "CURRENT").mkdir()  # the pointer is a folder: reading it is an OSError
    res = runner.invoke(cli, ["serve", "--index-dir", str(idx), "--get", "/api/health"])
    assert f"{idx / 'CURRENT'}: Is a directory" in _one_error_line(res)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = runner.invoke(cli, ["serve", "--index-dir", str(tmp_path / "none"), "--port", str(port)])
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in _one_error_line(res)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions; runs as a normal user")
def test_build_into_a_read_only_index_folder_is_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    idx = tmp_path / "idx"
    assert _hash_build(runner, idx).exit_code == 0
    idx.chmod(0o555)
    try:
        line = _one_error_line(_hash_build(runner, idx))
    finally:
        idx.chmod(0o755)
    assert "Permission denied" in line and str(idx) in line
