"""Turn errors into responses: JSON under ``/api/``, an HTML error page elsewhere.

Core errors (``PersonaeError`` subclasses) carry their HTTP status and a one-line message that is safe to
show. HTTP errors (404, 405, 413...) keep their status. Anything else is a bug: it is logged with its
traceback and answered with a generic 500 message, never the traceback itself.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from index.errors import PersonaeError

log = logging.getLogger("personae.web")

GENERIC_500 = "internal error; the server log has the details"

TITLES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    415: "Unsupported media type",
    500: "Something went wrong",
    503: "Search is not available",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """The one JSON shape of every API error."""
    return {"ok": False, "error": message, "status": status}


def _wants_json() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def respond(status: int, message: str) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify(error_body(status, message)), status
    page = render_template("error.html", status=status, title=TITLES.get(status, "Error"), message=message,
                           q=request.args.get("q", "")[:200] if request.method == "GET" else "")
    return page, status


def _http_message(err: HTTPException) -> str:
    if err.code == 404:
        return f"no such page or route: {request.path}"
    if err.code == 405:
        allowed = ", ".join(sorted(m for m in (err.valid_methods or []) if m not in ("HEAD", "OPTIONS")))  # type: ignore[attr-defined]
        return f"method {request.method} is not allowed here" + (f"; use {allowed}" if allowed else "")
    if err.code == 413:
        return "request body is too large"
    return (err.description or err.name).split("\n")[0]


def register(app: Flask) -> None:
    @app.errorhandler(PersonaeError)
    def _personae(err: PersonaeError):  # type: ignore[no-untyped-def]
        status = int(getattr(err, "status", 500) or 500)
        if status >= 500 and status != 503:
            log.exception("core error on %s %s", request.method, request.path)
            return respond(status, GENERIC_500)
        return respond(status, str(err).splitlines()[0] if str(err) else TITLES.get(status, "error"))

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):  # type: ignore[no-untyped-def]
        status = err.code or 500
        resp, code = respond(status, _http_message(err))
        if status == 405 and isinstance(resp, Response):
            resp.headers["Allow"] = ", ".join(sorted(getattr(err, "valid_methods", None) or []))
        return resp, code

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # type: ignore[no-untyped-def]
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=err)
        return respond(500, GENERIC_500)
