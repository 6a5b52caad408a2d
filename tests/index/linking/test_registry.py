from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.errors import NotFound, PersonaeError
from index.linking.names import normalize_name, variant_key
from index.linking.registry import Registry

ROOT = Path(__file__).resolve().parents[3]


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
    assert "Russian foreign minister" in lav.title_names
    assert all(t.start == "2004-03-09" and t.end is None for t in lav.titles)
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


def test_one_alias_may_name_several_entities(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "r.jsonl",
        [{"id": "ford-motor", "name": "Ford Motor Company", "type": "org", "aliases": ["Ford"]},
         {"id": "gerald-ford", "name": "Gerald Ford", "type": "person", "aliases": ["Ford"]}],
    )
    from index.linking.candidates import RegistryIndex

    index = RegistryIndex(Registry.load(p))
    assert index.by_name("Ford") == (["ford-motor", "gerald-ford"], "alias")


def test_dated_titles_parse_and_round_trip(tmp_path: Path) -> None:
    from index.records import Title

    p = _write(tmp_path / "r.jsonl", [{"id": "x", "name": "X Y", "type": "person", "titles": [
        "Leader", {"title": "Secretary of State", "from": "2025-01-21", "to": None}]}])
    reg = Registry.load(p)
    titles = reg.show("x").titles
    assert titles == (Title("Leader"), Title("Secretary of State", "2025-01-21", None))
    assert titles[1].holds_on("2025-03-01") and not titles[1].holds_on("2003-02-05")
    assert not titles[0].holds_on("2025-03-01")  # undated: never by date alone
    line = json.loads(reg.save(tmp_path / "out.jsonl").read_text())
    assert line["titles"] == ["Leader", {"title": "Secretary of State", "from": "2025-01-21", "to": None}]


def test_bad_title_date_names_line(tmp_path: Path) -> None:
    bad = {"id": "x", "name": "X", "titles": [{"title": "Mayor", "from": "last May"}]}
    p = _write(tmp_path / "r.jsonl", [bad])
    with pytest.raises(PersonaeError, match=r"r\.jsonl:1: entity 'x': title 'Mayor': 'from' must be an ISO"):
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
