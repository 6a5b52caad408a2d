from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.entities import Registry, normalize_name, variant_key
from index.errors import NotFound, PersonaeError

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_normalize_name() -> None:
    assert normalize_name("U.S.") == normalize_name("US") == "us"
    assert normalize_name("  Zelénskyy ") == "zelenskyy"
    assert normalize_name("Russia's") == normalize_name("Russia’s") == "russia"
    assert normalize_name("Ukraine–Russia  war") == "ukraine russia war"
    assert variant_key("Zelenskiy") == variant_key("Zelensky") == variant_key("Zelenskyy")
    assert variant_key("Sergei") == variant_key("Sergey")


def test_seed_registry_loads() -> None:
    reg = Registry.load(ROOT / "seeds" / "entities.jsonl")
    lav = reg.show("sergei-lavrov")
    assert "Russian foreign minister" in lav.titles
    assert reg.show("vladimir-putin").wikidata == "Q7747"
    assert "US" in reg.show("united-states").aliases


def test_save_is_stable(tmp_path: Path) -> None:
    reg = Registry.load(ROOT / "seeds" / "entities.jsonl")
    a = reg.save(tmp_path / "a.jsonl").read_text()
    b = Registry.load(tmp_path / "a.jsonl").save(tmp_path / "b.jsonl").read_text()
    assert a == b
    ids = [json.loads(line)["id"] for line in a.splitlines() if "decision" not in line]
    assert ids == sorted(ids)


def test_duplicate_id_names_line(tmp_path: Path) -> None:
    p = _write(tmp_path / "r.jsonl", [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}])
    with pytest.raises(PersonaeError, match=r"r\.jsonl:2: duplicate entity id 'a'"):
        Registry.load(p)


def test_alias_claimed_twice_names_line(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "r.jsonl",
        [{"id": "a", "name": "Alpha", "aliases": ["U.S."]}, {"id": "b", "name": "Beta", "aliases": ["US"]}],
    )
    with pytest.raises(PersonaeError, match=r"r\.jsonl:2: alias 'us' of 'b' is already claimed by 'a'"):
        Registry.load(p)


def test_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "y.jsonl").write_text('{"id": "a", "name": "A"}\n{nope\n')
    with pytest.raises(PersonaeError, match=r"y\.jsonl:2: invalid JSON"):
        Registry.load(tmp_path / "y.jsonl")
    with pytest.raises(PersonaeError, match="type 'alien'"):
        Registry.load(_write(tmp_path / "z.jsonl", [{"id": "a", "name": "A", "type": "alien"}]))
    with pytest.raises(PersonaeError, match="unknown decision 'explode'"):
        Registry.load(_write(tmp_path / "w.jsonl", [{"decision": "explode"}]))


def test_curation_survives_reload(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "r.jsonl",
        [
            {
                "id": "lavrov",
                "name": "Sergei Lavrov",
                "type": "person",
                "aliases": ["Lavrov", "S. Lavrov Jr"],
            },
            {"id": "lavrov-dup", "name": "Sergey V. Lavrov", "type": "person"},
            {"id": "junk", "name": "Rules Out", "type": "person"},
        ],
    )
    reg = Registry.load(p)
    reg.merge("lavrov-dup", "lavrov")
    new_id = reg.split("lavrov", "S. Lavrov Jr")
    reg.rename("lavrov", "Sergey Lavrov")
    reg.reject("junk")
    reg.reject("Getty Images")
    reg.merge("local:person:s-lavrov", "lavrov")
    for r in (reg, Registry.load(p)):
        assert [e.id for e in r.list()] == sorted(["lavrov", new_id])
        lav = r.show("lavrov-dup")  # redirects
        assert lav.id == "lavrov" and lav.name == "Sergey Lavrov"
        assert "Sergei Lavrov" in lav.aliases and "Sergey V. Lavrov" in lav.aliases
        assert "S. Lavrov Jr" not in lav.aliases
        assert r.resolve("local:person:s-lavrov") == "lavrov"
        assert "junk" in r.rejected_ids and "getty images" in r.rejected_surfaces
        with pytest.raises(NotFound):
            r.show("junk")
    # decisions are appended, entity lines untouched
    lines = p.read_text().splitlines()
    assert len(lines) == 3 + 6 and all("decision" in json.loads(x) for x in lines[3:])


def test_bad_split_is_rejected_and_not_written(tmp_path: Path) -> None:
    p = _write(tmp_path / "r.jsonl", [{"id": "a", "name": "Alpha", "aliases": ["Al"]}])
    reg = Registry.load(p)
    with pytest.raises(PersonaeError, match="not an alias"):
        reg.split("a", "Beta")
    assert len(p.read_text().splitlines()) == 1
    assert Registry.load(p).show("a").aliases == ("Al",)
