"""Connected groups of pairs (union-find): near-duplicate documents, entities judged the same."""

from __future__ import annotations

from collections.abc import Iterable


def connected_groups(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The connected components of the graph whose edges are ``pairs``: each group sorted, groups ordered
    by their first member. Every id named in a pair is in exactly one group (a pair (x, x) makes a group
    of one)."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for x in sorted(parent):
        groups.setdefault(root(x), []).append(x)
    return sorted(groups.values(), key=lambda g: g[0])
