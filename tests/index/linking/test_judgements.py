"""Curation decisions to and from nomenklatura's judgement lines; the round trip gives the same build."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from index.linking.judgements import export_judgements, import_judgements, pair
from index.linking.kb import import_file
from index.linking.registry import Registry
from personae.cli import cli
from tests.index.linking.test_kb_import import CORPUS, FTM, WIKIDATA, build_links, write_corpus


def _kb_registry(path: Path) -> Path:
    for f in (WIKIDATA, FTM):
        import_file(f, Registry.load(path))
    return path


def _decide(reg: Registry) -> None:
    reg.merge("sy-pb-customs", "sy-org-bank")
    reg.merge("local:chicolini", "Q990000020")  # a cluster the build finds, into a registry entity
    reg.rename("Q990000020", "Rufus Thaddeus Firefly")
    reg.split("Q990000022", "Anna M. Trentino", "local:person:anna-m-trentino")
    reg.reject("Q990000031")
    reg.reject("Marxville")  # a surface


def test_export_writes_nomenklatura_lines(tmp_path: Path) -> None:
    reg = Registry.load(_kb_registry(tmp_path / "reg.jsonl"))
    _decide(reg)
    out = tmp_path / "judgements.jsonl"
    assert export_judgements(reg, out, user="desk") == 6
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # [target, source, judgement, score, user, created_at, deleted_at, {"personae": decision}]
    assert all(len(r) == 8 and r[3] is None and r[4] == "desk" and r[5] and r[6] is None for r in rows)
    assert [r[:3] for r in rows] == [
        ["sy-pb-customs", "sy-org-bank", "positive"],
        ["Q990000020", "local:chicolini", "positive"],  # a QID is nomenklatura's canonical side
        ["Q990000020", "personae:renamed", "unsure"],
        ["Q990000022", "local:person:anna-m-trentino", "negative"],
        ["Q990000031", "personae:rejected", "negative"],
        ["personae:surface:Marxville", "personae:rejected", "negative"],
    ]
    assert rows[0][7] == {"personae": {"decision": "merge", "from": "sy-pb-customs", "into": "sy-org-bank"}}


def test_decisions_round_trip_exactly_and_reimport_is_idempotent(tmp_path: Path) -> None:
    reg = Registry.load(_kb_registry(tmp_path / "a.jsonl"))
    _decide(reg)
    export_judgements(reg, tmp_path / "j.jsonl")
    other = Registry.load(_kb_registry(tmp_path / "b.jsonl"))
    rep = import_judgements(other, tmp_path / "j.jsonl")
    assert (rep.lines, rep.decisions, rep.present) == (6, 6, 0) and not rep.skipped
    assert Registry.load(tmp_path / "b.jsonl").decisions == reg.decisions
    again = import_judgements(Registry.load(tmp_path / "b.jsonl"), tmp_path / "j.jsonl")
    assert (again.decisions, again.present) == (0, 6)


def test_plain_nomenklatura_lines(tmp_path: Path) -> None:
    """Lines as nomenklatura itself dumps them: no Personae decision attached."""
    reg = Registry.load(_kb_registry(tmp_path / "reg.jsonl"))
    reg.merge("sy-per-brandauer", "sy-per-marconi")
    lines = [
        # nomenklatura joins a cluster through its own canonical NK- id
        ["NK-abc", "sy-per-kowalczyk", "positive", None, "u", "2024-01-01T00:00:00"],
        ["NK-abc", "local:person:helena-k", "positive", None, "u", "2024-01-01T00:00:00"],
        ["sy-per-marconi", "sy-per-brandauer", "negative", None, "u", "2024-01-02T00:00:00"],
        ["sy-org-bank", "sy-co-ship", "negative", None, "u", "2024-01-02T00:00:00"],
        ["sy-org-bank", "sy-pb-customs", "unsure", None, "u", "2024-01-02T00:00:00"],
        ["sy-org-bank", "sy-co-ship", "positive", None, "u", "2024-01-01T00:00:00", "2024-01-02T00:00:00"],
        ["only", "two"],
    ]
    path = tmp_path / "nk.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "not json\n", encoding="utf-8")
    rep = import_judgements(reg, path)
    assert rep.decisions == 1 and rep.satisfied == 1
    assert Registry.load(tmp_path / "reg.jsonl").decisions[-1] == {  # the registry id is kept
        "decision": "merge", "from": "local:person:helena-k", "into": "sy-per-kowalczyk"}
    assert rep.conflicts == [
        "negative judgement between sy-per-marconi and sy-per-brandauer, but the registry merges them (the "
        "merge is kept; split or undo it by hand)"]
    assert rep.skipped == {"unsure judgement: nothing to apply": 1, "deleted judgement": 1,
                           "malformed line (not JSON)": 1,
                           "malformed line (not [target, source, judgement, …])": 1}
    assert pair("Q5", "NK-x") == ("Q5", "NK-x") and pair("NK-x", "abc") == ("NK-x", "abc")


def test_a_decision_that_does_not_apply_is_reported_not_fatal(tmp_path: Path) -> None:
    reg = Registry.load(_kb_registry(tmp_path / "a.jsonl"))
    _decide(reg)
    export_judgements(reg, tmp_path / "j.jsonl")
    empty = Registry.load(tmp_path / "empty.jsonl")
    rep = import_judgements(empty, tmp_path / "j.jsonl")
    assert rep.decisions == 5  # all but the split, whose entity this registry lacks
    assert [k for k in rep.skipped] == ["decision does not apply to this registry (split: unknown entity "
                                        "'Q990000022')"]


def test_round_trip_gives_the_same_links(tmp_path: Path) -> None:
    """Export, import into a registry without decisions, build: the same links as the original registry."""
    docs = [*CORPUS, {"id": "extra", "date": "2006-01-01", "title": "Visit", "text": "Visit\n\nAnna M. "
                      "Trentino met Chicolini in Marxville. Chicolini said the Sylvanian Customs Service was "
                      "slow."}]
    corpus = write_corpus(tmp_path / "corpus.jsonl", docs)
    original = _kb_registry(tmp_path / "a.jsonl")
    _decide(Registry.load(original))
    run = CliRunner().invoke
    res = run(cli, ["entities", "export-judgements", str(tmp_path / "j.jsonl"),
                    "--entities-file", str(original)])
    assert res.exit_code == 0 and "wrote 6 judgements" in res.output, res.output
    copy = _kb_registry(tmp_path / "b.jsonl")
    res = run(cli, ["entities", "import-judgements", str(tmp_path / "j.jsonl"), "--entities-file", str(copy)])
    assert res.exit_code == 0 and "6 decisions added" in res.output, res.output

    before = build_links(corpus, original, tmp_path / "idx-a")
    after = build_links(corpus, copy, tmp_path / "idx-b")
    assert after == before
    extra = dict((t, e) for t, e in before["extra#0"])
    # the decisions did take effect: split alias, merged cluster, merged org, rejected surface
    assert extra["Anna M. Trentino"] == "local:person:anna-m-trentino"
    assert extra["Chicolini"] == "Q990000020" and extra["Sylvanian Customs Service"] == "sy-org-bank"
    assert "Marxville" not in extra and all(e != "Q990000031" for _, e in before["fd-2007#0"])
