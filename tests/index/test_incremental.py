"""Incremental builds: reuse NER output and vectors of unchanged documents, yet equal a full rebuild."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from index import layers, layout
from index.build import build_index, read_mentions
from index.settings import Settings
from index.store import read_documents, read_entities, read_paragraphs
from index.vectors import VectorIndex
from personae.cli import cli
from search.searcher import Searcher
from tests.conftest import SEEDS

DOCS = {
    "a.txt": "Harbour strike spreads\n\nDockworkers led by Marta Okonkwo walked out at the port of "
    'Felixstowe on Monday. Okonkwo said the Transport Workers Alliance would not back down.'
    '\n\n"We are not going anywhere," Okonkwo said, as Vantor Logistics warned of delays.',
    "b.txt": "Vantor profits fall\n\nVantor Logistics reported lower profits. Chief executive "
    "Peter Lindqvist blamed the strike at Felixstowe and rising fuel costs.\n\n"
    "Lindqvist met Marta Okonkwo in London.",
    "c.txt": "Rare earth talks\n\nSergei Lavrov said Russia was open to talks on rare earth metals. Lavrov "
    "spoke in Moscow.\n\nThe Transport Workers Alliance was not mentioned.",
    "d.txt": "Ferry routes cut\n\nGalloway Ferries cut three routes. Dana Whitfield of Galloway Ferries "
    "said the company regretted the decision.",
    "e.txt": "Port reopens\n\nThe port of Felixstowe reopened after talks between Vantor Logistics and the "
    "union ended. Okonkwo called it a victory.",
}
QUERIES = ["strike Felixstowe", "Okonkwo", "profits fuel costs", "ferry routes", "rare earth", "talks union"]


def _write_corpus(folder: Path, docs: dict[str, str]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, text in docs.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")


def _settings(corpus: Path, index_dir: Path) -> Settings:
    return Settings.load(
        env={}, corpus=str(corpus), index_dir=str(index_dir), entities_file=str(SEEDS / "entities.jsonl")
    )


def _vectors(folder: Path) -> dict[str, np.ndarray]:
    vi = VectorIndex.open(folder)
    ids = sorted(vi.live_ids())  # a delta build numbers rows base first, then delta: compare by id
    mat = vi.vectors(vi.rows_of(ids))
    return {pid: mat[i] for i, pid in enumerate(ids)}


def _assert_same_index(inc: Settings, full: Settings) -> None:
    _assert_same_data(inc, full)
    _assert_same_searches(inc, full)


def _assert_same_as_a_full_build(inc: Settings, corpus: Path, index_dir: Path) -> None:
    """``inc``'s index equals a full build of ``corpus`` into ``index_dir``."""
    full = _settings(corpus, index_dir)
    build_index(full, incremental=False)
    _assert_same_index(inc, full)


def _assert_same_data(inc: Settings, full: Settings) -> None:
    """Stored data: documents, paragraphs, entities, detector output, vectors, counts."""
    a, b = layout.current_build(inc.index_path), layout.current_build(full.index_path)
    assert read_documents(a) == read_documents(b)
    assert read_paragraphs(a) == read_paragraphs(b)
    assert read_entities(a) == read_entities(b)
    ma, mb = read_mentions(a), read_mentions(b)  # the incremental build may keep texts it no longer has
    assert set(mb) <= set(ma) and {k: ma[k] for k in mb} == mb
    va, vb = _vectors(a), _vectors(b)
    assert list(va) == list(vb)
    for pid in va:
        np.testing.assert_allclose(va[pid], vb[pid], atol=1e-5)
    ma, mb = layout.read_manifest(a), layout.read_manifest(b)
    assert ma.counts == mb.counts and ma.corpus_fingerprint == mb.corpus_fingerprint
    duplicates = [json.loads((f / layout.DUPLICATES).read_text(encoding="utf-8")) for f in (a, b)]
    assert duplicates[0] == duplicates[1]


def _assert_same_searches(inc: Settings, full: Settings) -> None:
    sa, sb = Searcher.open(inc), Searcher.open(full)
    for q in QUERIES:
        for mode in ("keyword", "hybrid"):
            ra, rb = sa.search(q, mode=mode, limit=10), sb.search(q, mode=mode, limit=10)
            assert [h["paragraph_id"] for h in ra["hits"]] == [h["paragraph_id"] for h in rb["hits"]], (
                q,
                mode,
            )
            assert [h["snippet"] for h in ra["hits"]] == [h["snippet"] for h in rb["hits"]]
            assert [h["score"] for h in ra["hits"]] == pytest.approx(
                [h["score"] for h in rb["hits"]], abs=1e-5
            )
            assert ra["total"] == rb["total"] and ra["facets"] == rb["facets"]


