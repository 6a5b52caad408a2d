"""JSON API under ``/api``. Every route: parse parameters (``Params``), call the Searcher, return its dict.

Bad parameters are ``BadQuery`` (400), unknown ids ``NotFound`` (404), a missing index 503; see
``web/errors.py`` for the error shape and ``web/openapi.py`` for the response schemas.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context
from werkzeug.datastructures import MultiDict

from index.errors import BadQuery, PersonaeError
from index.records import ENTITY_TYPES
from index.settings import Settings
from search.results import SearchRequest
from search.searcher import DUPLICATES, EXPORT_MAX, FUSIONS, MAX_OFFSET, MODES, SORTS
from web import export, get_searcher, get_settings

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_FILTERS = 20
MAX_ID_CHARS = 300
MAX_LINK_CHARS = 20_000
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_SURROGATE = re.compile("[\ud800-\udfff]")


class ServiceUnavailable(PersonaeError):
    status = 503


class Params:
    """The one parameter parser for API routes and pages. Every method raises ``BadQuery`` with a message
    naming the parameter and what it accepts."""

    def __init__(self, args: MultiDict[str, str], settings: Settings):
        self.args = args
        self.settings = settings

    def _one(self, name: str) -> str | None:
        values = self.args.getlist(name)
        if len(values) > 1:
            raise BadQuery(f"{name} is given {len(values)} times; give it once")
        return values[0] if values else None

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self._one(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise BadQuery(f"{name} must be an integer from {lo} to {hi}, got {raw[:40]!r}") from None
        if not lo <= value <= hi:
            raise BadQuery(f"{name} must be an integer from {lo} to {hi}, got {value}")
        return value

    def limit(self, default: int = 10) -> int:
        return self.integer("limit", min(default, self.settings.max_limit), 1, self.settings.max_limit)

    def offset(self) -> int:
        return self.integer("offset", 0, 0, MAX_OFFSET)

    def choice(self, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
        raw = self._one(name)
        if raw is None or raw == "":
            return default
        if raw not in choices:
            raise BadQuery(f"{name} must be one of {', '.join(choices)}, got {raw[:40]!r}")
        return raw

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self._one(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise BadQuery(f"{name} must be true or false, got {raw[:40]!r}")

    def text(self, name: str, *, required: bool = False, max_chars: int | None = None) -> str:
        raw = self._one(name)
        max_chars = max_chars or self.settings.max_query_chars
        if raw is None or not raw.strip():
            if required:
                raise BadQuery(f"missing {name}: give a query, e.g. ?{name}=lavrov")
            return ""
        if len(raw) > max_chars:
            raise BadQuery(f"{name} is {len(raw)} characters; the limit is {max_chars}")
        return raw

    def ids(self, name: str) -> list[str]:
        values = [v.strip() for v in self.args.getlist(name)]
        if any(not v for v in values):
            raise BadQuery(f"{name} must not be empty")
        if len(values) > MAX_FILTERS:
            raise BadQuery(f"at most {MAX_FILTERS} {name} filters")
        if any(len(v) > MAX_ID_CHARS for v in values):
            raise BadQuery(f"{name} ids are at most {MAX_ID_CHARS} characters")
        return list(dict.fromkeys(values))

    def search_request(self, *, default_limit: int = 10) -> SearchRequest:
        """The ``SearchRequest`` these parameters ask for (q may be empty when entity/said are given)."""
        entities, said = self.ids("entity"), self.ids("said")
        q = self.text("q", required=not (entities or said))
        return SearchRequest(
            q=q, entities=tuple(entities), said=tuple(said),
            mode=self.choice("mode", MODES, "hybrid") or "hybrid",
            fusion=self.choice("fusion", FUSIONS, None),
            limit=self.limit(default_limit), offset=self.offset(), group=self.flag("group"),
            date_from=self.text("from", max_chars=40) or None, date_to=self.text("to", max_chars=40) or None,
            sort=self.choice("sort", SORTS, "relevance") or "relevance",
            duplicates=self.choice("duplicates", DUPLICATES, "collapse") or "collapse",
        )


def params() -> Params:
    return Params(request.args, get_settings())


FORMATS = ("json", "csv", "jsonl")


@bp.get("/search")
def search() -> Any:
    p = params()
    fmt = p.choice("format", FORMATS, "json")
    req = p.search_request()
    searcher = get_searcher()
    if fmt == "json":
        return jsonify(searcher.run(req).to_dict())
    return export_response(searcher, req, fmt)


def export_response(searcher: Any, req: SearchRequest, fmt: str) -> Response:
    """The whole result set (from ``offset``, up to ``EXPORT_MAX`` rows) as a CSV or JSONL download.

    The first page runs before the response starts, so a bad query is still a JSON 400."""
    hits = searcher.export(req)
    first = next(hits, None)
    rows = (export.row(h, searcher.entity_name) for h in itertools.chain([first] if first else [], hits))
    lines = export.csv_lines(rows) if fmt == "csv" else export.jsonl_lines(rows)
    mime = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return Response(stream_with_context(lines), mimetype=mime, headers={
        "Content-Disposition": f'attachment; filename="personae-search.{fmt}"',
        "X-Export-Cap": str(EXPORT_MAX)})


@bp.get("/entities")
def entities() -> Any:
    p = params()
    kw = {"type": p.choice("type", ENTITY_TYPES, None), "q": p.text("q", max_chars=200) or None,
          "limit": p.limit(50), "offset": p.offset()}
    return jsonify(get_searcher().entities(**kw))


@bp.get("/entities/<path:entity_id>")
def entity(entity_id: str) -> Any:
    p = params()
    return jsonify(get_searcher().entity(entity_id, limit=p.limit(50)))


@bp.get("/documents/<path:doc_id>")
def document(doc_id: str) -> Any:
    return jsonify(get_searcher().document(doc_id))  # a dictionary lookup; the id never reaches the disk


@bp.post("/link")
def link() -> Any:
    if not request.is_json:
        got = request.mimetype or "none"
        raise BadQuery(f"send a JSON body with Content-Type: application/json, got {got!r}")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json.loads raises it (not ValueError) on arrays/objects nested ~1,000 deep
        body = None
    if body is None:
        raise BadQuery("the body is not valid JSON; expected {\"text\": \"...\"}")
    if not isinstance(body, dict) or "text" not in body:
        raise BadQuery("expected a JSON object with a \"text\" field")
    text = body["text"]
    if not isinstance(text, str) or not text.strip():
        raise BadQuery("text must be a non-empty string")
    if len(text) > MAX_LINK_CHARS:
        raise BadQuery(f"text is {len(text)} characters; the limit is {MAX_LINK_CHARS}")
    if _SURROGATE.search(text):  # JSON may escape one ("\ud800"); spaCy cannot encode it
        raise BadQuery("text holds a lone surrogate (an escape such as \\ud800); send valid Unicode")
    searcher = get_searcher()
    try:
        links = searcher.link(text)
    except ImportError as err:
        raise ServiceUnavailable(f"the entity linker is not available: {err}") from None
    return jsonify({"text_chars": len(text), "links": links})


@bp.get("/health")
def health() -> Any:
    return jsonify({"ok": True, "index": get_searcher().stats()})


@bp.get("/openapi.json")
def openapi() -> Any:
    from web.openapi import spec

    return jsonify(spec(get_settings()))
