"""The OpenAPI 3.1 description of ``/api``. ``tests/web/test_api.py`` validates real responses against it."""

from __future__ import annotations

from typing import Any

from index.records import ENTITY_TYPES
from index.settings import Settings
from search.searcher import DUPLICATES, EXPORT_MAX, FUSIONS, MAX_OFFSET, MODES, SORTS

VERSION = "0.2.0"
FACET_SCOPE = ("What facet counts count: 'matches' = every paragraph the keyword or entity legs match "
               "(after filters and exclusions) plus the vector leg's hits in the fused window; 'window' = "
               "the fused window only (Milvus backend, mode=vector)")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(t: str) -> dict[str, Any]:
    return {"type": [t, "null"]}


def _obj(props: dict[str, Any], required: list[str] | None = None, extra: bool = True) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required,
            "additionalProperties": extra}


_STR, _INT, _NUM, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
_STRS = {"type": "array", "items": _STR}
_TITLES = {"type": "array", "items": {"type": "object", "required": ["title"], "properties": {
    "title": {"type": "string"}, "start": _nullable("string"), "end": _nullable("string")}}}
_ETYPE = {"type": "string", "enum": list(ENTITY_TYPES)}
_DATE = {"type": "string", "pattern": r"^\d{4}(-\d{1,2}(-\d{1,2})?)?$"}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"ok": {"const": False}, "error": _STR, "status": _INT}, extra=False),
    "Link": _obj({"start": _INT, "end": _INT, "text": _STR, "entity_id": _STR, "type": _ETYPE,
                  "confidence": _NUM, "rule": _STR,
                  # the registry entities an ambiguous name could be, with the resolver's scores, best first
                  "candidates": {"type": "array", "items": {"type": "array", "prefixItems": [_STR, _NUM],
                                                             "minItems": 2, "maxItems": 2}}}),
    "Quote": _obj({"start": _INT, "end": _INT, "text": _STR, "speaker": _nullable("string"),
                   "confidence": _NUM, "cue": _STR, "how": _STR, "descriptor": _STR, "quote_id": _STR}),
    "LegRank": {"oneOf": [{"type": "null"}, _obj({"rank": _INT, "score": _NUM}, extra=False)]},
    "EntityRef": _obj({"id": _STR, "name": _STR, "type": _ETYPE, "known": _BOOL}),
    "LinkedEntity": {"allOf": [_ref("EntityRef"), _obj({
        "text": _nullable("string"), "rule": _nullable("string"), "confidence": _nullable("number")})]},
    "Facet": _obj({"id": _STR, "name": _STR, "type": _ETYPE, "count": _INT}),
    "Hit": _obj({
        "paragraph_id": _STR, "doc_id": _STR, "n": _INT, "page": _nullable("integer"),
        "page_end": _nullable("integer"), "title": _STR, "date": _nullable("string"),
        "source": _nullable("string"), "url": _nullable("string"), "score": _NUM, "text": _STR,
        "snippet": {"type": "string", "description": "HTML: escaped text, <mark> for query terms, "
                                                      "<a class=\"ent ent-TYPE\"> for linked entities"},
        "entities": _STRS, "matched_entities": _STRS, "quotes": {"type": "array", "items": _ref("Quote")},
        "explain": {"type": "object", "additionalProperties": _ref("LegRank"),
                    "description": "rank and score of the paragraph in each leg (null: not found by it)"},
    }),
    "Similar": _obj({"doc_id": _STR, "title": _STR, "date": _nullable("string"),
                     "source": _nullable("string")}),
    "Group": _obj({"doc_id": _STR, "title": _STR, "date": _nullable("string"), "source": _nullable("string"),
                   "score": {"type": "number", "description": "fused score of the best paragraph; 0 for a "
                             "document beyond the fused window (ranked by the keyword, then entity leg)"},
                   "hits": {"type": "array", "items": _ref("Hit"), "maxItems": 3},
                   "more": {"type": "integer", "minimum": 0,
                            "description": "further matching paragraphs in the document"},
                   "similar": {"type": "array", "items": _ref("Similar"),
                               "description": "near-duplicate documents collapsed into this one "
                                              "(duplicates=collapse)"}}),
    "SearchResult": _obj({
        "query": _STR, "mode": {"enum": list(MODES)}, "fusion": {"enum": [*FUSIONS, None]},
        "offset": _INT, "limit": _INT,
        "filters": _obj({"entities": _STRS, "said": _STRS, "exclude": _STRS, "exclude_entities": _STRS,
                         "exclude_said": _STRS, "from": _nullable("string"), "to": _nullable("string")},
                        extra=False),
        "unknown_entities": _STRS,
        "linked": {"type": "array", "items": _ref("LinkedEntity")},
        "legs": {"type": "array", "items": {"enum": ["keyword", "vector", "entity"]}},
        "facets": _obj({t: {"type": "array", "items": _ref("Facet")} for t in ENTITY_TYPES}, extra=False),
        "facet_scope": {"enum": ["matches", "window"], "description": FACET_SCOPE},
        "total": {"type": "integer", "minimum": 0, "description": "results reachable by paging (documents "
                  "when grouped); offset stops at 10000"},
        "sort": {"enum": list(SORTS)},
        "timeline": _obj({"unit": {"enum": ["day", "month", "year"]},
                          "bins": {"type": "array", "items": _obj({"period": _STR, "count": _INT})}},
                         extra=False),
        "hits": {"type": "array", "items": _ref("Hit")},
        "groups": {"type": "array", "items": _ref("Group")},
        "took_ms": _NUM,
    }, required=["query", "mode", "fusion", "offset", "limit", "filters", "unknown_entities", "linked",
                 "legs", "facets", "facet_scope", "total", "sort", "timeline", "hits", "took_ms"]),
    "Entity": _obj({
        "id": _STR, "name": _STR, "type": _ETYPE, "aliases": _STRS, "wikidata": _nullable("string"),
        "description": _nullable("string"), "titles": _TITLES, "mentions": _INT, "paragraphs": _INT,
        "documents": _INT, "surfaces": _STRS,
    }, required=["id", "name", "type", "aliases", "mentions", "paragraphs", "documents", "surfaces"]),
    "EntityList": _obj({"total": _INT, "offset": _INT, "limit": _INT,
                        "entities": {"type": "array", "items": _ref("Entity")}}, extra=False),
    "Mention": _obj({"paragraph_id": _STR, "doc_id": _STR, "title": _STR, "date": _nullable("string"),
                     "snippet": _STR, "links": {"type": "array", "items": _ref("Link")}}),
    "EntityQuote": _obj({"paragraph_id": _STR, "doc_id": _STR, "title": _STR, "date": _nullable("string"),
                         "text": _STR, "confidence": _nullable("number"), "cue": _STR, "how": _STR}),
    "EntityDetail": _obj({
        "id": _STR, "name": _STR, "type": _ETYPE, "aliases": _STRS, "description": _nullable("string"),
        "wikidata": _nullable("string"), "titles": _TITLES,
        "mention_count": _INT, "mentions": {"type": "array", "items": _ref("Mention")},
        "timeline": _obj({"unit": {"enum": ["day", "month", "year"]},
                          "bins": {"type": "array", "items": _obj({"period": _STR, "count": _INT})},
                          "undated": _INT}, extra=False,
                         ) | {"description": "mentions (paragraphs) per period; undated: without a date"},
        "quotes": {"type": "array", "items": _ref("EntityQuote")},
        "co_mentioned": {"type": "array", "items": {"allOf": [_ref("EntityRef"), _obj({"count": _INT})]}},
    }, required=["id", "name", "type", "mention_count", "mentions", "timeline", "quotes", "co_mentioned"]),
    "Paragraph": _obj({"id": _STR, "doc_id": _STR, "n": _INT, "start": _INT, "end": _INT, "text": _STR,
                       "links": {"type": "array", "items": _ref("Link")},
                       "quotes": {"type": "array", "items": _ref("Quote")}}),
    "Document": _obj({
        "id": _STR, "title": _STR, "text": _STR, "date": _nullable("string"), "url": _nullable("string"),
        "source": _nullable("string"), "byline": _nullable("string"), "path": _nullable("string"),
        "paragraphs": {"type": "array", "items": _ref("Paragraph")},
        "entities": {"type": "array", "items": {"allOf": [_ref("EntityRef"), _obj({"count": _INT})]}},
    }, required=["id", "title", "text", "paragraphs", "entities"]),
    "LinkResult": _obj({"text_chars": _INT, "links": {"type": "array", "items": {
        "allOf": [_ref("Link"), _obj({"entity": _ref("EntityRef")})]}}}, extra=False),
    "Health": _obj({"ok": {"const": True}, "index": _obj({
        "build": _STR, "created": _STR, "counts": {"type": "object", "additionalProperties": _INT},
        "models": {"type": "object", "additionalProperties": _STR}, "format": _INT, "version": _STR})},
        extra=False),
}


