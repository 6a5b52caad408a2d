"""Server-rendered bar charts (SVG): geometry here, markup in ``templates/_chart.html``. No JavaScript,
no network: every bar is a link, so a click filters the search to that period."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, GAP = 600, 80, 1


@dataclass(frozen=True)
class Bar:
    period: str  # "2025", "2025-02" or "2025-02-17": also the from/to value that selects the period
    count: int
    x: float
    y: float
    width: float
    height: float
    href: str


def bars(bins: Sequence[tuple[str, int]], href: Callable[[str], str], *, width: int = WIDTH,
         height: int = HEIGHT) -> list[Bar]:
    """One bar per period, heights to scale (a non-empty period is at least 2 px high)."""
    if not bins:
        return []
    top = max(n for _, n in bins) or 1
    step = width / len(bins)
    out = []
    for i, (period, n) in enumerate(bins):
        h = 0.0 if n == 0 else max(2.0, height * n / top)
        out.append(Bar(period, n, round(i * step, 2), round(height - h, 2), round(max(step - GAP, 1), 2),
                       round(h, 2), href(period)))
    return out
