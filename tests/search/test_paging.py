"""Exclusion parsing and the page-order helpers (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from index.errors import BadQuery
from index.keyword import UNDATED
from search.paging import ordered_units, timeline
from search.query import parse_query
from web.export import safe_cell


@pytest.mark.parametrize("raw, text, exclude, ents, said", [
    ("Ukraine -Russia", "Ukraine", ("Russia",), (), ()),
    ("Ukraine NOT Russia", "Ukraine", ("Russia",), (), ()),
    ('talks NOT "peace talks" Riyadh', "talks Riyadh", ("peace talks",), (), ()),
    ("war -entity:russia NOT said:lavrov", "war", (), ("russia",), ("lavrov",)),
    ("a AND NOT b", "a", ("b",), (), ()),
    ("anti-war x", "anti-war x", (), (), ()),  # a hyphen inside a word is not an exclusion
    ("(ukraine -russia) talks", "(ukraine ) talks", ("russia",), (), ()),
])
def test_exclusions_leave_the_query_text(raw: str, text: str, exclude: tuple, ents: tuple,
                                         said: tuple) -> None:
    q = parse_query(raw)
    assert (q.text, q.exclude, q.exclude_entities, q.exclude_said) == (text, exclude, ents, said)
    assert not any(x.lower() in q.plain.lower() for x in exclude)  # never embedded or linked


def test_exclusion_only_and_negated_groups_are_refused() -> None:
    with pytest.raises(BadQuery, match="only excludes"):
        parse_query("-russia NOT said:x")
    with pytest.raises(BadQuery, match="not supported"):
        parse_query("ukraine NOT (russia belarus)")


def test_ordered_units_relevance_and_date() -> None:
    window = (np.array([5, 3, 5]), np.array([10, UNDATED, 10]))
    rest = (np.array([3, 7, 9, -1]), np.array([UNDATED, 30, 20, 1]))
    keys, days = ordered_units([window, rest])
    assert keys.tolist() == [5, 3, 7, 9] and days.tolist() == [10, UNDATED, 30, 20]
    keys, _ = ordered_units([window, rest], by_date=True)
    assert keys.tolist() == [7, 9, 5, 3]  # newest first, undated last


def test_timeline_fills_empty_periods() -> None:
    from datetime import date

    days = np.array([date(2024, 1, 5).toordinal(), date(2024, 3, 1).toordinal(), UNDATED,
                     date(2024, 3, 9).toordinal()] + [date(2024, 1, 1).toordinal() + 90] * 0)
    unit, bins = timeline(days, max_bars=30)
    assert unit == "month" and bins == [("2024-01", 1), ("2024-02", 0), ("2024-03", 2)]
    assert timeline(np.array([UNDATED]))[1] == []


@pytest.mark.parametrize("value, cell", [("=1+1", "'=1+1"), ("+44", "'+44"), ("-2", "'-2"), ("@a", "'@a"),
                                          ("plain", "plain"), (None, ""), (["a", "b"], "a; b"), (1.5, "1.5")])
def test_csv_cells_are_escaped_against_formulas(value, cell) -> None:  # type: ignore[no-untyped-def]
    assert safe_cell(value) == cell


def test_period_keys_agree_with_calendar_dates() -> None:
    """Month and year keys come from numpy datetimes; they must be the calendar's, whole range included."""
    from datetime import date

    from search.paging import _period_keys

    rng = np.random.default_rng(0)
    edges = [date(1, 1, 1), date(9999, 12, 31), date(2024, 2, 29), date(1970, 1, 1), date(1969, 12, 31)]
    days = np.concatenate([rng.integers(1, date(9999, 12, 31).toordinal(), 20_000),
                           [d.toordinal() for d in edges]])
    dates = [date.fromordinal(int(d)) for d in days]
    assert _period_keys(days, "month").tolist() == [d.year * 12 + d.month - 1 for d in dates]
    assert _period_keys(days, "year").tolist() == [d.year for d in dates]


@pytest.mark.parametrize("spread", [50, 10**9])  # dense keys (the scatter) and sparse ones (a sort)
def test_first_occurrences_in_order_of_appearance(spread: int) -> None:
    from search.paging import first_occurrences

    rng = np.random.default_rng(1)
    keys = np.concatenate([rng.integers(-1, spread, 3000), [-1, spread - 1]])
    want = sorted({int(k): i for i, k in reversed(list(enumerate(keys.tolist())))}.values())
    assert first_occurrences(keys).tolist() == want
    assert first_occurrences(np.zeros(0, dtype=np.int64)).tolist() == []
