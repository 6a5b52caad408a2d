"""Query linking belongs to the live build: its registry copy and every entity it found (local ones
too); it follows a build swap; linking a text through the API leaves the shared linker as it was."""

from __future__ import annotations

import json
from pathlib import Path

from index.build import build_index
from index.settings import Settings
from index.store import read_paragraphs
from search.searcher import Searcher


def _settings(corpus: Path, index_dir: Path, **kw) -> Settings:
    return Settings.load(env={}, corpus=str(corpus), index_dir=str(index_dir), model="hash", **kw)


def _write(folder: Path, docs: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")


def test_query_links_local_entities_and_follows_the_swap(tmp_path: Path) -> None:
    corpus = tmp_path / "news"
    _write(
        corpus,
        {"a.txt": "Talks\n\nAngela Merkel spoke in Berlin on Tuesday. Merkel said talks would continue.\n"},
    )
    settings = _settings(corpus, tmp_path / "idx")
    build_index(settings)
    searcher = Searcher.open(settings)
    assert [lk.entity_id for lk in searcher.linker().link_query("Merkel")] == ["local:angela-merkel"]
    assert searcher.linker().link_query("Kallas") == []

    _write(corpus, {"b.txt": "Brussels\n\nKaja Kallas spoke in Brussels. Kallas warned of delays.\n"})
    build_index(settings)
    assert searcher.refresh()
    assert [lk.entity_id for lk in searcher.linker().link_query("Kallas")] == ["local:kaja-kallas"]


def test_api_link_leaves_the_build_linker_unchanged(tmp_path: Path) -> None:
    corpus = tmp_path / "news"
    _write(corpus, {"a.txt": "Talks\n\nAngela Merkel spoke in Berlin on Tuesday.\n"})
    settings = _settings(corpus, tmp_path / "idx")
    build_index(settings)
    searcher = Searcher.open(settings)
    before = dict(searcher.linker().entities())
    first = searcher.link("Angela Merkel met Kaja Kallas in Tallinn. Kallas agreed.")
    second = searcher.link("Angela Merkel met Kaja Kallas in Tallinn. Kallas agreed.")
    assert first == second
    assert {x["entity_id"] for x in first} >= {"local:angela-merkel", "local:kaja-kallas"}
    assert searcher.linker().entities() == before  # nothing from the request stayed behind
    assert searcher.linker().link_query("Kallas") == []


def test_registry_belongs_to_its_corpus(tmp_path: Path) -> None:
    """Another corpus gets its own registry (entities.jsonl beside it), never the seed's people or titles."""
    text = "Talks\n\nThe Secretary of State said on Monday that the talks were useful.\n"
    plain = tmp_path / "plain"
    _write(plain, {"a.txt": text})
    report = build_index(_settings(plain, tmp_path / "idx1"))
    rows = read_paragraphs(report.folder)
    assert not any(lk["entity_id"] == "marco-rubio" for r in rows for lk in r["links"])

    own = tmp_path / "own"
    _write(
        own,
        {
            "a.txt": text,
            "entities.jsonl": json.dumps(
                {
                    "id": "jane-roe",
                    "name": "Jane Roe",
                    "type": "person",
                    "titles": [{"title": "Secretary of State", "from": "2020-01-01", "to": None}],
                }
            )
            + "\n",
        },
    )
    settings = _settings(own, tmp_path / "idx2")
    assert settings.registry_path == own / "entities.jsonl"
    report = build_index(settings)
    assert (report.folder / "registry.jsonl").read_text().count("jane-roe") == 1
