"""Knowledge-base import: Wikidata dump lines and FtM streams into the registry, and a build over a corpus
that names the imported entities (including bare titles resolved by the document's date)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from index import layout
from index.errors import PersonaeError
from index.linking.kb import detect_format, import_file
from index.linking.registry import Registry
from index.records import Entity, Title
from index.store import read_entities, read_paragraphs
from personae.cli import cli

DATA = Path(__file__).parent / "data" / "kb"
WIKIDATA, FTM = DATA / "wikidata.json", DATA / "ftm.jsonl"


def test_wikidata_fixture_imports_with_counts_and_reasons(tmp_path: Path) -> None:
    reg = Registry.load(tmp_path / "reg.jsonl")
    rep = import_file(WIKIDATA, reg)
    assert rep.format == "wikidata" and rep.lines == 12  # the "[" / "]" framing lines are not counted
    assert dict(rep.types) == {"person": 3, "place": 2, "org": 2}
    assert (rep.added, rep.updated, rep.unchanged) == (7, 0, 0)
    assert rep.skipped == {
        "malformed line: invalid JSON (Unterminated string starting at)": 1,
        "no English label": 1,
        "not a Wikidata item (property, lexeme or no id)": 1,
        "position item missing from the file": 1,
    }
    assert rep.examples["position item missing from the file"] == ["Q990000012 (held by Q990000022)"]
    summary = rep.summary()
    assert "7 added" in summary and "position item missing from the file" in summary and "line 9" in summary

    # positions are titles, not entities; the deprecated P39 statement is ignored
    assert "Q990000010" not in reg and "Q990000011" not in reg
    teasdale = reg.get("Q990000021")
    assert teasdale is not None and teasdale.wikidata == "Q990000021" and teasdale.type == "person"
    assert teasdale.description == "Freedonian diplomat (test fixture)"
    assert set(teasdale.titles) == {Title(t, "1998-05", "2005-02-14") for t in (
        "Minister of Foreign Affairs of Freedonia", "Freedonian Foreign Minister",
        "Foreign Minister of Freedonia")}
    trentino = reg.show("Q990000022")
    assert trentino.aliases == ("Anna M. Trentino",)
    assert {t.start for t in trentino.titles} == {"2005-02-15"} and {t.end for t in trentino.titles} == {None}
    assert reg.show("Q990000001").aliases == ("Freedonian",)  # P1549 demonym of a place
    assert reg.show("Q990000030").type == "org" and reg.show("Q990000002").type == "place"
    # saved, and the file reloads to the same entities
    assert Registry.load(tmp_path / "reg.jsonl").entities == reg.entities


def test_ftm_fixture_imports_with_counts_and_reasons(tmp_path: Path) -> None:
    reg = Registry.load(tmp_path / "reg.jsonl")
    rep = import_file(FTM, reg)
    assert rep.format == "ftm" and rep.lines == 15
    assert dict(rep.types) == {"person": 3, "org": 3} and rep.added == 6
    assert rep.skipped == {
        "Position missing from the file": 1,
        "malformed line: invalid JSON (Unterminated string starting at)": 1,
        "not an FtM entity (No schema for entity.)": 1,
        "schema Address is not imported": 1,
    }
    assert rep.positions == 2 and rep.titles == 8
    marconi = reg.show("sy-per-marconi")
    assert marconi.aliases == ("V. Marconi",)
    assert Title("Foreign Minister", "2008-01-10", "2013-06-30") in marconi.titles  # occupancy before person
    assert reg.show("sy-per-brandauer").wikidata == "Q990000100"
    assert {t.start for t in reg.show("sy-per-kowalczyk").titles} == {"2010"}
    assert {e.type for e in reg.list() if e.id.startswith(("sy-org", "sy-co", "sy-pb"))} == {"org"}
    assert "sy-pos-fm" not in reg


def test_reimport_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "reg.jsonl"
    for f in (WIKIDATA, FTM):
        import_file(f, Registry.load(path))
    before = path.read_bytes()
    for f in (WIKIDATA, FTM):
        rep = import_file(f, Registry.load(path))
        assert rep.added == rep.updated == 0 and rep.unchanged > 0 and not rep.conflict_count
    assert path.read_bytes() == before


def test_existing_entity_is_merged_and_conflicts_reported(tmp_path: Path) -> None:
    path = tmp_path / "reg.jsonl"
    reg = Registry.load(path)
    reg.add(Entity(id="rufus-firefly", name="Rufus Firefly", type="person", wikidata="Q990000020",
                   description="President of Freedonia", titles=(Title("Leader of Freedonia"),)))
    reg.add(Entity(id="Q990000021", name="Gloria Teasdale", type="person", aliases=("G. Teasdale",)))
    rep = import_file(WIKIDATA, Registry.load(path))
    reg = Registry.load(path)
    # matched by Wikidata id: the registry id, name and description stay; names and titles are added
    assert "Q990000020" not in reg
    rufus = reg.show("rufus-firefly")
    assert rufus.name == "Rufus Firefly" and rufus.description == "President of Freedonia"
    assert "Rufus T. Firefly" in rufus.aliases
    assert Title("Leader of Freedonia") in rufus.titles and len(rufus.titles) == 3
    # matched by id: missing values are filled in
    gloria = reg.show("Q990000021")
    assert gloria.wikidata == "Q990000021" and gloria.description and gloria.aliases == ("G. Teasdale",)
    assert rep.updated == 2 and rep.added == 5
    assert rep.conflicts == [
        "rufus-firefly: name: kept 'Rufus Firefly', 'Rufus T. Firefly' added as an alias",
        "rufus-firefly: description: kept 'President of Freedonia', file has 'Freedonian politician (test "
        "fixture)'",
    ]
    assert "2 conflicts (registry values kept)" in rep.summary()


def test_compressed_dump_and_format_detection(tmp_path: Path) -> None:
    gz = tmp_path / "dump.json.gz"
    gz.write_bytes(gzip.compress(WIKIDATA.read_bytes()))
    assert detect_format(gz) == "wikidata" and detect_format(FTM) == "ftm"
    assert import_file(gz, Registry()).added == 7
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": "world"}\n', encoding="utf-8")
    with pytest.raises(PersonaeError, match="pass --format"):
        detect_format(other)


def test_cli_import_prints_the_summary(tmp_path: Path) -> None:
    reg = tmp_path / "reg.jsonl"
    args = ["--entities-file", str(reg)]
    res = CliRunner().invoke(cli, ["entities", "import", str(FTM), "--format", "ftm", *args])
    assert res.exit_code == 0, res.output
    assert "6 added" in res.output and "schema Address is not imported" in res.output
    res = CliRunner().invoke(cli, ["entities", "import", str(WIKIDATA), "--json", *args])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["skipped"]["no English label"] == 1
    assert len(Registry.load(reg)) == 13


def test_import_only_selected_types(tmp_path: Path) -> None:
    reg = tmp_path / "reg.jsonl"
    res = CliRunner().invoke(cli, ["entities", "import", str(WIKIDATA), "--type", "person", "--type", "place",
                                   "--entities-file", str(reg)])
    assert res.exit_code == 0, res.output
    assert "skipped 2: type org not selected (e.g. Q990000030, Q990000031)" in res.output
    assert {e.type for e in Registry.load(reg).list()} == {"person", "place"}
    with pytest.raises(PersonaeError, match="unknown entity type"):
        import_file(WIKIDATA, Registry(), types=["planet"])


def test_partial_end_date_covers_its_year() -> None:
    t = Title("Prime Minister of Sylvania", "2010", "2016")
    assert t.holds_on("2016-11-20") and t.holds_on("2010-01-01")
    assert not t.holds_on("2017-01-01") and not t.holds_on("2009-12-31")
    month = Title("x", None, "2016-03")
    assert month.holds_on("2016-03-31") and not month.holds_on("2016-04-01")


CORPUS = [
    {"id": "fd-2003", "date": "2003-04-02", "title": "Freedonia talks", "text": "Freedonia talks\n\n"
     "The Freedonian Foreign Minister said on Wednesday that Marxville would host the summit. "
     "Rufus T. Firefly, the Prime Minister, agreed.\n\nThe Freedonian Workers' Party objected."},
    {"id": "fd-2007", "date": "2007-09-12", "title": "New minister", "text": "New minister\n\n"
     "The Freedonian Foreign Minister said the border would stay open. Firefly was not present, the "
     "Marxville Chronicle reported."},
    {"id": "sy-2012", "date": "2012-03-05", "title": "Sylvania budget", "text": "Sylvania budget\n\n"
     "The Foreign Minister said the Sylvanian National Bank would cut rates. Lena Kowalczyk, the prime "
     "minister, declined to comment."},
    {"id": "sy-2015", "date": "2015-11-20", "title": "Sylvania ports", "text": "Sylvania ports\n\n"
     "The Foreign Minister said Marconi Shipping Ltd would expand. The Sylvanian Customs Service disagreed."},
]


def write_corpus(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def build_links(corpus: Path, registry: Path, index_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """Build (hash encoder: linking is what is under test) and return each paragraph's (text, entity id)."""
    from index.build import build_index
    from index.settings import Settings

    settings = Settings.load(env={}, corpus=str(corpus), index_dir=str(index_dir), model="hash",
                             entities_file=str(registry))
    build_index(settings)
    out = {}
    for row in read_paragraphs(layout.current_build(index_dir)):
        out[row["id"]] = [(x["text"], x["entity_id"]) for x in row["links"]]
    return out


