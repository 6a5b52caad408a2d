"""Fusion on hand-written legs with hand-computed expected values."""

from __future__ import annotations

import pytest

from search.fusion import fuse, leg_ranks, minmax, rrf, weighted

KEYWORD = [("a", 10.0), ("b", 5.0), ("c", 0.0)]
VECTOR = [("b", 0.9), ("d", 0.5), ("a", 0.1)]


def approx_list(items: list[tuple[str, float]]) -> list[tuple[str, object]]:
    return [(i, pytest.approx(s, abs=1e-12)) for i, s in items]


def test_rrf_hand_computed() -> None:
    # a: ranks 1, 3; b: ranks 2, 1; c: rank 3 in keyword only; d: rank 2 in vector only.
    assert rrf([KEYWORD, VECTOR], k=60) == approx_list(
        [("b", 1 / 62 + 1 / 61), ("a", 1 / 61 + 1 / 63), ("d", 1 / 62), ("c", 1 / 63)]
    )


def test_rrf_other_k() -> None:
    assert rrf([KEYWORD, VECTOR], k=0) == approx_list(
        [("b", 1 / 2 + 1), ("a", 1 + 1 / 3), ("d", 1 / 2), ("c", 1 / 3)]
    )


def test_rrf_weights_change_the_order() -> None:
    # a: 2/61 + 1/63 = 0.0486602 beats b: 2/62 + 1/61 = 0.0486516 once keyword counts double.
    assert rrf([KEYWORD, VECTOR], k=60, weights=[2, 1]) == approx_list(
        [("a", 2 / 61 + 1 / 63), ("b", 2 / 62 + 1 / 61), ("c", 2 / 63), ("d", 1 / 62)]
    )
    # A zero weight removes a leg's influence but keeps its items (at score 0, after the others).
    assert [i for i, _ in rrf([KEYWORD, VECTOR], weights=[1, 0])] == ["a", "b", "c", "d"]


def test_rrf_ignores_scores() -> None:
    rescaled = [(i, s * 1000 - 7) for i, s in VECTOR]
    assert rrf([KEYWORD, rescaled]) == rrf([KEYWORD, VECTOR])


def test_rrf_ties_broken_by_id_whatever_the_leg_order() -> None:
    expected = approx_list([("x", 1 / 61), ("y", 1 / 61)])
    assert rrf([[("x", 1.0)], [("y", 9.0)]]) == expected
    assert rrf([[("y", 9.0)], [("x", 1.0)]]) == expected


def test_rrf_empty_legs() -> None:
    assert rrf([]) == []
    assert rrf([[], []]) == []
    assert rrf([[], [("a", 0.3)]]) == approx_list([("a", 1 / 61)])


def test_duplicate_ids_in_a_leg_count_once_at_best_rank() -> None:
    assert rrf([[("a", 3.0), ("b", 2.0), ("a", 1.0)]]) == approx_list([("a", 1 / 61), ("b", 1 / 62)])


def test_bad_weights() -> None:
    with pytest.raises(ValueError, match="2 weights for 1 legs"):
        rrf([KEYWORD], weights=[1, 1])
    with pytest.raises(ValueError):
        weighted([KEYWORD], [-1])
    with pytest.raises(ValueError):
        weighted([KEYWORD], [float("nan")])


def test_minmax() -> None:
    assert minmax(KEYWORD) == [("a", 1.0), ("b", 0.5), ("c", 0.0)]
    assert minmax([("z", 3.0)]) == [("z", 1.0)]  # single item: no division by zero
    assert minmax([("p", 2.0), ("q", 2.0)]) == [("p", 1.0), ("q", 1.0)]
    assert minmax([]) == []
    assert minmax([("a", 4.0), ("b", float("nan")), ("c", 2.0)]) == [("a", 1.0), ("b", 0.0), ("c", 0.0)]


def test_weighted_hand_computed() -> None:
    # keyword normalised: a 1, b 0.5, c 0.   vector normalised: b 1, d 0.5, a 0.
    assert weighted([KEYWORD, VECTOR], [0.5, 0.5]) == approx_list(
        [("b", 0.75), ("a", 0.5), ("d", 0.25), ("c", 0.0)]
    )
    assert weighted([KEYWORD, VECTOR], [0.8, 0.2]) == approx_list(
        [("a", 0.8), ("b", 0.6), ("d", 0.1), ("c", 0.0)]
    )


def test_weighted_single_items_equal_scores_and_empty() -> None:
    assert weighted([[("z", 3.0)], [("y", 0.2), ("z", 0.2)]], [0.5, 0.5]) == approx_list(
        [("z", 1.0), ("y", 0.5)]
    )
    assert weighted([[], [("a", 1.0)]], [0.5, 0.5]) == approx_list([("a", 0.5)])
    assert weighted([[], []], [0.5, 0.5]) == []


def test_weighted_ties_broken_by_id() -> None:
    assert weighted([[("b", 1.0)], [("a", 1.0)]], [0.5, 0.5]) == approx_list([("a", 0.5), ("b", 0.5)])


def test_fuse_dispatch() -> None:
    assert fuse([KEYWORD, VECTOR], "rrf", k=60) == rrf([KEYWORD, VECTOR], k=60)
    assert fuse([KEYWORD, VECTOR], "weighted", weights=[0.3, 0.7]) == weighted([KEYWORD, VECTOR], [0.3, 0.7])
    with pytest.raises(ValueError):
        fuse([KEYWORD], "weighted")
    with pytest.raises(ValueError):
        fuse([KEYWORD], "borda")


def test_leg_ranks() -> None:
    ranks = leg_ranks([KEYWORD, VECTOR])
    assert ranks == {
        "a": [(1, 10.0), (3, 0.1)],
        "b": [(2, 5.0), (1, 0.9)],
        "c": [(3, 0.0), None],
        "d": [None, (2, 0.5)],
    }
    assert leg_ranks([]) == {}
    assert leg_ranks([[("a", 2.0), ("a", 1.0)], []]) == {"a": [(1, 2.0), None]}
