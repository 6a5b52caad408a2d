"""A server with PERSONAE_BACKEND=milvus, the engine's address and no index folder at all: search, document
and entity pages and /api/link come from Milvus (milvus-lite, exported from the web fixture's real build),
answer as the embedded server does, and follow a re-export while running (two apps in this process, and
two `personae serve` processes on the socket of this process's milvus-lite server)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from index import layout
from index.settings import Settings
from tests.web.conftest import SEED_DOC, SEEDS, SPORT_DOC, XSS_DOC, web_settings
from web import create_app

LAVROV = "sergei-lavrov"
_MISSING = [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(_MISSING),
                                reason=f"needs {', '.join(_MISSING)}: pip install 'personae[milvus]'")


def _milvus_only(uri: str, index_dir: Path) -> Settings:
    """What an operator sets on a second machine: the backend, the engine's address, nothing else."""
    return Settings.load(env={"PERSONAE_BACKEND": "milvus", "PERSONAE_MILVUS_URI": uri,
                              "PERSONAE_INDEX_DIR": str(index_dir)})


def _export(folder: Path, uri: str) -> dict[str, Any]:
    from search.backends.milvus import write

    return write(folder, uri)


@pytest.fixture(scope="module")
def milvus_app(web_index: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, Path]:
    tmp = tmp_path_factory.mktemp("milvus-web")
    uri = str(tmp / "milvus.db")
    _export(layout.current_build(web_index.index_path), uri)
    missing = tmp / "no-index-here"
    return create_app(_milvus_only(uri, missing)), missing


def first(result: dict[str, Any]) -> dict[str, Any]:
    return (result["hits"] or [h for g in result["groups"] for h in g["hits"]])[0]


def _same(a: FlaskClient, b: FlaskClient, path: str, **post: Any) -> dict[str, Any]:
    ra = a.post(path, **post) if post else a.get(path)
    rb = b.post(path, **post) if post else b.get(path)
    assert ra.status_code == rb.status_code == 200, (path, rb.get_data(as_text=True)[:300])
    ja, jb = ra.get_json(), rb.get_json()
    assert ja == jb, path
    return jb


def test_a_server_with_no_index_folder_answers_from_milvus(milvus_app, client: FlaskClient) -> None:
    """Records (documents, entities, the entity list, linking) equal the embedded server's answers exactly;
    searches agree on legs, links, totals and the best hit (BM25 in Milvus is not Whoosh's scorer)."""
    app, missing = milvus_app
    mc = app.test_client()
    for path in (f"/api/documents/{SEED_DOC}", f"/api/documents/{XSS_DOC}", f"/api/entities/{LAVROV}",
                 "/api/entities", "/api/entities?type=person&limit=3&offset=1", "/api/entities?q=lav"):
        _same(client, mc, path)
    links = _same(client, mc, "/api/link", json={"text": "Lavrov met Rubio in Riyadh."})
    assert {LAVROV, "marco-rubio"} <= {x["entity_id"] for x in links["links"]}
    for q in ("q=Lavrov", "q=Lavrov&group=true", "q=rare+earth+metals&mode=keyword",
              f"q=war&entity={LAVROV}", "q=giving+up+land&mode=vector", 'q="security+guarantees"'):
        a, b = client.get(f"/api/search?{q}").get_json(), mc.get(f"/api/search?{q}").get_json()
        assert a["legs"] == b["legs"] and a["linked"] == b["linked"] and a["total"] == b["total"], q
        assert first(a)["paragraph_id"] == first(b)["paragraph_id"], q
        same_text = {k: v for k, v in first(b).items() if k not in ("score", "explain")}
        assert {k: first(a)[k] for k in same_text} == same_text, q  # the record is the build's
    _same(client, mc, "/api/health")  # the same build, manifest counts and models
    for page in ("/", "/?q=Lavrov", f"/documents/{SEED_DOC}", f"/entities/{LAVROV}", "/entities?q=lav"):
        resp = mc.get(page)
        assert resp.status_code == 200, page
    assert "Lavrov" in mc.get(f"/entities/{LAVROV}").get_data(as_text=True)
    assert mc.get("/api/documents/no/such").status_code == 404
    assert not missing.exists()  # nothing was read or written there


def test_serve_cli_with_only_the_engine_address(milvus_app) -> None:
    """`personae serve` (one in-process request) started with the environment alone."""
    from click.testing import CliRunner

    from personae.cli import cli

    app, missing = milvus_app
    settings = app.extensions["personae"].settings
    env = {"PERSONAE_BACKEND": "milvus", "PERSONAE_MILVUS_URI": settings.milvus_uri,
           "PERSONAE_INDEX_DIR": str(missing)}
    res = CliRunner().invoke(cli, ["serve", "--get", "/api/search?q=rare+earth+metals"], env=env)
    assert res.exit_code == 0, res.output
    assert "rare earth" in res.output.lower()


