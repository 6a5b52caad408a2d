"""Fixtures for the NER / registry / linker tests: the real spaCy model, loaded once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.linking.detect import Detector
from index.linking.registry import Registry
from index.linking.resolve import Linker

ROOT = Path(__file__).resolve().parents[2]
SEED_ARTICLE = ROOT / "seeds" / "000_f549e937e1170963.txt"
SEED_REGISTRY = ROOT / "seeds" / "entities.jsonl"


@pytest.fixture(scope="module")
def seed_registry() -> Registry:
    return Registry.load(SEED_REGISTRY)


@pytest.fixture(scope="module")
def seed_linker(seed_registry: Registry) -> Linker:
    return Linker(seed_registry, Detector(seed_registry))


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED_ARTICLE.read_text(encoding="utf-8")
