"""Entity-resolution cases beyond the seed, scored the way a user would: build an index from dated news
items with the seed registry as shipped, serve it, and run the shared scorer against the live API.

The shared set (../shared/data/el-dev/resolution-cases) is the development set; `data/resolution-extra`
holds our own cases of the same classes with other names and dates (titles held by someone else at
another date, a document's own full name against a registry alias, a place sharing a person's name, lone
surnames and spelling/script variants across documents, acronyms defined in a document, a country before
an institution).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEEDS, shared_path

HERE = Path(__file__).parent
EXTRA = HERE / "data" / "resolution-extra"


def _serve(corpus: Path, index_dir: Path) -> Iterator[str]:
    from waitress.server import create_server

    from index.build import build_index
    from index.settings import Settings
    from web import create_app

    settings = Settings.load(
        env={},
        corpus=str(corpus),
        index_dir=str(index_dir),
        model="hash",
        entities_file=str(SEEDS / "entities.jsonl"),
    )
    build_index(settings)
    srv = create_server(create_app(settings), host="127.0.0.1", port=0, threads=2, ident="personae-test")
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.effective_port}"
    finally:
        srv.close()


def _score(url: str, docs: Path, checks: Path) -> str:
    tool = shared_path("tools", "resolution_cases.py")
    out = subprocess.run(
        [sys.executable, str(tool), url, str(docs), str(checks)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout


@pytest.mark.slow
def test_shared_resolution_cases_all_pass(tmp_path: Path) -> None:
    cases = shared_path("data", "el-dev", "resolution-cases")
    for url in _serve(cases / "docs.jsonl", tmp_path / "idx"):
        report = _score(url, cases / "docs.jsonl", cases / "checks.jsonl")
        assert "passed: 28/28" in report, report


@pytest.mark.slow
def test_own_resolution_cases_all_pass(tmp_path: Path) -> None:
    for url in _serve(EXTRA / "docs.jsonl", tmp_path / "idx"):
        report = _score(url, EXTRA / "docs.jsonl", EXTRA / "checks.jsonl")
        n = sum(1 for line in (EXTRA / "checks.jsonl").read_text().splitlines() if line.strip())
        assert f"passed: {n}/{n}" in report, report
