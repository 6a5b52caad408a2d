"""Countries and their subdivisions by the names news uses for them ("U.K.", "United Kingdom", "Holland"),
and the larger cities inside them (only to know that "London" is a place).

The names are rigour's territory data (the OpenSanctions name tools), *strong* names only: a territory's
short and full names and its common English and native forms; the weak ones (other languages, demonyms)
and the places inside a territory ("Baghdad" → Iraq) are left out, because a city is not its country. A
name two territories share names neither.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache

from index.linking.names import ascii_key


def territory_key(name: str) -> str:
    """The lookup key of a place name: dots dropped ("U.S." and "US" meet), transliterated, folded."""
    return ascii_key(name.replace(".", ""))


@cache
def _rows() -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
    """(code, strong names, places) per territory, read once from rigour's data."""
    from rigour.territories.lookup import _load_territory_names  # strong/weak split is not public API

    rows = _load_territory_names()
    return tuple((t.code, tuple(strong), tuple(places)) for t, strong, _weak, places in rows)


@cache
def _places() -> frozenset[str]:
    return frozenset(territory_key(p) for _code, _strong, places in _rows() for p in places)


@cache
def _names() -> dict[str, str]:
    codes: dict[str, set[str]] = defaultdict(set)
    for code, strong, _places in _rows():
        for name in strong:
            key = territory_key(name)
            if key and len(key) >= 2:
                codes[key].add(code)
    return {key: next(iter(c)) for key, c in codes.items() if len(c) == 1}


def territory_of(name: str) -> str | None:
    """The territory code (ISO 3166 style: "gb", "us-fl") a place name names, if exactly one."""
    return _names().get(territory_key(name))


def is_known_place(name: str) -> bool:
    """Whether ``name`` is a territory or one of the cities the territory data lists ("London", "Baghdad")."""
    return territory_of(name) is not None or territory_key(name) in _places()