@pytest.fixture(scope="module")
def changed_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build of another corpus: the seed article and a new one (the web fixture's extra documents gone)."""
    from index.build import build_index

    tmp = tmp_path_factory.mktemp("changed")
    corpus = tmp / "corpus"
    corpus.mkdir()
    for doc in SEEDS.glob("*.txt"):
        shutil.copy(doc, corpus / doc.name)
    (corpus / "cup.txt").write_text(
        "Riyadh cup final goes to extra time\n\nPublished: 2025-02-22\n\n"
        "Ukraine and Poland needed extra time in the Riyadh cup final on Saturday.\n", encoding="utf-8")
    settings = web_settings(tmp / "idx", corpus)
    build_index(settings)
    return layout.current_build(settings.index_path)


def _answers_from(c: Any, build: Path) -> None:
    """The server ``c`` (a Flask test client or an HTTP getter) serves ``build`` (the changed corpus)."""
    assert c.get("/api/health").get_json()["index"]["build"] == build.name
    hits = c.get("/api/search?q=extra+time+cup+final&mode=keyword").get_json()["hits"]
    assert hits and hits[0]["doc_id"] == "cup.txt"
    assert c.get(f"/api/documents/{XSS_DOC}").status_code == 404  # not in the new build
    assert c.get(f"/api/documents/{SPORT_DOC}").status_code == 404
    assert c.get("/api/documents/cup.txt").get_json()["title"].startswith("Riyadh cup final")


def test_servers_follow_a_re_export(web_index: Settings, changed_build: Path, tmp_path: Path) -> None:
    """Two servers on one Milvus (two apps, each with its own client) answer from build A; the changed
    corpus's build is exported while they run: both switch to it on their next refresh."""
    uri = str(tmp_path / "milvus.db")
    first = layout.current_build(web_index.index_path)
    _export(first, uri)
    apps = [create_app(_milvus_only(uri, tmp_path / f"none-{i}")) for i in range(2)]
    for app in apps:
        app.extensions["personae"].interval = 0.0  # check the live pointer on every request
    clients = [app.test_client() for app in apps]
    for c in clients:
        assert c.get("/api/health").get_json()["index"]["build"] == first.name
        assert c.get(f"/api/documents/{XSS_DOC}").status_code == 200
    _export(changed_build, uri)  # while both servers run
    for c in clients:
        _answers_from(c, changed_build)


class _Http:
    """GET over real HTTP with the test client's shape (``status_code``, ``get_json``)."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> Any:
        import json
        import urllib.error
        import urllib.request

        class Resp:
            def __init__(self, status: int, body: bytes):
                self.status_code, self.body = status, body

            def get_json(self) -> Any:
                return json.loads(self.body)

        try:
            with urllib.request.urlopen(self.base + path, timeout=30) as r:
                return Resp(r.status, r.read())
        except urllib.error.HTTPError as err:
            return Resp(err.code, err.read())


def test_two_server_processes_follow_a_re_export(web_index: Settings, changed_build: Path, tmp_path: Path
                                                 ) -> None:
    """Two `personae serve` processes, each given only the engine's address (the gRPC socket of the
    milvus-lite server this test process runs: a Milvus server as far as they can tell) and an index
    folder that does not exist, answer from build A; this process exports the changed corpus's build;
    both follow within their refresh interval."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from milvus_lite.server_manager import server_manager_instance

    from search.backends.milvus import connect, write
    from tests.conftest import ROOT

    path = str(tmp_path / "milvus.db")
    client = connect(path)  # starts the milvus-lite server in this process
    procs: list[subprocess.Popen] = []
    try:
        first = layout.current_build(web_index.index_path)
        write(first, path, client=client)
        address = server_manager_instance.start_and_get_uri(path)  # its socket: unix:/tmp/…sock
        assert address and address.startswith("unix:")
        servers = []
        for i in range(2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONAE_")}
            env.update(PERSONAE_BACKEND="milvus", PERSONAE_MILVUS_URI=address,
                       PERSONAE_INDEX_DIR=str(tmp_path / f"none-{i}"))
            cmd = [sys.executable, "-m", "personae", "serve", "--port", str(port)]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE))
            servers.append(_Http(port))
        deadline = time.time() + 240  # each loads its models and answers one query before it listens
        for proc, server in zip(procs, servers, strict=True):
            while True:
                try:
                    build = server.get("/api/health").get_json()["index"]["build"]
                    break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                    assert time.time() < deadline, "server did not come up"
                    time.sleep(0.5)
            assert build == first.name
            assert server.get(f"/api/documents/{XSS_DOC}").status_code == 200
        write(changed_build, path, client=client)  # while both serve
        for server in servers:
            deadline = time.time() + 30
            while server.get("/api/health").get_json()["index"]["build"] != changed_build.name:
                assert time.time() < deadline, "server did not follow the re-export"
                time.sleep(0.3)
            _answers_from(server, changed_build)
        for c in (tmp_path / "none-0", tmp_path / "none-1"):
            assert not c.exists()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        client.close()


def test_nothing_exported_yet_is_503_then_picked_up(web_index: Settings, tmp_path: Path) -> None:
    """A server started before the first export answers 503 with what to run, then serves once it exists."""
    uri = str(tmp_path / "milvus.db")
    app = create_app(_milvus_only(uri, tmp_path / "none"))
    app.extensions["personae"].interval = 0.0
    c = app.test_client()
    resp = c.get("/api/search?q=Lavrov")
    assert resp.status_code == 503 and "export-milvus" in resp.get_json()["error"]
    _export(layout.current_build(web_index.index_path), uri)
    resp = c.get("/api/search?q=Lavrov")
    assert resp.status_code == 200 and resp.get_json()["hits"]
