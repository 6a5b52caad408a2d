"""Rank fusion of retrieval legs. Standard library only; pure functions.

A *leg* is one retriever's result list, ``[(id, score), ...]`` best first. Fused output has the same
shape. Ties are broken by id (ascending) so results are deterministic whatever the input order.

If an id appears twice in one leg only its first (best) occurrence counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Leg = Sequence[tuple[str, float]]
Fused = list[tuple[str, float]]


def _first_occurrences(leg: Leg) -> list[tuple[str, float]]:
    seen: set[str] = set()
    out = []
    for item_id, score in leg:
        if item_id not in seen:
            seen.add(item_id)
            out.append((item_id, score))
    return out


def _check_weights(legs: Sequence[Leg], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(legs)
    if len(weights) != len(legs):
        raise ValueError(f"{len(weights)} weights for {len(legs)} legs")
    for w in weights:
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"fusion weights must be finite and >= 0, got {w!r}")
    return [float(w) for w in weights]


def _ranked(scores: dict[str, float]) -> Fused:
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def rrf(legs: Sequence[Leg], k: int = 60, weights: Sequence[float] | None = None) -> Fused:
    """Reciprocal rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))`` with 1-based ranks.

    Only ranks matter, so legs with incomparable score scales (BM25 vs cosine) fuse cleanly. An id absent
    from a leg gets nothing from it. ``weights`` default to 1 per leg.
    """
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    ws = _check_weights(legs, weights)
    scores: dict[str, float] = {}
    for leg, w in zip(legs, ws, strict=True):
        for rank, (item_id, _score) in enumerate(_first_occurrences(leg), start=1):
            scores[item_id] = scores.get(item_id, 0.0) + w / (k + rank)
    return _ranked(scores)


def minmax(leg: Leg) -> list[tuple[str, float]]:
    """Scores rescaled to [0, 1] within the leg: best → 1, worst → 0.

    When every score is equal (including a single-item leg) there is no spread to rescale; every item
    gets 1.0, since being returned at all is the only evidence the leg gives. Non-finite scores count
    as the leg's minimum.
    """
    items = _first_occurrences(leg)
    finite = [s for _, s in items if math.isfinite(s)]
    if not finite:
        return [(item_id, 1.0) for item_id, _ in items]
    lo, hi = min(finite), max(finite)
    if hi == lo:
        return [(item_id, 1.0 if math.isfinite(s) else 0.0) for item_id, s in items]
    span = hi - lo
    return [(item_id, (s - lo) / span if math.isfinite(s) else 0.0) for item_id, s in items]


def weighted(legs: Sequence[Leg], weights: Sequence[float]) -> Fused:
    """Convex-style combination of min-max normalised scores: ``score(d) = sum_i w_i * norm_i(d)``.

    An id missing from a leg gets 0 from it (the same as that leg's worst returned item). Weights are
    used as given, not renormalised.
    """
    ws = _check_weights(legs, weights)
    scores: dict[str, float] = {}
    for leg, w in zip(legs, ws, strict=True):
        for item_id, norm in minmax(leg):
            scores[item_id] = scores.get(item_id, 0.0) + w * norm
    return _ranked(scores)


def fuse(
    legs: Sequence[Leg], method: str = "rrf", *, k: int = 60, weights: Sequence[float] | None = None
) -> Fused:
    """Dispatch on the ``fusion`` setting: ``"rrf"`` or ``"weighted"`` (which needs ``weights``)."""
    if method == "rrf":
        return rrf(legs, k=k, weights=weights)
    if method == "weighted":
        if weights is None:
            raise ValueError("weighted fusion needs weights")
        return weighted(legs, weights)
    raise ValueError(f"unknown fusion method {method!r}; expected 'rrf' or 'weighted'")


def leg_ranks(legs: Sequence[Leg]) -> dict[str, list[tuple[int, float] | None]]:
    """For every id in any leg: per leg, its ``(1-based rank, raw score)``, or ``None`` if absent.

    Used to explain a fused hit ("keyword #3, vector #12").
    """
    out: dict[str, list[tuple[int, float] | None]] = {}
    for i, leg in enumerate(legs):
        for rank, (item_id, score) in enumerate(_first_occurrences(leg), start=1):
            slots = out.setdefault(item_id, [None] * len(legs))
            slots[i] = (rank, score)
    return out
