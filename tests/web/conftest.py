"""Web fixtures: one real index (seeds + a few small hostile/edge documents) built once per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from index.settings import Settings
from web import create_app

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
SEED_DOC = "000_f549e937e1170963.txt"
XSS_DOC = "world/markup.txt"
SPORT_DOC = "sport/199.txt"
XSS = "<script>alert(1)</script>"

EXTRA_DOCS = {
    XSS_DOC: (
        "Lavrov <b>bold</b> claims on rare earth metals\n\n"
        "Published: 2025-02-18\n\n"
        f"Sergei Lavrov spoke in Moscow about rare earth metals {XSS} and <b>bold</b> plans for Ukraine.\n\n"
        "“We will not trade rare earth metals for peace,” Lavrov said.\n"
    ),
    SPORT_DOC: (
        "Ukraine reach the final in Riyadh\n\n"
        "Published: 2025-02-20\n\n"
        "Ukraine beat the hosts 2-1 in Riyadh on Tuesday to reach the final of the regional cup.\n\n"
        "The coach praised a young side that had never played in Saudi Arabia before.\n"
    ),
}


def web_settings(index_dir: Path | str, corpus: Path | str = SEEDS) -> Settings:
    return Settings.load(env={}, corpus=str(corpus), index_dir=str(index_dir),
                         entities_file=str(SEEDS / "entities.jsonl"))


@pytest.fixture(scope="session")
def web_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a real index (NER, linker, encoder, Whoosh, FAISS) over seeds/ plus EXTRA_DOCS."""
    from index.build import build_index

    corpus = tmp_path_factory.mktemp("web-corpus")
    for doc in SEEDS.glob("*.txt"):
        shutil.copy(doc, corpus / doc.name)
    for rel, text in EXTRA_DOCS.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text, encoding="utf-8")
    settings = web_settings(tmp_path_factory.mktemp("web-index"), corpus)
    report = build_index(settings)
    assert report.documents == 1 + len(EXTRA_DOCS), report.summary()
    return settings


@pytest.fixture(scope="session")
def app(web_index: Settings) -> Flask:
    return create_app(web_index)


@pytest.fixture()
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


@pytest.fixture()
def empty_app(tmp_path: Path) -> Flask:
    """An app over an index folder that has no build yet."""
    return create_app(web_settings(tmp_path / "no-index-yet"))