def test_incremental_equals_full_rebuild_after_add_change_delete(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, DOCS)
    inc = _settings(corpus, tmp_path / "inc")
    first = build_index(inc)
    assert first.incremental == "" and first.processed == 5 and first.reused == 0

    unchanged = build_index(inc)  # nothing changed: everything is reused, no model is even needed
    assert (unchanged.reused, unchanged.processed) == (5, 0)
    assert unchanged.incremental == first.folder.name and "reused     5 documents" in unchanged.summary()

    docs = dict(DOCS)
    docs["b.txt"] = docs["b.txt"].replace("lower profits", "record profits")  # changed
    del docs["a.txt"]  # deleted: it named Okonkwo and Vantor first, so later documents must re-cluster
    docs["0-new.txt"] = (
        "Union leader profiled\n\nMarta Okonkwo grew up in Ipswich. Okonkwo joined Vantor "
        "Logistics at nineteen and later the Transport Workers Alliance."
    )  # added, sorts first
    docs["f.txt"] = "Ferry talks\n\nDana Whitfield met Okonkwo to discuss Galloway Ferries routes."  # added
    _write_corpus(corpus, docs)
    second = build_index(inc)
    assert second.incremental == unchanged.folder.name
    assert (second.reused, second.processed) == (3, 3)  # c, d, e reused; b, 0-new, f processed
    assert second.documents == 6

    # Links are re-derived rather than copied: the corpus pass joins names across documents (a lone
    # "Okonkwo" joins the full name another document gives), so an unchanged document's links may change.
    after = {r["id"]: r["links"] for r in read_paragraphs(second.folder)}
    okonkwo = [lk for links in after.values() for lk in links if lk["text"] == "Okonkwo"]
    assert okonkwo

    full = _settings(corpus, tmp_path / "full")
    report = build_index(full, incremental=False)
    assert report.incremental == "" and report.processed == 6
    _assert_same_index(inc, full)


def test_changed_registry_redetects_but_reuses_vectors(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, {k: DOCS[k] for k in ("a.txt", "b.txt")})
    registry = tmp_path / "entities.jsonl"
    registry.write_text((SEEDS / "entities.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings.load(
        env={}, corpus=str(corpus), index_dir=str(tmp_path / "idx"), entities_file=str(registry)
    )
    build_index(settings)
    with registry.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "marta-okonkwo", "name": "Marta Okonkwo", "type": "person"}) + "\n")
    logs: list[str] = []
    report = build_index(settings, log=logs.append)
    assert report.processed == 2  # NER reran for both (the gazetteer changed) ...
    assert any("encoded 0 of" in m for m in logs)  # ... but no paragraph was re-encoded
    folder = layout.current_build(settings.index_path)
    assert "marta-okonkwo" in read_entities(folder)
    full = Settings.load(
        env={}, corpus=str(corpus), index_dir=str(tmp_path / "full"), entities_file=str(registry)
    )
    build_index(full, incremental=False)
    _assert_same_index(settings, full)


