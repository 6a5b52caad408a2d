"""Shared fixtures: paths to the repo, seeds and ../shared data; one real seed index per session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"


def hash_settings(corpus: Path, index_dir: Path):  # -> index.settings.Settings (imported late)
    """Settings for a small made-up corpus: the hash encoder (fast, no model), the seed registry, no env."""
    from index.settings import Settings

    return Settings.load(env={}, corpus=str(corpus), index_dir=str(index_dir), model="hash",
                         entities_file=str(SEEDS / "entities.jsonl"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a clear message when the data set is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data sets beside the project root); not present here")
    return path


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory):
    """A real index (NER, linker, MiniLM, Whoosh, FAISS) over seeds/, built once per test session."""
    from index.build import build_index
    from index.settings import Settings

    settings = Settings.load(
        env={}, corpus=str(SEEDS), index_dir=str(tmp_path_factory.mktemp("seed-index")),
        entities_file=str(SEEDS / "entities.jsonl"),
    )
    report = build_index(settings)
    return settings, report


@pytest.fixture(scope="session")
def seed_searcher(seed_index):
    from search.searcher import Searcher

    settings, _ = seed_index
    return Searcher.open(settings)


NEWS_ARTICLES = 3000


@pytest.fixture(scope="session")
def news_index(tmp_path_factory: pytest.TempPathFactory):
    """A generated, dated news archive of a few thousand small articles (tests/search/newsgen.py), built
    once per session with the hash encoder and the gazetteer linker. Returns (settings, articles)."""
    from tests.search.newsgen import build, generate

    articles = generate(NEWS_ARTICLES)
    return build(articles, tmp_path_factory.mktemp("news")), articles
