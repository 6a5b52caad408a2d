"""The corpus pass's helpers, against the plain definitions they replace."""

from __future__ import annotations


def test_days_near_a_day_counts_what_a_pass_over_them_counts() -> None:
    import random

    from index.linking.corpus import SURNAME_WINDOW_DAYS, _Days

    rng = random.Random(7)
    for _ in range(200):
        values = [rng.choice([None, rng.randrange(-3000, 3000)]) for _ in range(rng.randrange(0, 30))]
        days = _Days(values)
        for day in [None, *(rng.randrange(-4000, 4000) for _ in range(10)), *(v for v in values if v)]:
            want = sum(1 for d in values if day is None or d is None or abs(d - day) <= SURNAME_WINDOW_DAYS)
            assert days.near(day) == want
