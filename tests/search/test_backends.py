"""One suite, every backend: the embedded files, and real Milvus (milvus-lite) loaded from the same build."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from index import layout
from index.encoder import load_encoder
from index.store import read_documents, read_paragraphs

LAVROV = "sergei-lavrov"
_MILVUS_MISSING = [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]


def _needs_milvus() -> None:
    if _MILVUS_MISSING:
        pytest.skip(f"milvus backend needs {', '.join(_MILVUS_MISSING)}: pip install 'personae[milvus]'")


def _paragraphs(folder: Path) -> dict[str, dict]:
    return {p["id"]: p for p in read_paragraphs(folder)}


@pytest.fixture(scope="module")
def build_folder(seed_index) -> Path:
    settings, _ = seed_index
    return layout.current_build(settings.index_path)


@pytest.fixture(scope="module")
def embedded(seed_index, build_folder):
    from search.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend.open(build_folder)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def milvus_uri(build_folder, tmp_path_factory) -> str:
    """A milvus-lite file holding the seed build, as `personae export-milvus` writes it."""
    _needs_milvus()
    from search.backends.milvus import write

    uri = str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    write(build_folder, uri, "personae")
    return uri


@pytest.fixture(scope="module")
def milvus(build_folder, milvus_uri):
    from search.backends.milvus import MilvusBackend

    backend = MilvusBackend.open(milvus_uri, "personae", expect_build=build_folder.name)
    yield backend
    backend.close()


@pytest.fixture(params=["embedded", "milvus"])
def backend(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def paragraphs(build_folder) -> dict[str, dict]:
    return _paragraphs(build_folder)


def _qvec(text: str) -> np.ndarray:
    return load_encoder("all-MiniLM-L6-v2").encode([text], batch_size=1)[0]


def test_keyword_finds_rare_earth_metals(backend, paragraphs) -> None:
    hits = backend.keyword("rare earth metals", 5)
    assert hits and "rare earth metals" in paragraphs[hits[0][0]]["text"]
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert backend.count("rare earth metals") >= len(hits)


def test_keyword_phrase_and_and(backend, paragraphs) -> None:
    phrase = backend.keyword('"security guarantees"', 50)
    assert phrase and all("security guarantees" in paragraphs[p]["text"].lower() for p, _ in phrase)
    both = backend.keyword("rare AND Ukraine", 50)  # "Ukraine" may be in the title only
    assert both and all("rare" in paragraphs[p]["text"].lower() for p, _ in both)
    assert backend.count("rare AND Ukraine") == len(both) < backend.count("rare OR Ukraine")


def test_milvus_query_text_reduction() -> None:
    """Milvus gets plain words; the Whoosh operators become client-side checks (no engine needed)."""
    from search.backends.milvus import parse_text

    q = parse_text('"rare earth" AND metals -gold NOT silver (peace)')
    assert q is not None and q.words == "rare earth metals peace"
    assert q.phrases == () and q.required == {"rare", "earth", "metal"} and q.excluded == {"gold", "silver"}
    assert parse_text('"security guarantees"').phrases == (("secur", "guarante"),)
    assert parse_text("the of AND") is None and parse_text("") is None


def test_vector_finds_a_paraphrase(backend, paragraphs) -> None:
    hits = backend.vector(_qvec("giving up land to Kyiv"), 3)
    assert len(hits) == 3 and any("erritorial concessions" in paragraphs[p]["text"] for p, _ in hits)
    assert backend.vector_count() == len(paragraphs)


def test_entity_filter(backend, paragraphs) -> None:
    for hits in (backend.keyword("war", 50, entities=[LAVROV]),
                 backend.vector(_qvec("war"), 50, entities=[LAVROV]),
                 backend.keyword(None, 50, entities=[LAVROV])):
        assert hits
        assert all(LAVROV in {x["entity_id"] for x in paragraphs[p]["links"]} for p, _ in hits)
    assert backend.count(None, entities=[LAVROV]) == len(backend.entity_paragraphs(LAVROV))


def test_said_filter(backend, paragraphs) -> None:
    hits = backend.keyword(None, 50, said=[LAVROV])
    texts = " ".join(paragraphs[p]["text"] for p, _ in hits)
    assert "rare earth metals" in texts and "Territorial concessions" in texts
    assert all(any(q["speaker"] == LAVROV for q in paragraphs[p]["quotes"]) for p, _ in hits)
    assert {p for p, _ in backend.vector(_qvec("minerals"), 50, said=[LAVROV])} == {p for p, _ in hits}


def test_entity_leg(backend, paragraphs) -> None:
    hits = backend.entity([LAVROV], 50)
    assert {p for p, _ in hits} == set(backend.entity_paragraphs(LAVROV))


def test_entity_paragraphs_agree_between_backends(embedded, milvus, paragraphs) -> None:
    ids = {x["entity_id"] for p in paragraphs.values() for x in p["links"]}
    speakers = {q["speaker"] for p in paragraphs.values() for q in p["quotes"] if q.get("speaker")}
    assert ids and speakers
    for eid in sorted(ids):
        assert sorted(embedded.entity_paragraphs(eid)) == sorted(milvus.entity_paragraphs(eid)), eid
    for eid in sorted(speakers):
        said = embedded.entity_paragraphs(eid, "said")
        assert sorted(said) == sorted(milvus.entity_paragraphs(eid, "said")), eid


def test_legs_agree_between_backends(embedded, milvus) -> None:
    """Same analyser family and BM25 parameters: the top keyword hit and the vector ranking agree."""
    for q in ("rare earth metals", "peace talks in Riyadh", "Ukraine"):
        assert embedded.keyword(q, 1)[0][0] == milvus.keyword(q, 1)[0][0], q
        assert embedded.count(q) == milvus.count(q), q
    v = _qvec("peace negotiations")
    e, m = embedded.vector(v, 10), milvus.vector(v, 10)
    assert [p for p, _ in e] == [p for p, _ in m]
    assert np.allclose([s for _, s in e], [s for _, s in m], atol=1e-5)


def test_empty_results(backend) -> None:
    assert backend.keyword("zxqvbnm", 10) == []
    assert backend.keyword("the of and", 10) == []  # only stop words: no query
    assert backend.keyword(None, 10) == []
    assert backend.count("zxqvbnm") == 0 and backend.count(None) == 0
    assert backend.keyword("war", 10, entities=["no-such-entity"]) == []
    assert backend.vector(_qvec("war"), 10, entities=["no-such-entity"]) == []
    assert backend.entity(["no-such-entity"], 10) == [] and backend.entity([], 10) == []
    assert backend.entity_paragraphs("no-such-entity") == []


def test_k_larger_than_corpus(backend, paragraphs) -> None:
    n = len(paragraphs)
    assert len(backend.vector(_qvec("war"), 10**9)) == n
    assert len(backend.keyword(None, 10**9, entities=[LAVROV])) == len(backend.entity_paragraphs(LAVROV))
    assert 0 < len(backend.keyword("Ukraine", n + 100)) <= n


def test_searcher_on_milvus_gives_the_same_answers(seed_index, seed_searcher, milvus_uri) -> None:
    """The whole query path (legs, fusion, exact-phrase guard, totals, entity page) over Milvus."""
    from search.searcher import Searcher

    settings, _ = seed_index
    on_milvus = Searcher.open(settings.replace(backend="milvus", milvus_uri=milvus_uri))
    cases = [("Lavrov", {}), ("rare earth metals", {"mode": "keyword"}),
             ("giving up land", {"mode": "vector"}),
             ("war", {"entities": [LAVROV]}), ('"security guarantees"', {})]
    for q, kw in cases:
        a, b = seed_searcher.search(q, limit=5, **kw), on_milvus.search(q, limit=5, **kw)
        assert set(a) == set(b) and a["legs"] == b["legs"] and a["linked"] == b["linked"], q
        assert a["hits"][0]["paragraph_id"] == b["hits"][0]["paragraph_id"], q
        assert a["total"] == b["total"], q
    assert on_milvus.entity(LAVROV)["mention_count"] == seed_searcher.entity(LAVROV)["mention_count"]


def test_milvus_refuses_a_collection_of_another_build(build_folder, milvus_uri) -> None:
    from index.errors import IndexFormatMismatch
    from search.backends.milvus import MilvusBackend

    with pytest.raises(IndexFormatMismatch, match="export-milvus"):
        MilvusBackend.open(milvus_uri, "personae", expect_build="build-other")


# ------------------------------------------------------------------ re-exports without downtime
def test_each_build_gets_its_own_collection_and_the_previous_one_stays(build_folder, tmp_path) -> None:
    """An export never touches the collection a server reads; builds beyond ``keep`` are dropped, except
    the live one."""
    _needs_milvus()
    from index.errors import IndexFormatMismatch, PersonaeError
    from search.backends.milvus import (
        MilvusBackend,
        build_collection,
        connect,
        exported,
        rows_from_build,
        write,
    )

    uri = str(tmp_path / "milvus.db")
    rows, vectors, _ = rows_from_build(build_folder)
    later, latest = "build-29991231T000000000000Z", "build-29991231T000000000001Z"
    client = connect(uri)
    try:
        first = write(build_folder, uri, "personae", client=client)
        assert first["collection"] == build_collection("personae", build_folder.name)
        assert first["collection"].startswith("personae__build_") and first["dropped"] == []
        serving = MilvusBackend.open(uri, "personae", expect_build=build_folder.name, client=client)
        before = serving.keyword("rare earth metals", 5)

        second = write((rows[:5], vectors[:5]), uri, "personae", build=later, client=client)
        assert second["dropped"] == []  # the previous build stays for servers that have not switched
        assert serving.keyword("rare earth metals", 5) == before  # untouched by the new export
        assert len(serving.vector(_qvec("war"), 10**6)) == len(rows)
        live = MilvusBackend.open(uri, "personae", client=client)  # no build asked: the live one
        assert live.collection == first["collection"]  # a bare (rows, vectors) load does not go live
        newest = MilvusBackend.open(uri, "personae", expect_build=later, client=client)
        assert len(newest.vector(_qvec("war"), 10**6)) == 5

        third = write((rows[:3], vectors[:3]), uri, "personae", build=latest, client=client)
        assert third["dropped"] == [second["collection"]]  # beyond keep=2, but never the live build
        assert exported(client, "personae") == [first["collection"], third["collection"]]
        with pytest.raises(IndexFormatMismatch, match="no collection for build .*export-milvus"):
            MilvusBackend.open(uri, "personae", expect_build=later, client=client)
        with pytest.raises(PersonaeError, match="keep=0"):
            write((rows[:1], vectors[:1]), uri, "personae", build="build-x", keep=0, client=client)
    finally:
        client.close()


def test_server_keeps_the_old_build_until_the_export_catches_up(tmp_path) -> None:
    """build → export → serve; rebuild: the searcher stays on the old build and collection (it reads the
    engine's live build, which only an export moves); export: it switches. No query fails on the way
    (the CLI drives build and export, as an operator would)."""
    _needs_milvus()
    from click.testing import CliRunner

    from personae.cli import cli
    from search.searcher import Searcher
    from tests.conftest import SEEDS

    runner = CliRunner()
    idx, uri = str(tmp_path / "idx"), str(tmp_path / "milvus.db")
    env = {"PERSONAE_ENTITIES_FILE": str(SEEDS / "entities.jsonl")}

    def cli_ok(*args: str) -> str:
        res = runner.invoke(cli, list(args), env=env)
        assert res.exit_code == 0, res.output
        return res.output

    cli_ok("build", "--corpus", str(SEEDS), "--index-dir", idx, "--quiet")
    out = cli_ok("export-milvus", "--index-dir", idx, "--uri", uri)
    assert "collection 'personae__build_" in out
    searcher = Searcher.open(_milvus_settings(idx, uri))
    old = searcher.build_folder
    first = searcher.search("rare earth metals", limit=3)
    cli_ok("build", "--corpus", str(SEEDS), "--index-dir", idx, "--quiet")  # a new build folder, not exported
    assert not searcher.refresh()  # the server follows Milvus' live build, not the local CURRENT
    assert searcher.build_folder == old
    assert searcher.search("rare earth metals", limit=3)["hits"] == first["hits"]  # old build, old collection
    out = cli_ok("export-milvus", "--index-dir", idx, "--uri", uri)
    assert "dropped" not in out  # the old build's collection stays until the next export
    assert searcher.refresh() and searcher.build_folder != old
    assert searcher.search("rare earth metals", limit=3)["hits"][0]["paragraph_id"] == first["hits"][0][
        "paragraph_id"]
    out = cli_ok("export-milvus", "--index-dir", idx, "--uri", uri, "--keep", "1")
    assert f"dropped older collection 'personae__{old.name.replace('-', '_')}'" in out


def _milvus_settings(idx: str, uri: str):
    from index.settings import Settings
    from tests.conftest import SEEDS

    return Settings.load(env={}, corpus=str(SEEDS), index_dir=idx, backend="milvus", milvus_uri=uri,
                         entities_file=str(SEEDS / "entities.jsonl"))


def test_milvus_lite_file_held_by_another_process_is_a_clear_error(seed_index, tmp_path) -> None:
    """milvus-lite opens a file in one process only: exporting beside a running server says so."""
    _needs_milvus()
    import subprocess
    import sys

    from click.testing import CliRunner

    from personae.cli import cli

    settings, _ = seed_index
    uri = str(tmp_path / "held.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
         f"MilvusClient({uri!r}); print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        res = CliRunner().invoke(cli, ["export-milvus", "--index-dir", settings.index_dir, "--uri", uri])
        assert res.exit_code == 1, res.output
        assert "one process per file" in res.output and "Traceback" not in res.output
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------------------- restrictions (exclusion, dates)
# Which checks hold on which backend; docs/scale-out.md explains each difference.
HOLDS = {
    "exclusion": {"embedded", "milvus"},  # Milvus: client-side checks on an over-fetched list
    "date range": {"embedded", "milvus"},  # Milvus: a filter expression on the date field
    "whole-document exclusion": {"embedded"},  # Milvus excludes paragraph by paragraph
    "every match listed": {"embedded"},  # Milvus stops at 16,384 hits: grouped pages cover the window
}


def _holds(request, check: str) -> None:  # type: ignore[no-untyped-def]
    name = request.node.callspec.params["backend"]
    if name not in HOLDS[check]:
        pytest.skip(f"{check!r} does not hold on {name} (docs/scale-out.md)")


def test_excluded_word_is_out_of_every_leg(request, backend, paragraphs) -> None:  # type: ignore[no-untyped-def]
    from index.keyword import Restrict

    _holds(request, "exclusion")
    restrict = Restrict(exclude='Riyadh "security guarantees"')
    legs = {"keyword": backend.keyword("Lavrov talks", 50, restrict=restrict),
            "vector": backend.vector(_qvec("peace talks in Saudi Arabia"), 50, restrict=restrict),
            "entity": backend.entity([LAVROV], 50, restrict=restrict)}
    for leg, hits in legs.items():
        texts = [paragraphs[p]["text"].lower() for p, _ in hits]
        assert texts, leg
        assert not [t for t in texts if "riyadh" in t or "security guarantees" in t], leg
    unrestricted = {p for p, _ in backend.keyword("Lavrov talks", 50)}
    assert any("riyadh" in paragraphs[p]["text"].lower() for p in unrestricted)
    assert backend.count("Lavrov talks", restrict=restrict) == len(legs["keyword"])


def test_excluded_entity_and_speaker(request, backend, paragraphs) -> None:  # type: ignore[no-untyped-def]
    from index.keyword import Restrict

    _holds(request, "exclusion")
    hits = backend.keyword("Russia", 50, restrict=Restrict(exclude_entities=(LAVROV,)))
    assert hits and all(LAVROV not in {x["entity_id"] for x in paragraphs[p]["links"]} for p, _ in hits)
    hits = backend.keyword("Russia", 50, restrict=Restrict(exclude_said=(LAVROV,)))
    assert hits and all(all(q["speaker"] != LAVROV for q in paragraphs[p]["quotes"]) for p, _ in hits)


def test_date_range_leaves_out_undated_paragraphs(request, backend, build_folder) -> None:  # type: ignore[no-untyped-def]
    from index.keyword import Restrict

    _holds(request, "date range")
    doc = read_documents(build_folder)[0]
    assert doc["date"] is None, "the seed article carries no date"  # dated ranges: tests/web/test_newsroom.py
    assert backend.keyword("Lavrov", 50)
    assert not backend.keyword("Lavrov", 50, restrict=Restrict(date_from="1900-01-01"))
    assert not backend.vector(_qvec("Lavrov"), 50, restrict=Restrict(date_to="2100-12-31"))
    assert not backend.entity([LAVROV], 50, restrict=Restrict(date_from="1900-01-01"))


def test_whole_document_exclusion(request, backend) -> None:  # type: ignore[no-untyped-def]
    from index.keyword import Restrict

    _holds(request, "whole-document exclusion")
    # The seed corpus is one article that mentions Riyadh: excluding it by document leaves nothing.
    assert not backend.keyword("Lavrov", 50, restrict=Restrict(exclude="Riyadh", whole_documents=True))


def test_every_match_is_listed_for_paging(request, backend) -> None:  # type: ignore[no-untyped-def]
    _holds(request, "every match listed")
    m = backend.matches(backend.parse("Lavrov Russia"))
    assert m is not None and len(m.docnums) == backend.count("Lavrov Russia") > 5
    top = [p for p, _ in backend.keyword("Lavrov Russia", 5)]
    assert backend.paragraph_ids(m.docnums[:5].tolist()) == top


def test_warm_prepares_the_filtered_vector_search_and_reads_the_files_ahead(
    build_folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server warms its backend before traffic: the docnum → vector row table the first filtered vector
    search needs is built then, and the index files are handed to the kernel to read ahead."""
    from index.keyword import Restrict
    from search.backends.embedded import EmbeddedBackend

    advised: list[Path] = []
    read_ahead = layout.read_ahead
    monkeypatch.setattr(layout, "read_ahead", lambda paths: advised.extend(paths) or read_ahead(paths))
    backend = EmbeddedBackend.open(build_folder)
    try:
        assert backend._rows is None
        backend.warm()
        docnums = len(backend.keyword_index.allowed(Restrict()))
        assert backend._rows is not None and len(backend._rows) == docnums
        named = {p.name for p in advised if p.is_file()}
        assert layout.VECTORS in named and any(n.endswith(".npy") for n in named)
        hits = backend.vector(_qvec("Lavrov"), 3, entities=[LAVROV])
        assert hits and backend._rows is not None
    finally:
        backend.close()
