"""Dates: what ingestion finds becomes an ISO 8601 day (``YYYY-MM-DD``); what a query asks becomes a range.

Stored dates compare as strings and as day numbers only when they are ISO, so every document date is
normalised once at build time (``normalize_date``). ``dateparser`` reads the formats news sites use
("Feb 17, 2025", "17/02/2025", "Monday 3 March 2025 10:04 GMT", ISO timestamps); relative phrases
("yesterday") and dates without a month are refused, since they would date a document by the build day.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import replace
from datetime import date
from functools import lru_cache

from index.errors import BadQuery
from index.records import Document

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_QUERY_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
_PARSER_SETTINGS = {
    "PARSERS": ["timestamp", "custom-formats", "absolute-time"],  # no "relative-time": no "yesterday"
    "REQUIRE_PARTS": ["year", "month"],
    "PREFER_DAY_OF_MONTH": "first",
    "RETURN_AS_TIMEZONE_AWARE": False,
    "DATE_ORDER": "DMY",  # 03/04/2025 is 3 April, as outside the US; ISO and month names are unambiguous
}


@lru_cache(maxsize=4096)
def normalize_date(value: str | None) -> str | None:
    """``value`` as an ISO day, or None when there is none or it cannot be read as an absolute date."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if _ISO_DAY.match(text):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            return None
    try:
        return date.fromisoformat(text[:10]).isoformat()  # ISO timestamps: 2025-02-17T10:00:00Z
    except ValueError:
        pass
    import dateparser

    parsed = dateparser.parse(text[:100], settings=_PARSER_SETTINGS)
    return parsed.date().isoformat() if parsed is not None else None


def date_bounds(date_from: str | None, date_to: str | None) -> tuple[str | None, str | None]:
    """Inclusive ISO days for a query's ``from`` / ``to`` (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``).

    ``from=2025-02`` starts on 1 February, ``to=2025-02`` ends on the 28th. Raises ``BadQuery``.
    """
    lo = _bound("from", date_from, start=True)
    hi = _bound("to", date_to, start=False)
    if lo and hi and lo > hi:
        raise BadQuery(f"from ({lo}) is after to ({hi})")
    return lo, hi


def _bound(name: str, value: str | None, *, start: bool) -> str | None:
    if value is None or not value.strip():
        return None
    m = _QUERY_DATE.match(value.strip())
    if not m:
        raise BadQuery(f"{name} must be an ISO date (YYYY, YYYY-MM or YYYY-MM-DD), got {value[:40]!r}")
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else (1 if start else 12)
    try:
        last = calendar.monthrange(year, month)[1]
        day = int(m.group(3)) if m.group(3) else (1 if start else last)
        return date(year, month, day).isoformat()
    except (ValueError, calendar.IllegalMonthError):
        raise BadQuery(f"{name} is not a calendar date: {value[:40]!r}") from None


def with_iso_dates(documents: list[Document]) -> tuple[list[Document], list[str]]:
    """The documents with ISO dates, and a warning for each date that could not be read (the document is
    kept, undated: it is left out of date-range searches and sorts last by date)."""
    out: list[Document] = []
    warnings: list[str] = []
    for doc in documents:
        iso = normalize_date(doc.date)
        if doc.date and iso is None:
            warnings.append(f"{doc.id}: date {doc.date[:60]!r} is not a date Personae can read; kept undated")
        out.append(doc if iso == doc.date else replace(doc, date=iso))
    return out, warnings
