"""Ambiguous aliases decided by the text around them: the build's own paragraph vectors against each
candidate's known contexts and description (index/linking/context.py), through a real build with MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

from index.build import build_index
from index.settings import Settings
from search.searcher import Searcher

REGISTRY = [
    {"id": "gerald-ford", "name": "Gerald Ford", "type": "person", "aliases": ["Ford"],
     "description": "38th president of the United States"},
    {"id": "ford-motor", "name": "Ford Motor Company", "type": "org", "aliases": ["Ford"],
     "description": "American automobile manufacturer"},
]
# Neither document shares a word with a description or names another of a candidate's names: only what the
# paragraphs are about can tell the two Fords apart.
DOCS = [
    {"id": "show", "date": "2008-01-14", "title": "Auto show",
     "text": "Ford unveiled a new pickup truck and two electric SUVs at the Detroit auto show on Monday."},
    {"id": "pardon", "date": "1974-09-09", "title": "Pardon",
     "text": "Mr Ford pardoned Nixon a month after taking the oath of office, angering many voters."},
]


def _build(tmp_path: Path) -> Searcher:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    (corpus / "entities.jsonl").write_text("".join(json.dumps(r) + "\n" for r in REGISTRY), encoding="utf-8")
    settings = Settings.load(env={}, corpus=str(corpus), index_dir=str(tmp_path / "index"))
    build_index(settings)
    return Searcher.open(settings)


def _ford(searcher: Searcher, doc_id: str) -> dict:
    doc = searcher.document(doc_id)
    return next(lk for p in doc["paragraphs"] for lk in p["links"] if lk["text"] == "Ford")


def test_paragraph_vectors_decide_an_alias_two_entities_share(tmp_path: Path) -> None:
    searcher = _build(tmp_path)
    show, pardon = _ford(searcher, "show"), _ford(searcher, "pardon")
    assert show["entity_id"] == "ford-motor" and show["rule"] == "corpus-context"
    assert pardon["entity_id"] == "gerald-ford" and pardon["rule"] == "corpus-context"
    assert {c for c, _ in show["candidates"]} == {"gerald-ford", "ford-motor"}  # explain keeps both