def test_build_links_to_imported_ids_and_dated_titles(tmp_path: Path) -> None:
    reg = tmp_path / "reg.jsonl"
    for f in (WIKIDATA, FTM):
        import_file(f, Registry.load(reg))
    links = build_links(write_corpus(tmp_path / "corpus.jsonl", CORPUS), reg, tmp_path / "idx")
    # the same title on two dates: the holder on each date (Wikidata P39 with P580/P582)
    assert ("Freedonian Foreign Minister", "Q990000021") in links["fd-2003#0"]
    assert ("Freedonian Foreign Minister", "Q990000022") in links["fd-2007#0"]
    # ... and through FtM Occupancy, a bare "The Foreign Minister"
    assert ("Foreign Minister", "sy-per-marconi") in links["sy-2012#0"]
    assert ("Foreign Minister", "sy-per-brandauer") in links["sy-2015#0"]
    # names, an overlapping office held by a third person, organisations and a place
    assert {("Rufus T. Firefly", "Q990000020"), ("Marxville", "Q990000002")} <= set(links["fd-2003#0"])
    assert ("Freedonian Workers' Party", "Q990000030") in links["fd-2003#1"]
    assert ("Marxville Chronicle", "Q990000031") in links["fd-2007#0"]
    assert {("Lena Kowalczyk", "sy-per-kowalczyk"), ("Sylvanian National Bank", "sy-org-bank")} <= set(
        links["sy-2012#0"])
    assert {("Marconi Shipping Ltd", "sy-co-ship"), ("Sylvanian Customs Service", "sy-pb-customs")} <= set(
        links["sy-2015#0"])
    ents = read_entities(layout.current_build(tmp_path / "idx"))
    assert ents["Q990000021"]["wikidata"] == "Q990000021"
    assert {"title": "Freedonian Foreign Minister", "start": "1998-05", "end": "2005-02-14"} in ents[
        "Q990000021"]["titles"]


def test_registry_lines_split_on_newlines_only(tmp_path: Path) -> None:
    """An imported description may hold U+2028 (a line separator to ``str.splitlines``, not to JSON lines)."""
    path = tmp_path / "reg.jsonl"
    Registry.load(path).add(Entity(id="q", name="Q Corp", type="org", description="one\u2028two\x85three"))
    assert Registry.load(path).show("q").description == "one\u2028two\x85three"


def test_an_invalid_entity_leaves_the_registry_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "reg.jsonl"
    import_file(FTM, Registry.load(path))
    before = path.read_bytes()
    reg = Registry.load(path)
    with pytest.raises(PersonaeError, match="type 'planet'"):
        reg.upsert([Entity(id="sy-per-marconi", name="Vera Marconi", aliases=("Vera M.",)),
                    Entity(id="new", name="Mars", type="planet")])
    assert reg.entities == Registry.load(path).entities and path.read_bytes() == before
