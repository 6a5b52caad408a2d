"""Ray encode (local mode, 2 workers) gives the same vectors, in the same order, as the local encoder."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from index.encoder import load_encoder

if importlib.util.find_spec("ray") is None:
    pytest.skip("distributed encoding needs ray[data]: pip install 'personae[ray]'", allow_module_level=True)

MODEL = "all-MiniLM-L6-v2"


def test_encode_with_ray_matches_local_encode() -> None:
    from index.distributed import encode_with_ray

    topics = ["peace talks", "rare earth metals", "the central bank", "a football final", "a new phone"]
    texts = [f"Paragraph {i} about {topics[i % 5]}, with detail number {i * 7 % 13}." for i in range(300)]
    texts[17] = ""  # empty and very long texts keep their places too
    texts[42] = "long " * 400
    got = encode_with_ray(texts, MODEL, batch_size=32, num_workers=2, block_size=40)
    want = load_encoder(MODEL).encode(texts, batch_size=32)
    assert got.shape == want.shape == (300, 384) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-5


def test_encode_with_ray_empty_input() -> None:
    from index.distributed import encode_with_ray

    assert encode_with_ray([], MODEL, num_workers=2).shape == (0, 384)


def test_build_with_ray_workers_equals_local_build(tmp_path) -> None:
    """`personae build --ray-workers 2`: the index's vectors equal an in-process build's."""
    from click.testing import CliRunner

    from index import layout
    from index.vectors import VectorIndex
    from personae.cli import cli
    from tests.conftest import SEEDS

    folders = {}
    for name, extra in (("ray", ["--ray-workers", "2"]), ("local", [])):
        idx = tmp_path / name
        res = CliRunner().invoke(
            cli, ["build", "--corpus", str(SEEDS), "--index-dir", str(idx), "--quiet", "--full", *extra]
        )
        assert res.exit_code == 0, res.output
        folders[name] = layout.current_build(idx)
    ray_ix, local_ix = (VectorIndex.open(folders[n]) for n in ("ray", "local"))
    assert len(ray_ix) == len(local_ix) > 20
    q = load_encoder(MODEL).encode(["rare earth metals"])[0]
    got, want = ray_ix.search(q, 5), local_ix.search(q, 5)
    assert [p for p, _ in got] == [p for p, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
