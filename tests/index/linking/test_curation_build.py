"""Curation decisions made with the CLI change the next build, and survive every later rebuild."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from index import layout
from index.store import read_entities
from personae.cli import cli
from tests.conftest import SEEDS


def _entities(index_dir: Path) -> dict:
    return read_entities(layout.current_build(index_dir))


def test_merge_rename_reject_apply_on_rebuild(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "Port news\n\nHarbour master Olga Brennan said the Felixstowe berths reopen on Monday. "
        "Brennan also met Acme Shipping executives.\n",
        encoding="utf-8",
    )
    registry = tmp_path / "entities.jsonl"
    registry.write_text((SEEDS / "entities.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    idx = tmp_path / "idx"
    common = ["--index-dir", str(idx)]
    run = CliRunner().invoke

    def build() -> None:
        args = ["build", "--corpus", str(corpus), *common, "--entities-file", str(registry), "--quiet"]
        res = run(cli, args)
        assert res.exit_code == 0, res.output

    build()
    ents = _entities(idx)
    olga = next(e for e in ents if "olga-brennan" in e)
    assert olga.startswith("local:") and ents[olga]["mentions"] == 2  # "Brennan" joined the full name
    acme = next(e for e in ents if "acme" in e)

    reg_args = ["--entities-file", str(registry)]
    assert run(cli, ["entities", "rename", olga, "Olga M. Brennan", *reg_args]).exit_code == 0
    assert run(cli, ["entities", "merge", acme, "european-union", *reg_args]).exit_code == 0
    assert run(cli, ["entities", "reject", "Felixstowe", *reg_args]).exit_code == 0
    for _ in range(2):  # applied by the next build, and still applied by the one after
        build()
        ents = _entities(idx)
        assert ents[olga]["name"] == "Olga M. Brennan"
        assert acme not in ents and "european-union" in ents
        assert not any("felixstowe" in e for e in ents)