def test_damaged_previous_build_falls_back_to_full(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, {"a.txt": DOCS["a.txt"]})
    settings = _settings(corpus, tmp_path / "idx")
    build_index(settings)
    mentions = layers.layer_files(layout.current_build(settings.index_path), layout.MENTIONS, ".jsonl")[0]
    data = bytearray(mentions.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, different bytes: only the checksum notices
    mentions.write_bytes(bytes(data))
    logs: list[str] = []
    report = build_index(settings, log=logs.append)
    assert report.incremental == "" and report.processed == 1
    assert any("does not match its checksum" in m for m in logs)


def test_cli_full_flag_forces_full_rebuild(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, {"d.txt": DOCS["d.txt"]})
    args = [
        "build",
        "--corpus",
        str(corpus),
        "--index-dir",
        str(tmp_path / "idx"),
        "--quiet",
        "--entities-file",
        str(SEEDS / "entities.jsonl"),
    ]
    runner = CliRunner()
    assert runner.invoke(cli, args).exit_code == 0
    res = runner.invoke(cli, args)
    assert res.exit_code == 0 and "reused     1 documents, processed 0" in res.output, res.output
    res = runner.invoke(cli, [*args, "--full"])
    assert res.exit_code == 0 and "full build (1 documents processed)" in res.output, res.output


def test_unchanged_documents_are_not_linked_or_language_detected_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An added document costs its own NER, resolution and language detection; the others are reused
    (the linking state of the build before), and the result still equals a full build's."""
    import index.readers.language as language
    from index.linking.resolve import Linker

    corpus = tmp_path / "corpus"
    _write_corpus(corpus, {k: DOCS[k] for k in ("a.txt", "b.txt", "c.txt")})
    inc = _settings(corpus, tmp_path / "inc")
    build_index(inc)
    assert (layout.current_build(inc.index_path) / layout.LINKING_STATE).is_file()
    detected: list[str] = []
    resolved: list[str] = []
    detect, resolve = language.detect_language, Linker.resolve_document
    monkeypatch.setattr(language, "detect_language", lambda text: detected.append(text) or detect(text))
    monkeypatch.setattr(Linker, "resolve_document",
                        lambda self, d, ms: resolved.append(d.id) or resolve(self, d, ms))
    _write_corpus(corpus, {k: DOCS[k] for k in ("a.txt", "b.txt", "c.txt", "d.txt")})
    report = build_index(inc)
    assert (report.reused, report.processed) == (3, 1)
    assert resolved == ["d.txt"] and len(detected) == 1 and "Galloway Ferries" in detected[0]
    monkeypatch.undo()
    _assert_same_as_a_full_build(inc, corpus, tmp_path / "full")


def test_a_new_resolver_reuses_detector_output_but_resolves_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.linking.resolve as resolve_module

    corpus = tmp_path / "corpus"
    _write_corpus(corpus, {k: DOCS[k] for k in ("a.txt", "b.txt")})
    settings = _settings(corpus, tmp_path / "idx")
    build_index(settings)
    resolved: list[str] = []
    resolve = resolve_module.Linker.resolve_document
    monkeypatch.setattr(resolve_module, "RESOLVER_VERSION", "resolve:test")
    monkeypatch.setattr(resolve_module.Linker, "resolve_document",
                        lambda self, d, ms: resolved.append(d.id) or resolve(self, d, ms))
    report = build_index(settings)
    assert report.processed == 0  # no NER ran ...
    assert sorted(resolved) == ["a.txt", "b.txt"]  # ... but both documents were resolved again


def _files(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file of a build: (inode, sha256)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, layout.sha256_file(p))
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_incremental_build_shares_unchanged_data_and_never_touches_the_previous_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding one document to twelve: the store, detector output and linking state of the build before are
    shared (same inodes) and only the new document's share is written; the previous build's files keep
    their bytes (also when a build fails half-way), both builds verify deep, and the result equals a full
    build's."""
    import index.build as build_module
    from index.linking.incremental import LinkingState

    corpus = tmp_path / "corpus"
    docs = {f"{i:02d}-{name}": text.replace("Monday", f"day {i}") for i in range(3)
            for name, text in DOCS.items()}
    del docs["02-e.txt"], docs["02-d.txt"], docs["02-c.txt"]
    _write_corpus(corpus, docs)
    inc = _settings(corpus, tmp_path / "inc")
    first = build_index(inc).folder
    before = _files(first)

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    _write_corpus(corpus, {**docs, "01-z.txt": DOCS["d.txt"].replace("three", "four")})
    with monkeypatch.context() as m:  # a build that fails after it shared the layers
        m.setattr(build_module, "_write_keyword", broken)  # after the store, mentions and state are written
        with pytest.raises(OSError, match="disk full"):
            build_index(inc)
    assert _files(first) == before and layout.current_build(inc.index_path) == first
    assert not list(inc.index_path.glob(".tmp-*"))

    hashed: list[Path] = []
    sha256 = layout.sha256_file
    monkeypatch.setattr(layout, "sha256_file", lambda path: hashed.append(Path(path)) or sha256(path))
    second = build_index(inc)
    monkeypatch.undo()
    assert (second.reused, second.processed) == (12, 1)
    new_files = {p.name for p in hashed if p.parent.name.startswith(".tmp-")}  # the manifest's checksums
    assert not [p for p in hashed if first in p.parents]  # the build it reuses, unchanged: not read again
    assert "store-000002.sqlite" in new_files and "store-000001.sqlite" not in new_files  # shared: reused
    after = _files(second.folder)
    assert _files(first) == before  # not one byte of the previous build changed
    for name in ("store-000001.sqlite", "mentions-000001.jsonl", "linking-000001.pkl"):
        assert after[name] == before[name]  # shared: the same inode
    assert {n for n in after if n not in before} >= {"store-000002.sqlite", "mentions-000002.jsonl",
                                                     "linking-000002.pkl"}
    m1, m2 = layout.verify(first, deep=True), layout.verify(second.folder, deep=True)
    assert m2.files["store-000001.sqlite"] == m1.files["store-000001.sqlite"]
    new_lines = (second.folder / "mentions-000002.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(new_lines) == 1  # only the new document's text
    with open(second.folder / "linking-000002.pkl", "rb") as fh:
        written = pickle.load(fh)  # noqa: S301 (own build)
    assert list(written) == ["01-z.txt"]  # the new document's entry only, not all 13

    _write_corpus(corpus, {**docs, "01-z.txt": DOCS["d.txt"].replace("three", "four"),
                           "00-y.txt": DOCS["e.txt"].replace("reopened", "closed")})
    third = build_index(inc)  # the first build is dropped (two are kept): the layers it made live on
    assert not first.exists() and (third.folder / "store-000001.sqlite").stat().st_nlink == 2
    layout.verify(third.folder, deep=True)
    full = _settings(corpus, tmp_path / "full")
    build_index(full, incremental=False)
    _assert_same_data(inc, full)  # (searches tie-break copies of one text apart by segment order)
    a = LinkingState.load(third.folder / layout.LINKING_STATE)
    b = LinkingState.load(layout.current_build(full.index_path) / layout.LINKING_STATE)
    assert a is not None and b is not None
    assert (a.fingerprints, a.results, a.quotes, a.languages) == (b.fingerprints, b.results, b.quotes,
                                                                  b.languages)


def test_documents_whose_linking_is_unchanged_keep_their_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              ) -> None:
    """A document whose record and linking are unchanged keeps the previous build's rows: no final links
    are derived for it and its rows are not written again; one whose metadata changed (not its text) gets
    its rows written again; the entity table and counts equal a full build's."""
    from index.linking.resolve import Linker

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [{"id": name[:-4], "title": text.split("\n", 1)[0], "text": text, "url": f"https://x.org/{name}"}
            for name, text in DOCS.items()]

    def write(rows: list[dict]) -> None:
        (corpus / "news.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    write(rows)
    inc = _settings(corpus, tmp_path / "inc")
    build_index(inc)
    linked: list[str] = []
    final_links = Linker._final_links
    monkeypatch.setattr(Linker, "_final_links",
                        lambda self, r, o: linked.append(r.doc_id) or final_links(self, r, o))
    rows[3] = dict(rows[3], url="https://x.org/moved")  # d: same text, another address
    write([*rows, {"id": "g", "title": "Ferry talks", "text": "Ferry talks\n\nDana Whitfield met Peter "
                   "Lindqvist in London.", "url": "https://x.org/g"}])
    report = build_index(inc)
    monkeypatch.undo()
    assert (report.reused, report.processed) == (5, 1)
    assert "d" in linked and "g" in linked and "c" not in linked  # c: nothing it links moved
    assert report.health["documents_checked"] == len(set(linked)) < report.documents
    assert "documents linked again" in report.summary()
    stored = {d["id"]: d for d in read_documents(report.folder)}
    assert stored["d"]["url"] == "https://x.org/moved"
    _assert_same_as_a_full_build(inc, corpus, tmp_path / "full")


def test_new_documents_are_detected_in_a_process_beside_the_state_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Language detection and NER of the texts the previous build never saw run in a forked process while
    the build loads the linking state: this process detects nothing itself, and the index equals a full
    build's."""
    import index.build as build
    import index.readers.language as language
    from index.linking.detect import Detector

    monkeypatch.setattr(build._DetectAhead, "MIN_TEXTS", 1)
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, {k: DOCS[k] for k in ("a.txt", "b.txt")})
    inc = _settings(corpus, tmp_path / "inc")
    build_index(inc)
    here: list[str] = []
    started: list[object] = []
    detect, detect_many, start = language.detect_language, Detector.detect_many, build._DetectAhead.start
    monkeypatch.setattr(language, "detect_language", lambda text: here.append(text) or detect(text))
    monkeypatch.setattr(Detector, "detect_many", lambda self, texts, **kw: (
        here.extend(texts) or detect_many(self, texts, **kw)))
    monkeypatch.setattr(build._DetectAhead, "start", classmethod(
        lambda cls, *a: started.append(got := start.__func__(cls, *a)) or got))
    _write_corpus(corpus, {k: DOCS[k] for k in ("a.txt", "b.txt", "c.txt", "d.txt")})
    report = build_index(inc)
    assert (report.reused, report.processed) == (2, 2)
    assert len(started) == 1 and started[0] is not None  # a child was forked ...
    assert here == []  # ... and it, not this process, detected the two new documents
    monkeypatch.undo()
    _assert_same_as_a_full_build(inc, corpus, tmp_path / "full")
