"""Entity pages and the entity API for entities imported from a knowledge base: description, Wikidata link,
dated offices (titles are ``{title, start, end}`` in the build's entity table)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from index.linking.kb import import_file
from index.linking.registry import Registry
from index.records import Entity, Title
from index.settings import Settings
from tests.index.linking.test_kb_import import CORPUS, FTM, WIKIDATA, write_corpus
from tests.web.test_api import validate
from tests.web.test_pages import get
from web import create_app

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    from index.build import build_index

    tmp = tmp_path_factory.mktemp("kb-web")
    reg = tmp / "reg.jsonl"
    for f in (WIKIDATA, FTM):
        import_file(f, Registry.load(reg))
    Registry.load(reg).add(Entity(id="hostile-org", name="Quux Holdings", type="org", description=HOSTILE,
                                  wikidata="Q1", titles=(Title(f"Chair {HOSTILE}", "2001", None),)))
    docs = [*CORPUS, {"id": "quux", "date": "2010-01-01", "title": "Quux", "text": "Quux\n\nThe shares of "
                      "Quux Holdings grew on Monday, the company said."}]
    settings = Settings.load(env={}, corpus=str(write_corpus(tmp / "corpus.jsonl", docs)),
                             index_dir=str(tmp / "idx"), model="hash", entities_file=str(reg))
    build_index(settings)
    with create_app(settings).test_client() as c:
        yield c


def test_entity_page_shows_description_wikidata_link_and_dated_offices(client: FlaskClient) -> None:
    html, page = get(client, "/entities/Q990000021")
    assert '<h1 id="ent-name">Gloria Teasdale</h1>' in html
    assert "Freedonian diplomat (test fixture)" in html
    assert page.link(lambda a: a["href"] == "https://www.wikidata.org/wiki/Q990000021")
    offices = html[html.index("<h3>Offices</h3>"):]
    assert ('Freedonian Foreign Minister <span class="muted small"><time datetime="1998-05">1998-05</time> – '
            '<time datetime="2005-02-14">2005-02-14</time></span>') in offices
    assert "{&#39;title&#39;" not in html and "{'title'" not in html  # no dict printed as text

    html, page = get(client, "/entities/sy-per-brandauer")  # FtM: open-ended office, a Wikidata id
    assert "since <time datetime=\"2013-07-01\">2013-07-01</time>" in html
    assert page.link(lambda a: a["href"] == "https://www.wikidata.org/wiki/Q990000100")
    html, page = get(client, "/entities/sy-per-kowalczyk")  # no Wikidata id: no link
    assert not any("wikidata.org" in a["href"] for a in page.links)


def test_entity_page_escapes_imported_text(client: FlaskClient) -> None:
    html, _ = get(client, "/entities/hostile-org")
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_entity_api_has_description_wikidata_and_dated_titles(client: FlaskClient) -> None:
    resp = client.get("/api/entities/Q990000022")
    assert resp.status_code == 200
    body = resp.get_json()
    validate(body, "EntityDetail")
    assert body["wikidata"] == "Q990000022" and body["description"] == "Freedonian politician (test fixture)"
    assert {"title": "Freedonian Foreign Minister", "start": "2005-02-15", "end": None} in body["titles"]
    listed = client.get("/api/entities?q=Teasdale").get_json()
    validate(listed, "EntityList")
    assert json.dumps(listed).count("1998-05") == 3  # the position's label and both aliases, dated
