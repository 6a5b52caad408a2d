"""Ordering the whole matched set for paging: numpy only, no ids.

Grouped results page through every document the keyword or entity legs match, not a window of
paragraphs: the documents of the fused window come first, in fused order, then the rest in the keyword
leg's order, then documents only the entity leg matched, in its order. With ``by_date`` the same set is
ordered newest first, undated documents last, ties in that relevance order. A fixed order for a fixed
query is what keeps pages from repeating or skipping a document.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from index.keyword import UNDATED


def first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each key, in the order the keys first appear.

    Keys here are document ordinals or docnums, small integers: the earliest index of each is found by
    one scatter (``np.minimum.at``) over the key range instead of sorting every key.
    """
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    lo, hi = int(keys.min()), int(keys.max())
    if hi - lo > max(4 * len(keys), 1 << 20):  # sparse keys: sorting them is cheaper than the range
        _, first = np.unique(keys, return_index=True)
        return np.sort(first)
    earliest = np.full(hi - lo + 1, len(keys), dtype=np.int64)
    np.minimum.at(earliest, keys - lo, np.arange(len(keys), dtype=np.int64))
    return np.sort(earliest[earliest < len(keys)])


def ordered_units(
    parts: Sequence[tuple[np.ndarray, np.ndarray]], *, by_date: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Merge ``(keys, days)`` lists, each in relevance order, earlier lists first; each key once.

    Returns the keys in page order and their day numbers. Negative keys (unknown) are dropped.
    """
    parts = [p for p in parts if len(p[0])]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    keys = np.concatenate([np.asarray(k, dtype=np.int64) for k, _ in parts])
    days = np.concatenate([np.asarray(d, dtype=np.int64) for _, d in parts])
    keep = first_occurrences(keys)
    keep = keep[keys[keep] >= 0]
    keys, days = keys[keep], days[keep]
    if by_date:
        newest_first = np.where(days == UNDATED, np.iinfo(np.int64).max, -days)
        order = np.lexsort((np.arange(len(keys)), newest_first))  # stable: relevance breaks ties
        keys, days = keys[order], days[order]
    return keys, days


def timeline(days: np.ndarray, *, max_bars: int = 60) -> tuple[str, list[tuple[str, int]]]:
    """Counts per period for a histogram: by day, month or year, whichever gives at most ``max_bars``.

    Returns the unit (``"day"``, ``"month"``, ``"year"``) and ``(period, count)`` for every period from
    the first to the last (empty periods included, so the bars are to scale). Undated entries are skipped.
    """
    from datetime import date

    dated = days[days != UNDATED]
    if not len(dated):
        return "month", []
    lo, hi = date.fromordinal(int(dated.min())), date.fromordinal(int(dated.max()))
    if (hi - lo).days < max_bars:
        unit = "day"
    elif (hi.year - lo.year) * 12 + hi.month - lo.month < max_bars:
        unit = "month"
    else:
        unit = "year"
    keys = _period_keys(dated, unit)
    uniq, counts = np.unique(keys, return_counts=True)
    found = dict(zip(uniq.tolist(), counts.tolist(), strict=True))
    first, last = int(keys.min()), int(keys.max())
    return unit, [(_period_label(k, unit), found.get(k, 0)) for k in range(first, last + 1)]


def _period_keys(days: np.ndarray, unit: str) -> np.ndarray:
    """Day numbers (proleptic ordinals) as day numbers, month keys (``year * 12 + month - 1``) or years."""
    if unit == "day":
        return days.astype(np.int64)
    dates = _EPOCH + (days.astype(np.int64) - 1).astype("timedelta64[D]")  # ordinal 1 = 0001-01-01
    months = dates.astype("datetime64[M]").astype(np.int64) + _MONTH0  # months since 0000-01
    return months if unit == "month" else months // 12


_EPOCH = np.datetime64("0001-01-01", "D")
_MONTH0 = 1970 * 12  # numpy counts months from 1970-01


def _period_label(key: int, unit: str) -> str:
    from datetime import date

    if unit == "day":
        return date.fromordinal(key).isoformat()
    if unit == "month":
        return f"{key // 12:04d}-{key % 12 + 1:02d}"
    return f"{key:04d}"
