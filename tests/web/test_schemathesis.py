"""Property-based and hostile-input tests of the JSON API over a real index (no mocks).

Two halves:

* schemathesis reads ``/api/openapi.json`` from the WSGI app itself and generates requests for every
  operation (valid and invalid parameters and bodies); every response must not be a 5xx, must carry a
  documented status code and content type, and its body must match the documented schema.
* Hand-written hostile inputs (huge, NUL, lone surrogates, invalid UTF-8, deep nesting, 1,000 repeated
  filters, RTL/combining/emoji, Whoosh syntax errors, bad ``POST /api/link`` bodies): 200 or 400 JSON in the
  error shape, never a 500.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.test_api import validate
from web.openapi import spec

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 30


OPERATIONS = [(path, method.upper()) for path, item in spec()["paths"].items() for method in item]
# Negative generation needs something to make invalid: query parameters with constraints, or a body.
NEGATIVE = [(p, m) for p, m in OPERATIONS
            if any(x["in"] == "query" for x in spec()["paths"][p][m.lower()].get("parameters", []))
            or "requestBody" in spec()["paths"][p][m.lower()]]
CASES = [pytest.param(p, m, GenerationMode.POSITIVE, id=f"{m} {p} positive") for p, m in OPERATIONS] + [
    pytest.param(p, m, GenerationMode.NEGATIVE, id=f"{m} {p} negative") for p, m in NEGATIVE]


@pytest.fixture(scope="module")
def api_schema(app: Flask) -> schemathesis.BaseSchema:
    """The schema as the app serves it (so the served document itself is what is tested)."""
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


# The operations are driven through plain Hypothesis strategies rather than schemathesis' pytest plugin
# (``schemathesis.pytest.from_fixture``): with pytest 9.2 that plugin fails on ``request.node._nodeid``.
@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_api_conforms_to_its_schema(api_schema: schemathesis.BaseSchema, path: str, method: str,
                                    mode: GenerationMode) -> None:
    """Generated inputs (valid, then invalid) for every operation: no 5xx; documented status, content type
    and body."""
    operation = api_schema[path][method]
    statuses: Counter[int] = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        statuses[case.call_and_validate(checks=CHECKS).status_code] += 1

    run()
    assert statuses, "schemathesis generated no requests"
    if mode is GenerationMode.NEGATIVE:
        # Not every negative case must be rejected: a query string carries only text, so a number where a
        # string is expected arrives as valid text ("0.0"), and unknown parameters are ignored by design.
        assert statuses[400] > 0, f"no invalid input was rejected: {dict(statuses)}"


# ----------------------------------------------------------------------------------------- hostile input

HUGE = "lavrov " * 15_000  # ~100k characters
DEEP = "(" * 500 + "lavrov" + ")" * 500
UNICODE = [
    "لافروف يتحدث عن المعادن النادرة",  # RTL (Arabic)
    "שלום עולם lavrov",  # RTL (Hebrew) mixed with Latin
    "\u202eoforvaL\u202c",  # RTL override
    "Lavrov\u0301\u0301\u0301\u0327",  # stacked combining marks
    "e\u0301" * 200,  # decomposed accents (NFC changes the length)
    "🇷🇺 🚀🔥 Lavrov 👨‍👩‍👧‍👦",  # flags, ZWJ sequences
    "\u200b\u200c\u200d\ufeff",  # only zero-width characters
    "\U0010ffff\U000e0001",  # the last code point, a tag character
    "Ｌａｖｒｏｖ",  # fullwidth
    "ǅ ß ﬁ İ",  # titlecase, sharp s, ligature, dotted capital I
]
WHOOSH_SYNTAX = [
    "a AND (", "title:", "*", "~", "[a TO", "a OR", "NOT", "AND", "(((", ")))", "\"", "\"\"", "'", "^2",
    "lavrov^", "lavrov~~", "lavrov~-1", "*lavrov*", "la?rov", "date:[2025 TO]", "text:{a TO b}", "{a TO",
    "a:b:c", ":", "title:(", "entity:", "said:", "entity:\"", "said:\"unclosed", "lavrov AND NOT OR",
    "\\", "\\\\\"", "/", "-", "+", "+-lavrov", "<>", "a TO b", "[* TO *]", "ANDOR", "''''",
]


def _assert_ok_or_400(resp: Any) -> Any:
    assert resp.status_code in (200, 400), (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/json", resp.mimetype
    body = resp.get_json()
    if resp.status_code == 400:
        validate(body, "Error")
        assert body["status"] == 400 and "Traceback" not in body["error"]
    return body


def _search_cases() -> list[Any]:
    cases: list[Any] = [
        pytest.param({"q": HUGE}, id="huge-q-100k"),
        pytest.param({"q": "x" * 1_000_000}, id="huge-q-1M"),
        pytest.param({"q": "lav\x00rov"}, id="nul-in-q"),
        pytest.param({"q": "\x00" * 50}, id="only-nul"),
        pytest.param({"q": "\x01\x02\x1b[31m\x7f"}, id="control-chars"),
        pytest.param({"q": DEEP}, id="deep-parens"),
        pytest.param({"q": "(" * 10_000}, id="unbalanced-parens-10k"),
        pytest.param({"q": "lavrov", "entity": ["Q1"] * 1000}, id="1000-repeated-entity"),
        pytest.param({"q": "lavrov", "entity": [f"Q{i}" for i in range(1000)]}, id="1000-distinct-entity"),
        pytest.param({"said": ["Q1"] * 1000}, id="1000-repeated-said"),
        pytest.param({"q": "lavrov", "entity": "x" * 10_000}, id="huge-entity-id"),
        pytest.param({"q": "lavrov", "entity": "\x00"}, id="nul-entity-id"),
        pytest.param({"q": "a " * 5_000}, id="many-terms"),
        pytest.param({"q": "lavrov", "limit": "99999999999999999999999"}, id="huge-limit"),
        pytest.param({"q": "lavrov", "limit": "-1"}, id="negative-limit"),
        pytest.param({"q": "lavrov", "limit": "1e3"}, id="float-limit"),
        pytest.param({"q": "lavrov", "limit": "٣"}, id="arabic-indic-digit-limit"),
        pytest.param({"q": "lavrov", "offset": "10001"}, id="offset-too-big"),
        pytest.param({"q": "lavrov", "offset": "10000", "limit": "50"}, id="offset-max"),
        pytest.param({"q": "lavrov", "mode": "\x00"}, id="nul-mode"),
        pytest.param({"q": "lavrov", "group": "maybe"}, id="bad-flag"),
        pytest.param({"q": ["a", "b"]}, id="q-twice"),
        pytest.param({"q": ""}, id="empty-q"),
        pytest.param({"q": "   \t\n"}, id="blank-q"),
        pytest.param({"q": "entity:" + "x" * 5000}, id="huge-inline-entity"),
        pytest.param({"q": " ".join(f"entity:Q{i}" for i in range(200))}, id="200-inline-entities"),
    ]
    cases += [pytest.param({"q": u}, id=f"unicode-{i}") for i, u in enumerate(UNICODE)]
    for mode in ("hybrid", "keyword", "vector"):
        cases += [pytest.param({"q": s, "mode": mode}, id=f"whoosh-{mode}-{s!r}") for s in WHOOSH_SYNTAX]
    cases += [pytest.param({"q": s, "group": "true", "fusion": "weighted"}, id=f"whoosh-grouped-{s!r}")
              for s in WHOOSH_SYNTAX[:8]]
    return cases


@pytest.mark.parametrize("args", _search_cases())
def test_hostile_search_is_200_or_400(client: FlaskClient, args: dict[str, Any]) -> None:
    body = _assert_ok_or_400(client.get("/api/search", query_string=args))
    if body.get("ok") is not False:
        validate(body, "SearchResult")


RAW_QUERY_STRINGS = [
    pytest.param("q=%ED%A0%80", id="lone-high-surrogate"),
    pytest.param("q=%ED%BF%BF", id="lone-low-surrogate"),
    pytest.param("q=lavrov%ED%A0%80%ED%B0%80", id="surrogate-pair-as-cesu8"),
    pytest.param("q=%FF%FE%FD", id="invalid-utf8"),
    pytest.param("q=%C0%AF", id="overlong-utf8"),
    pytest.param("q=%F4%90%80%80", id="above-max-code-point"),
    pytest.param("q=%E2%82", id="truncated-utf8"),
    pytest.param("q=lav%00rov", id="nul-percent"),
    pytest.param("q=%", id="lone-percent"),
    pytest.param("q=%zz%", id="bad-percent"),
    pytest.param("q=lavrov&entity=%ED%A0%80", id="surrogate-entity"),
    pytest.param("q=lavrov&entity=%FF", id="invalid-utf8-entity"),
    pytest.param("q=lavrov&limit=%FF", id="invalid-utf8-limit"),
    pytest.param("q=lavrov&mode=%ED%A0%80", id="surrogate-mode"),
    pytest.param("q=lavrov&" + "&".join(["entity=Q1"] * 1000), id="1000-entity-raw"),
    pytest.param("&&&&=&=&q", id="only-separators"),
    pytest.param("q=lavrov;entity=Q1", id="semicolon-separator"),
    pytest.param("q=" + "%28" * 2000 + "a" + "%29" * 2000, id="deep-parens-encoded"),
    pytest.param("q=%E2%80%AE%D8%A7", id="rtl-override-encoded"),
    pytest.param("q[]=lavrov", id="php-array-q"),
]


@pytest.mark.parametrize("qs", RAW_QUERY_STRINGS)
def test_hostile_raw_query_string_is_200_or_400(client: FlaskClient, qs: str) -> None:
    _assert_ok_or_400(client.get("/api/search?" + qs))


@pytest.mark.parametrize("qs", [
    pytest.param("q=%ED%A0%80", id="surrogate"), pytest.param("q=%FF%FE", id="invalid-utf8"),
    pytest.param("type=%FF", id="invalid-utf8-type"), pytest.param("q=" + "x" * 100_000, id="huge-q"),
    pytest.param("q=%00", id="nul"), pytest.param("type=person&type=org", id="type-twice"),
    pytest.param("limit=0", id="limit-0"), pytest.param("offset=-5", id="negative-offset"),
])
def test_hostile_entity_list_is_200_or_400(client: FlaskClient, qs: str) -> None:
    body = _assert_ok_or_400(client.get("/api/entities?" + qs))
    if body.get("ok") is not False:
        validate(body, "EntityList")


@pytest.mark.parametrize("path", [
    "/api/entities/%ED%A0%80", "/api/entities/%FF%FE", "/api/entities/%00", "/api/entities/" + "x" * 10_000,
    "/api/entities/..%2F..%2Fetc%2Fpasswd", "/api/entities/Q1?limit=%FF", "/api/entities/Q1?limit=0",
    "/api/documents/%ED%A0%80", "/api/documents/%FF", "/api/documents/../../etc/passwd",
    "/api/documents/..%2F..%2Fetc%2Fpasswd", "/api/documents/%00", "/api/documents/" + "a/" * 2000,
    "/api/%ED%A0%80", "/api/search/%FF",
])
def test_hostile_paths_are_json_never_500(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code in (200, 400, 404), (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/json"
    if resp.status_code != 200:
        validate(resp.get_json(), "Error")


LINK_BODIES = [
    pytest.param(b"not json", "application/json", id="not-json"),
    pytest.param(b"", "application/json", id="empty-body"),
    pytest.param(b"{\"text\": \"Lavrov\"", "application/json", id="truncated-json"),
    pytest.param(b"\xff\xfe{}", "application/json", id="invalid-utf8-json"),
    pytest.param(b"{\"text\": \"\\ud800\"}", "application/json", id="lone-surrogate-escape"),
    pytest.param(b"{\"text\": \"Lavrov\\u0000 in Moscow\"}", "application/json", id="nul-escape"),
    pytest.param(b"{\"text\": \"Lavrov \\ud83d\\ude00 \\udfff\"}", "application/json", id="pair-lone-low"),
    pytest.param(b"{\"text\": \"Lavrov \\ud83d\\ude00 in Moscow\"}", "application/json", id="escaped-pair"),
    pytest.param(b"null", "application/json", id="null"),
    pytest.param(b"[]", "application/json", id="array"),
    pytest.param(b"\"Lavrov\"", "application/json", id="bare-string"),
    pytest.param(b"42", "application/json", id="number"),
    pytest.param(b"{}", "application/json", id="no-text"),
    pytest.param(b"{\"text\": 42}", "application/json", id="text-number"),
    pytest.param(b"{\"text\": null}", "application/json", id="text-null"),
    pytest.param(b"{\"text\": [\"Lavrov\"]}", "application/json", id="text-array"),
    pytest.param(b"{\"text\": {\"a\": 1}}", "application/json", id="text-object"),
    pytest.param(b"{\"text\": true}", "application/json", id="text-bool"),
    pytest.param(b"{\"text\": \"   \"}", "application/json", id="text-blank"),
    pytest.param(b"{\"text\": \"" + b"a" * 20_001 + b"\"}", "application/json", id="text-too-long"),
    pytest.param(b"{\"text\": \"Lavrov\", \"text\": 1}", "application/json", id="duplicate-key"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "application/json", id="deeply-nested-array"),
    pytest.param(b"{\"a\":" * 50_000 + b"1" + b"}" * 50_000, "application/json", id="deeply-nested-object"),
    pytest.param(b"{\"text\": 1e999999}", "application/json", id="huge-float"),
    pytest.param(b"{\"text\": " + b"9" * 5000 + b"}", "application/json", id="huge-int"),
    pytest.param(b"{\"text\": NaN}", "application/json", id="nan"),
    pytest.param(b"text=Lavrov", "application/x-www-form-urlencoded", id="form"),
    pytest.param(b"{\"text\": \"Lavrov\"}", "text/plain", id="json-as-text-plain"),
    pytest.param(b"{\"text\": \"Lavrov\"}", "", id="no-content-type"),
    pytest.param(b"{\"text\": \"Lavrov\"}", "application/json; charset=latin-1", id="latin1-charset"),
    pytest.param(b"{\"text\": \"Lavrov\"}", "application/json; charset=nonexistent", id="bogus-charset"),
    pytest.param("{\"text\": \"Лавров\"}".encode("utf-16"), "application/json", id="utf16-body"),
    pytest.param(b"{\"text\": \"\xd8\xa7\xd9\x84 Lavrov \xf0\x9f\x87\xb7\xf0\x9f\x87\xba\"}",
                 "application/json", id="rtl-emoji-text"),
    pytest.param(b"{\"text\": \"" + b"Sergei Lavrov met Rubio in Riyadh. " * 550 + b"\"}",
                 "application/json", id="text-near-limit"),
]


@pytest.mark.parametrize(("body", "content_type"), LINK_BODIES)
def test_hostile_link_body_is_200_or_400(client: FlaskClient, body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = client.post("/api/link", data=body, headers=headers)
    result = _assert_ok_or_400(resp)
    if result.get("ok") is not False:
        validate(result, "LinkResult")


def test_link_body_over_the_limit_is_413_json(client: FlaskClient) -> None:
    resp = client.post("/api/link", data=b"{\"text\": \"" + b"a" * (2 << 20) + b"\"}",
                       headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.mimetype == "application/json"
    validate(resp.get_json(), "Error")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "GET"])
def test_link_wrong_method_is_405_json(client: FlaskClient, method: str) -> None:
    resp = client.open("/api/link", method=method, json={"text": "Lavrov"})
    assert resp.status_code == 405 and resp.mimetype == "application/json"
    assert "POST" in resp.headers["Allow"]
    validate(resp.get_json(), "Error")