def _param(name: str, schema: dict[str, Any], description: str, *, where: str = "query",
           required: bool = False, repeat: bool = False) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "required": required or where == "path",
                         "description": description,
                         "schema": {"type": "array", "items": schema} if repeat else schema}
    if repeat:
        p.update(style="form", explode=True)
    return p


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad parameter", 404: "Unknown id", 405: "Method not allowed", 413: "Body too large",
            500: "Internal error", 503: "No index; run `personae build`"}
    return {str(c): _json("Error", text[c]) for c in codes}


def spec(settings: Settings | None = None) -> dict[str, Any]:
    s = settings or Settings()
    limit = {"type": "integer", "minimum": 1, "maximum": s.max_limit}
    offset = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Personae API", "version": VERSION,
                 "description": "Entity-linked hybrid search over news. Every error is "
                                "{\"ok\": false, \"error\": message, \"status\": code}."},
        "paths": {
            "/api/search": {"get": {
                "summary": "Search paragraphs (optionally grouped by document)",
                "parameters": [
                    _param("q", {"type": "string", "maxLength": s.max_query_chars},
                           "Query text; may hold \"phrases\", AND/OR/NOT, entity:ID and said:ID. "
                           "Required unless entity or said is given."),
                    _param("entity", _STR, "Only paragraphs linked to this entity id (repeatable: all of "
                           "them)", repeat=True),
                    _param("said", _STR, "Only paragraphs with a quote by this entity id (repeatable)",
                           repeat=True),
                    _param("mode", {"enum": list(MODES), "default": "hybrid"}, "Which legs run"),
                    _param("fusion", {"enum": list(FUSIONS)}, f"How legs are fused [{s.fusion}]"),
                    _param("limit", {**limit, "default": 10}, "Page size (hits, or documents when grouped)"),
                    _param("offset", offset, f"Results to skip (at most {MAX_OFFSET}: deeper pages are "
                           "refused; narrow the query, or export)"),
                    _param("group", {"type": "boolean", "default": False},
                           "Group paragraphs by document; pages cover every document the keyword or entity "
                           "legs match (embedded backend)"),
                    _param("from", _DATE, "Only documents dated on or after this day (YYYY, YYYY-MM or "
                           "YYYY-MM-DD: the first day of that period). Undated documents are left out "
                           "when from or to is given"),
                    _param("to", _DATE, "Only documents dated on or before this day (YYYY or YYYY-MM: the "
                           "last day of that period)"),
                    _param("sort", {"enum": list(SORTS), "default": "relevance"},
                           "relevance, or date: the matched set newest first, undated documents last"),
                    _param("duplicates", {"enum": list(DUPLICATES), "default": "collapse"},
                           "collapse: near-duplicate documents fold into the best-ranked copy (grouped "
                           "results, listed under similar); show: every copy is its own result"),
                    _param("format", {"enum": ["json", "csv", "jsonl"], "default": "json"},
                           f"json: one page; csv / jsonl: a download of the whole result set from offset "
                           f"(grouped: each document's shown paragraphs), at most {EXPORT_MAX} rows, columns "
                           "paragraph_id, doc_id, date, title, score, snippet (text), entity_ids, "
                           "entity_names; CSV cells starting with = + - @ get a leading '"),
                ],
                "responses": {"200": {"description": "Results (format=json), or the export",
                                      "content": {"application/json": {"schema": _ref("SearchResult")},
                                                  "text/csv": {"schema": _STR},
                                                  "application/x-ndjson": {"schema": _STR}}},
                              **_errors(400, 500, 503)},
            }},
            "/api/entities": {"get": {
                "summary": "List entities, most mentioned first",
                "parameters": [
                    _param("type", _ETYPE, "Only this entity type"),
                    _param("q", {"type": "string", "maxLength": 200}, "Name or alias contains this text"),
                    _param("limit", {**limit, "default": min(50, s.max_limit)}, "Page size"),
                    _param("offset", offset, "Entities to skip"),
                ],
                "responses": {"200": _json("EntityList", "Entities"), **_errors(400, 503)},
            }},
            "/api/entities/{id}": {"get": {
                "summary": "One entity: mentions by date, quotes, co-mentioned entities",
                "parameters": [_param("id", _STR, "Entity id", where="path"),
                               _param("limit", {**limit, "default": min(50, s.max_limit)},
                                      "Mentions returned")],
                "responses": {"200": _json("EntityDetail", "The entity"), **_errors(400, 404, 503)},
            }},
            "/api/documents/{id}": {"get": {
                "summary": "One document with its paragraphs, links and quotes",
                "parameters": [_param("id", _STR, "Document id (a relative path such as sport/199.txt)",
                                      where="path")],
                "responses": {"200": _json("Document", "The document"), **_errors(404, 503)},
            }},
            "/api/link": {"post": {
                "summary": "Find the entities a text mentions",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _obj(
                    {"text": {"type": "string", "minLength": 1, "maxLength": 20_000}})}}},
                "responses": {"200": _json("LinkResult", "Links found"), **_errors(400, 405, 413, 503)},
            }},
            "/api/health": {"get": {
                "summary": "Liveness and the live build's statistics",
                "responses": {"200": _json("Health", "Serving"), **_errors(503)},
            }},
            "/api/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            }},
        },
        "components": {"schemas": SCHEMAS},
    }
