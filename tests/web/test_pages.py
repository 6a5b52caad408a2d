"""HTML pages over a real index, read the way a browser without JavaScript would: parse, follow links."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import SEED_DOC, SPORT_DOC, XSS_DOC


class Page(HTMLParser):
    """Collects links, forms, ids and the text of elements with a given class, from real HTML."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str]] = []
        self.forms: list[dict[str, object]] = []
        self.ids: list[str] = []
        self.labels_for: set[str] = set()
        self._a: dict[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and "href" in a:
            self._a = {**a, "text": ""}
            self.links.append(self._a)
        elif tag == "form":
            self.forms.append({**a, "fields": []})
        elif tag in ("input", "select") and self.forms:
            self.forms[-1]["fields"].append(a)  # type: ignore[union-attr]
        elif tag == "label" and "for" in a:
            self.labels_for.add(a["for"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._a = None

    def handle_data(self, data: str) -> None:
        if self._a is not None:
            self._a["text"] += data

    def link(self, pred) -> dict[str, str]:  # type: ignore[no-untyped-def]
        found = [x for x in self.links if pred(x)]
        assert found, "no matching link"
        return found[0]


def get(client: FlaskClient, url: str, status: int = 200) -> tuple[str, Page]:
    resp = client.get(url)
    html = resp.get_data(as_text=True)
    assert resp.status_code == status, html[:500]
    assert resp.mimetype == "text/html"
    return html, Page(html)


def test_home_has_an_accessible_get_search_form(client: FlaskClient) -> None:
    html, page = get(client, "/")
    form = next(f for f in page.forms if f.get("role") == "search")
    assert form["method"] == "get" and form["action"] == "/"
    fields = {f["name"]: f for f in form["fields"]}  # type: ignore[union-attr]
    assert {"q", "mode"} <= set(fields)
    assert fields["q"]["id"] in page.labels_for and fields["mode"]["id"] in page.labels_for
    assert fields["q"]["maxlength"] == "1000"
    assert '<main id="main"' in html and 'lang="en"' in html and 'name="viewport"' in html
    assert page.link(lambda a: a["href"] == "#main")  # skip link
    assert page.link(lambda a: a["href"] == "/entities/sergei-lavrov")  # most-mentioned list


def test_no_js_form_submission_shows_highlighted_snippets_and_facets(client: FlaskClient) -> None:
    _, home = get(client, "/")
    form = next(f for f in home.forms if f.get("role") == "search")
    values = {f["name"]: f.get("value", "") for f in form["fields"]}  # type: ignore[union-attr]
    values.update(q="rare earth metals", mode="hybrid")
    html, page = get(client, f"{form['action']}?{urlencode(values)}")
    assert "<mark>rare</mark>" in html and "<mark>metals</mark>" in html
    assert '<a class="ent ent-person" href="/entities/sergei-lavrov" data-entity="sergei-lavrov">' in html
    assert 'aria-labelledby="facets-title"' in html and ">People<" in html
    facet = page.link(lambda a: "facet-link" in a.get("class", "") and a.get("data-entity") == "ukraine")
    assert parse_qs(urlsplit(facet["href"]).query) == {"q": ["rare earth metals"], "entity": ["ukraine"]}
    titles = [a["text"] for a in page.links if a["href"].startswith("/documents/")]
    assert any("Russian Foreign Minister" in t for t in titles)
    assert "<details class=\"why\">" in html and "Keyword (BM25)" in html


def test_facet_link_filters_and_the_filter_can_be_removed(client: FlaskClient) -> None:
    _, page = get(client, "/?q=talks")
    facet = page.link(lambda a: "facet-link" in a.get("class", "") and a.get("data-entity") == "ukraine")
    html, filtered = get(client, facet["href"])
    assert "Remove filter Ukraine" in html
    result = client.get("/api/search?q=talks&entity=ukraine&group=true").get_json()
    shown = {a["href"].split("?")[0] for a in filtered.links
             if a["href"].startswith("/documents/") and "#" not in a["href"]}
    expected = {f"/documents/{g['doc_id']}" for g in result["groups"]}
    assert expected and expected == shown
    on = filtered.link(lambda a: a.get("aria-pressed") == "true")
    assert "entity=ukraine" not in on["href"]
    remove = filtered.link(lambda a: a.get("aria-label") == "Remove filter Ukraine")
    assert parse_qs(urlsplit(remove["href"]).query) == {"q": ["talks"]}


def test_linked_query_entities_are_shown(client: FlaskClient) -> None:
    html, page = get(client, "/?q=Lavrov")
    assert re.search(r'<span class="surface">Lavrov</span>\s*<span aria-hidden="true">→</span>', html)
    assert page.link(lambda a: a["href"] == "/entities/sergei-lavrov" and a["text"] == "Sergei Lavrov")


def test_modes_and_paging_parameters(client: FlaskClient) -> None:
    html, _ = get(client, "/?q=Riyadh&mode=keyword")
    assert 'value="keyword" selected' in html and "Keyword search" in html
    html, _ = get(client, "/?q=Riyadh&page=50")
    assert "No results" in html  # past the last page: an empty page, not an error
    html, _ = get(client, "/?q=Riyadh&page=0", status=400)
    assert "page must be an integer" in html


def test_no_result_empty_and_error_states(client: FlaskClient) -> None:
    html, _ = get(client, "/?q=qwxyzzy&mode=keyword")
    assert "No results for “qwxyzzy”" in html and "Try hybrid search" in html
    html, _ = get(client, "/?q=%20%20")
    assert "hero-title" in html  # blank query: the start page, not an error
    html, _ = get(client, "/?q=x&mode=bogus", status=400)
    assert "mode must be one of hybrid, keyword, vector" in html and 'role="alert"' in html
    html, _ = get(client, "/?q=" + "a" * 1001, status=400)
    assert "the limit is 1000" in html
    html, _ = get(client, "/no/such/page", status=404)
    assert "Not found" in html
    html, _ = get(client, "/?entity=no-such-entity")
    assert "Unknown entity id" in html and "no-such-entity" in html


def test_entity_page(client: FlaskClient) -> None:
    html, page = get(client, "/entities/sergei-lavrov")
    assert "<h1 id=\"ent-name\">Sergei Lavrov</h1>" in html
    assert "Foreign minister of Russia" in html  # description
    assert '<li class="tag">Lavrov</li>' in html  # aliases
    assert "We will not trade rare earth metals for peace" in html  # a quote by him
    assert 'title="cue verb · how the speaker was found">said · explicit</span>' in html
    assert page.link(lambda a: a["href"] == f"/documents/{XSS_DOC}#p-1")  # mention in context, by anchor
    co = page.link(lambda a: a["href"] == "/entities/ukraine")
    assert "Ukraine" in co["text"]
    assert page.link(lambda a: a["href"] == "/?entity=sergei-lavrov")
    mentions = html.index('id="mentions-title"')
    section = html[mentions:html.index('id="quotes-title"')]
    dated = re.findall(r'<time datetime="([^"]+)"', section)
    assert dated == sorted(dated)
    get(client, "/entities/no-such-entity", status=404)


def test_document_page_has_paragraph_anchors_and_entity_marks(client: FlaskClient) -> None:
    doc = client.get(f"/api/documents/{SEED_DOC}").get_json()
    html, page = get(client, f"/documents/{SEED_DOC}?q=rare+earth")
    anchors = [i for i in page.ids if i.startswith("p-")]
    assert anchors == [f"p-{p['n']}" for p in doc["paragraphs"]]
    assert "<mark>rare</mark>" in html
    assert 'class="ent ent-person" href="/entities/sergei-lavrov"' in html
    assert page.link(lambda a: a["href"] == "/entities/marco-rubio")  # entity side column
    html, _ = get(client, f"/documents/{SPORT_DOC}")
    assert "Ukraine reach the final in Riyadh" in html
    get(client, "/documents/../../etc/passwd", status=404)
    get(client, "/documents/no-such.txt", status=404)


@pytest.mark.parametrize("url", [
    "/?q=rare+earth+metals", "/?q=bold", f"/documents/{XSS_DOC}", f"/documents/{XSS_DOC}?q=script",
    "/entities/sergei-lavrov", "/?q=%3Cscript%3Ealert(1)%3C/script%3E", "/?q=x&entity=%3Cscript%3E",
    "/entities/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/entities?q=%3Cscript%3E",
])
def test_markup_is_always_escaped(client: FlaskClient, url: str) -> None:
    resp = client.get(url)
    html = resp.get_data(as_text=True)
    assert resp.status_code in (200, 404)
    assert "<script>" not in html and "<b>bold" not in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_hostile_document_text_is_shown_escaped(client: FlaskClient) -> None:
    html, _ = get(client, f"/documents/{XSS_DOC}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_entity_list_page(client: FlaskClient) -> None:
    html, page = get(client, "/entities?type=place")
    assert page.link(lambda a: a["href"] == "/entities/ukraine")
    assert "/entities/sergei-lavrov" not in html
    get(client, "/entities?type=planet", status=400)


def test_static_assets(client: FlaskClient) -> None:
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "@media (max-width: 860px)" in css.get_data(as_text=True)
    assert client.get("/static/app.js").status_code == 200


def test_a_warmed_app_has_answered_its_page_and_api_once_before_any_user(web_index, tmp_path) -> None:
    """``create_app(warm=True)`` (what every server worker does) runs the search page and its API call
    through the app: the page's templates are compiled then, and a real request after it is answered as
    usual. An app without an index skips it."""
    from tests.web.conftest import web_settings
    from web import create_app

    cold = create_app(web_index)
    assert not cold.jinja_env.cache  # nothing rendered yet
    warm = create_app(web_index, warm=True)
    assert any("search" in str(name) or "base" in str(name) for _, name in warm.jinja_env.cache)
    with warm.test_client() as client:
        assert client.get("/api/search", query_string={"q": "Lavrov", "group": "true"}).status_code == 200
        assert client.get("/", query_string={"q": "Lavrov"}).status_code == 200
    assert not create_app(web_settings(tmp_path / "no-index"), warm=True).jinja_env.cache  # skipped
