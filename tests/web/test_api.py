"""The JSON API over a real index: every route, every bad parameter, the OpenAPI schemas, escaping."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from index import layout
from index.settings import Settings
from tests.web.conftest import SEED_DOC, SPORT_DOC, XSS, XSS_DOC
from web import create_app
from web.openapi import spec


def validate(payload: Any, schema_name: str) -> None:
    doc = spec()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": doc["components"],
              "$ref": f"#/components/schemas/{schema_name}"}
    errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def assert_error(resp: Any, status: int, contains: str = "") -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    validate(body, "Error")
    assert body["ok"] is False and body["status"] == status and body["error"]
    assert "Traceback" not in body["error"]
    assert contains.lower() in body["error"].lower()
    return body


# --------------------------------------------------------------------------------------------- search


def test_search_returns_highlighted_hits(client: FlaskClient) -> None:
    resp = client.get("/api/search", query_string={"q": "rare earth metals"})
    assert resp.status_code == 200
    body = resp.get_json()
    validate(body, "SearchResult")
    assert body["hits"] and body["total"] >= len(body["hits"])
    assert body["mode"] == "hybrid" and body["limit"] == 10 and body["offset"] == 0
    assert any("<mark>" in h["snippet"] for h in body["hits"])
    top_docs = {h["doc_id"] for h in body["hits"][:3]}
    assert top_docs & {SEED_DOC, XSS_DOC}


def test_search_grouped_entity_filter_and_modes(client: FlaskClient) -> None:
    body = client.get("/api/search?q=rare+earth+metals&group=true&limit=5").get_json()
    validate(body, "SearchResult")
    assert body["hits"] == [] and body["groups"]
    assert len({g["doc_id"] for g in body["groups"]}) == len(body["groups"])

    filtered = client.get("/api/search?q=talks&entity=sergei-lavrov&mode=keyword").get_json()
    validate(filtered, "SearchResult")
    assert filtered["filters"]["entities"] == ["sergei-lavrov"]
    assert filtered["hits"] and all("sergei-lavrov" in h["entities"] for h in filtered["hits"])

    only_filter = client.get("/api/search?entity=sergei-lavrov&entity=ukraine").get_json()
    assert only_filter["hits"]
    assert all({"sergei-lavrov", "ukraine"} <= set(h["entities"]) for h in only_filter["hits"])

    for mode in ("keyword", "vector", "hybrid"):
        args = {"q": "Riyadh final", "mode": mode, "fusion": "weighted"}
        body = client.get("/api/search", query_string=args)
        assert body.status_code == 200, body.get_data(as_text=True)
        validate(body.get_json(), "SearchResult")
        assert body.get_json()["mode"] == mode


def test_search_linked_query_entities_and_paging(client: FlaskClient) -> None:
    body = client.get("/api/search?q=Lavrov&limit=2&offset=1").get_json()
    assert any(e["id"] == "sergei-lavrov" and e["text"] == "Lavrov" for e in body["linked"])
    assert body["limit"] == 2 and body["offset"] == 1 and len(body["hits"]) <= 2
    first = client.get("/api/search?q=Lavrov&limit=3").get_json()["hits"]
    assert [h["paragraph_id"] for h in first[1:3]] == [h["paragraph_id"] for h in body["hits"]]


BAD_SEARCH = [
    ("", "missing q"),
    ("q=", "missing q"),
    ("q=%20%20", "missing q"),
    ("q=x&limit=abc", "limit"),
    ("q=x&limit=1.5", "limit"),
    ("q=x&limit=0", "limit"),
    ("q=x&limit=101", "limit must be an integer from 1 to 100"),
    ("q=x&limit=-3", "limit"),
    ("q=x&limit=1&limit=2", "limit is given 2 times"),
    ("q=x&offset=-1", "offset"),
    ("q=x&offset=ten", "offset"),
    ("q=x&offset=10001", "offset"),
    ("q=x&mode=fuzzy", "mode must be one of hybrid, keyword, vector"),
    ("q=x&fusion=max", "fusion must be one of rrf, weighted"),
    ("q=x&group=maybe", "group must be true or false"),
    ("q=x&entity=", "entity must not be empty"),
    ("q=x&said=", "said must not be empty"),
    ("q=" + "a" * 1001, "the limit is 1000"),
    ("q=" + "(" * 9 + "x" + ")" * 9, "parentheses"),
]


@pytest.mark.parametrize(("query", "message"), BAD_SEARCH, ids=[m for _, m in BAD_SEARCH])
def test_search_bad_parameters_are_400(client: FlaskClient, query: str, message: str) -> None:
    assert_error(client.get(f"/api/search?{query}"), 400, message)


def test_unknown_entity_filter_is_reported_not_an_error(client: FlaskClient) -> None:
    body = client.get("/api/search?q=lavrov&entity=no-such-entity").get_json()
    assert body["unknown_entities"] == ["no-such-entity"] and body["hits"] == []


# ------------------------------------------------------------------------------------------- entities


def test_entities_list_filters_and_pages(client: FlaskClient) -> None:
    body = client.get("/api/entities").get_json()
    validate(body, "EntityList")
    assert body["total"] == len(body["entities"]) or len(body["entities"]) == body["limit"]
    mentions = [e["mentions"] for e in body["entities"]]
    assert mentions == sorted(mentions, reverse=True)

    people = client.get("/api/entities?type=person&limit=3").get_json()
    validate(people, "EntityList")
    assert len(people["entities"]) == 3 and {e["type"] for e in people["entities"]} == {"person"}

    found = client.get("/api/entities?q=lavrov").get_json()
    assert [e["id"] for e in found["entities"]] == ["sergei-lavrov"]

    page2 = client.get("/api/entities?type=person&limit=3&offset=3").get_json()
    assert not {e["id"] for e in page2["entities"]} & {e["id"] for e in people["entities"]}


@pytest.mark.parametrize(("query", "message"), [
    ("type=planet", "type must be one of person, org, place, other"),
    ("limit=x", "limit"), ("limit=500", "limit"), ("offset=-2", "offset"), ("q=" + "a" * 201, "limit is 200"),
])
def test_entities_bad_parameters_are_400(client: FlaskClient, query: str, message: str) -> None:
    assert_error(client.get(f"/api/entities?{query}"), 400, message)


def test_entity_detail(client: FlaskClient) -> None:
    body = client.get("/api/entities/sergei-lavrov").get_json()
    validate(body, "EntityDetail")
    assert body["name"] == "Sergei Lavrov" and body["type"] == "person"
    assert body["mention_count"] >= len(body["mentions"]) > 0
    assert any("rare earth metals" in q["text"] for q in body["quotes"])
    assert {c["id"] for c in body["co_mentioned"]} >= {"ukraine"}
    dates = [m["date"] or "" for m in body["mentions"]]
    assert dates == sorted(dates)

    assert_error(client.get("/api/entities/no-such-entity"), 404, "no-such-entity")
    assert_error(client.get("/api/entities/sergei-lavrov?limit=0"), 400, "limit")


# ------------------------------------------------------------------------------------------ documents


@pytest.mark.parametrize("doc_id", [SEED_DOC, XSS_DOC, SPORT_DOC])
def test_document_by_id(client: FlaskClient, doc_id: str) -> None:
    body = client.get(f"/api/documents/{doc_id}").get_json()
    validate(body, "Document")
    assert body["id"] == doc_id
    assert [p["n"] for p in body["paragraphs"]] == list(range(len(body["paragraphs"])))
    for p in body["paragraphs"]:
        assert body["text"][p["start"]:p["end"]] == p["text"]


@pytest.mark.parametrize("path", [
    "/api/documents/no-such.txt", "/api/documents/../../etc/passwd",
    "/api/documents/%2e%2e/%2e%2e/etc/passwd",
    "/api/documents//etc/passwd", "/api/documents/seeds/" + SEED_DOC, "/api/documents/sport",
])
def test_unknown_or_hostile_document_ids_are_404(client: FlaskClient, path: str) -> None:
    resp = client.get(path, follow_redirects=True)  # "//" is merged by a redirect first
    assert resp.status_code == 404 and resp.get_json()["ok"] is False
    assert "root:" not in resp.get_data(as_text=True)


# ----------------------------------------------------------------------------------------------- link


def test_link_finds_entities(client: FlaskClient) -> None:
    resp = client.post("/api/link", json={"text": "Lavrov met Rubio in Riyadh."})
    assert resp.status_code == 200
    body = resp.get_json()
    validate(body, "LinkResult")
    ids = {x["entity_id"] for x in body["links"]}
    assert {"sergei-lavrov", "marco-rubio"} <= ids
    first = body["links"][0]
    assert body["text_chars"] == 27
    assert "Lavrov met Rubio in Riyadh."[first["start"]:first["end"]] == first["text"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"data": "text=Lavrov", "content_type": "application/x-www-form-urlencoded"}, "content-type"),
    ({"data": "Lavrov", "content_type": "text/plain"}, "content-type"),
    ({"data": "{not json", "content_type": "application/json"}, "not valid json"),
    ({"json": ["Lavrov"]}, "json object"),
    ({"json": {"txt": "Lavrov"}}, '"text"'),
    ({"json": {"text": ""}}, "non-empty string"),
    ({"json": {"text": 42}}, "non-empty string"),
    ({"json": {"text": "a" * 20_001}}, "limit is 20000"),
])
def test_link_bad_bodies_are_400(client: FlaskClient, kwargs: dict[str, Any], message: str) -> None:
    assert_error(client.post("/api/link", **kwargs), 400, message)


def test_wrong_method_and_unknown_route_are_json(client: FlaskClient) -> None:
    body = assert_error(client.get("/api/link"), 405, "POST")
    assert body["status"] == 405
    assert_error(client.post("/api/search?q=x"), 405)
    assert_error(client.get("/api/no-such-route"), 404, "/api/no-such-route")
    assert_error(client.post("/api/link", data=b"x" * (2 << 20), content_type="application/json"), 413)


# ------------------------------------------------------------------------------------ health, openapi


def test_health(client: FlaskClient, web_index: Settings) -> None:
    body = client.get("/api/health").get_json()
    validate(body, "Health")
    assert body["ok"] is True and body["index"]["counts"]["documents"] == 3
    assert body["index"]["build"] == layout.current_build(web_index.index_path).name


def test_openapi_is_a_valid_31_document_covering_every_route(client: FlaskClient, app: Flask) -> None:
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises on an invalid schema
    routes = {r.rule.replace("<path:", "{").replace(">", "}") for r in app.url_map.iter_rules()
              if r.rule.startswith("/api/")}
    routes = {r.replace("{entity_id}", "{id}").replace("{doc_id}", "{id}") for r in routes}
    assert routes == set(doc["paths"])
    limit = next(p for p in doc["paths"]["/api/search"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100


def test_every_documented_response_validates(client: FlaskClient) -> None:
    """Real responses for each documented (path, status) validate against the schema the spec names."""
    doc = spec()
    calls = {
        ("/api/search", "200"): lambda: client.get("/api/search?q=lavrov&group=true"),
        ("/api/search", "400"): lambda: client.get("/api/search?q=x&limit=0"),
        ("/api/entities", "200"): lambda: client.get("/api/entities?type=place"),
        ("/api/entities", "400"): lambda: client.get("/api/entities?type=x"),
        ("/api/entities/{id}", "200"): lambda: client.get("/api/entities/ukraine"),
        ("/api/entities/{id}", "400"): lambda: client.get("/api/entities/ukraine?limit=x"),
        ("/api/entities/{id}", "404"): lambda: client.get("/api/entities/x-y-z"),
        ("/api/documents/{id}", "200"): lambda: client.get(f"/api/documents/{SPORT_DOC}"),
        ("/api/documents/{id}", "404"): lambda: client.get("/api/documents/x.txt"),
        ("/api/link", "200"): lambda: client.post("/api/link", json={"text": "Putin and Zelenskyy"}),
        ("/api/link", "400"): lambda: client.post("/api/link", json={}),
        ("/api/link", "405"): lambda: client.get("/api/link"),
        ("/api/health", "200"): lambda: client.get("/api/health"),
    }
    for (path, status), call in calls.items():
        (method, op), = doc["paths"][path].items()
        ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        resp = call()
        assert str(resp.status_code) == status, (path, resp.get_data(as_text=True)[:200])
        validate(resp.get_json(), ref.rsplit("/", 1)[-1])


# ------------------------------------------------------------------------------------------- escaping


def test_markup_in_documents_is_never_live_in_snippets(client: FlaskClient) -> None:
    body = client.get("/api/search?q=rare+earth+metals&limit=20").get_json()
    xss_hits = [h for h in body["hits"] if h["doc_id"] == XSS_DOC]
    assert xss_hits, "the hostile document should match"
    assert any(XSS in h["text"] for h in xss_hits)  # the raw text is data, returned as is
    for h in body["hits"]:
        assert "<script" not in h["snippet"] and "<b>" not in h["snippet"]
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in h["snippet"] for h in xss_hits)
    mentions = client.get("/api/entities/sergei-lavrov?limit=100").get_json()["mentions"]
    assert all("<script" not in m["snippet"] for m in mentions)


# ------------------------------------------------------------------------------------- no index, 500


def test_missing_index_is_503_everywhere_then_picked_up(empty_app: Flask, web_index: Settings) -> None:
    client = empty_app.test_client()
    for path in ("/api/search?q=lavrov", "/api/health", "/api/entities", f"/api/documents/{SEED_DOC}"):
        assert_error(client.get(path), 503, "personae build")
    assert_error(client.post("/api/link", json={"text": "Lavrov"}), 503, "personae build")
    assert client.get("/api/openapi.json").status_code == 200  # the spec needs no index
    page = client.get("/")
    assert page.status_code == 503 and "personae build" in page.get_data(as_text=True)

    # Someone runs `personae build`: the app notices without a restart.
    target = Path(empty_app.extensions["personae"].settings.index_dir)
    live = layout.current_build(web_index.index_path)
    target.mkdir(parents=True)
    shutil.copytree(live, target / live.name)
    layout.swap_current(target, target / live.name)
    empty_app.extensions["personae"].interval = 0.0
    resp = client.get("/api/search?q=lavrov")
    assert resp.status_code == 200 and resp.get_json()["hits"]


def test_unexpected_exception_is_a_generic_json_500(
    web_index: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(web_index)

    def boom() -> str:
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/api/boom", "boom", boom)
    app.add_url_rule("/boom", "page_boom", boom)
    client = app.test_client()
    body = assert_error(client.get("/api/boom"), 500, "internal error")
    assert "secret" not in body["error"]
    page = client.get("/boom")
    assert page.status_code == 500 and "secret" not in page.get_data(as_text=True)
    assert "secret internal detail" in caplog.text  # logged for the operator
