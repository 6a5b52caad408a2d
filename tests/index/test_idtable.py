"""IdTable: ids by row in numpy arrays, the way back by hash, checked against a list and a dict."""

from __future__ import annotations

import random

import numpy as np
import pytest

import index.idtable
from index.idtable import IdTable


def _ids(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcxyz09#._-éß中😀"
    out = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(n)}
    return sorted(out)


def _check(table: IdTable, ids: list[str], asked: list[str]) -> None:
    assert len(table) == len(ids) and list(table) == ids
    assert [table[i] for i in range(len(ids))] == ids and table[-1] == ids[-1]
    assert table[:-1] == ids[:-1] and table[2:9:3] == ids[2:9:3]
    first = {}
    for row, pid in enumerate(ids):
        if pid:
            first.setdefault(pid, row)
    want = [first.get(p, -1) for p in asked]
    assert table.rows_of(asked).tolist() == want
    assert [table.row(p) for p in asked] == want
    found = np.array(want)[np.array(want) >= 0]
    assert table.take(found) == [p for p, w in zip(asked, want, strict=True) if w >= 0]


def test_rows_and_ids_agree_with_a_list_and_a_dict() -> None:
    ids = _ids(3000)
    random.Random(1).shuffle(ids)
    ids[5] = ids[17] = ""  # dead rows: never found
    table = IdTable(ids)
    assert table.live == len(ids) - 2
    asked = ids[::3] + ["", "absent", ids[100] + "x", ids[200][:-1]] + _ids(50, seed=9)
    _check(table, ids, asked)


def test_colliding_hashes_cost_a_second_look_never_a_wrong_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index.idtable, "hash", lambda s: len(s), raising=False)  # collisions everywhere
    ids = _ids(500, seed=2)
    table = IdTable(ids)
    _check(table, ids, ids[::-1] + ["", "nope", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"])


def test_concat_and_empty_tables() -> None:
    a, b = IdTable(["p1", "p2"]), IdTable(["", "p3"])
    both = IdTable.concat([a, b])
    assert list(both) == ["p1", "p2", "", "p3"] and both.rows_of(["p3", "p1", ""]).tolist() == [3, 0, -1]
    assert IdTable.concat([a]) is a
    empty = IdTable([])
    assert len(empty) == 0 and empty.live == 0 and empty.rows_of(["x"]).tolist() == [-1] and list(empty) == []
