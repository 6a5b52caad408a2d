"""ISO dates at ingestion, date bounds of a query."""

from __future__ import annotations

import pytest

from index.dates import date_bounds, normalize_date, with_iso_dates
from index.errors import BadQuery
from index.records import Document


@pytest.mark.parametrize("written, iso", [
    ("2025-02-17", "2025-02-17"), ("2025-02-17T10:00:00Z", "2025-02-17"), ("Feb 17, 2025", "2025-02-17"),
    ("17 February 2025", "2025-02-17"), ("Monday 3 March 2025 10:04 GMT", "2025-03-03"),
    ("03/04/2025", "2025-04-03"),  # day first, as outside the US
    ("yesterday", None), ("2025", None), ("not a date", None), ("", None), (None, None), ("2025-02-30", None),
])
def test_normalize_date(written: str | None, iso: str | None) -> None:
    assert normalize_date(written) == iso


def test_unreadable_dates_are_reported_and_the_document_kept() -> None:
    docs = [Document(id="a", title="t", text="x", date="Feb 17, 2025"),
            Document(id="b", title="t", text="x", date="sometime"), Document(id="c", title="t", text="x")]
    out, warnings = with_iso_dates(docs)
    assert [d.date for d in out] == ["2025-02-17", None, None]
    assert len(warnings) == 1 and "b: date 'sometime'" in warnings[0]


def test_date_bounds() -> None:
    assert date_bounds("2024", "2024") == ("2024-01-01", "2024-12-31")
    assert date_bounds("2024-02", "2024-02") == ("2024-02-01", "2024-02-29")
    assert date_bounds(None, "2025-03-05") == (None, "2025-03-05")
    assert date_bounds("", None) == (None, None)
    for bad in ("2025-13", "20250", "2025/01", "0000"):
        with pytest.raises(BadQuery):
            date_bounds(bad, None)
    with pytest.raises(BadQuery, match="after"):
        date_bounds("2025-02", "2025-01")
