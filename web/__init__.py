"""The web layer: an HTML search UI and a JSON API over ``search.searcher.Searcher``.

``create_app`` is the app factory (``personae serve`` calls it). The web layer holds no search logic: it
parses parameters, calls the Searcher and renders the result. If no index has been built yet the app still
starts; every page and API route answers 503 until ``personae build`` has run, and the app picks the index
up (and any later rebuild) on its own, checking at most once per ``REFRESH_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app, request

from index.errors import IndexMissing, PersonaeError
from index.settings import Settings
from search.searcher import WARM_QUERY, Searcher

REFRESH_SECONDS = 1.0
MAX_BODY_BYTES = 1 << 20

log = logging.getLogger("personae.web")


class SearcherHolder:
    """Owns the app's one ``Searcher``; opens it late if the index appears after start-up.

    ``refresh`` runs at most once per ``interval`` seconds, whichever thread asks first; the Searcher itself
    swaps its state atomically, so requests in flight keep the build they started with.
    """

    def __init__(self, settings: Settings, searcher: Searcher | None = None,
                 interval: float = REFRESH_SECONDS, *, warm: bool = False):
        self.settings = settings
        self.interval = interval
        self.warm = warm
        self._searcher = searcher
        self._error: PersonaeError | None = None
        self._lock = threading.Lock()
        self._checked = time.monotonic() if searcher is not None else 0.0
        if searcher is None:
            self._open()

    def _open(self) -> None:
        try:
            searcher = Searcher.open(self.settings)
            if self.warm:
                searcher.warm()
            self._searcher = searcher
            self._error = None
        except PersonaeError as err:
            self._error = err
            log.warning("index not available: %s", err)

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.interval:
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread is refreshing right now; serve from the current state
        try:
            self._checked = now
            if self._searcher is None:
                self._open()
                return
            try:
                if self._searcher.refresh():
                    log.info("switched to build %s", self._searcher.build_folder.name)
            except PersonaeError as err:  # CURRENT vanished or is corrupt: keep serving the build we have
                log.warning("index refresh failed, keeping %s: %s", self._searcher.build_folder.name, err)
        finally:
            self._lock.release()

    def get(self) -> Searcher:
        if self._searcher is None:
            if self._error is not None:  # a fresh instance each time: no traceback piles up on a shared one
                raise type(self._error)(str(self._error))
            raise IndexMissing("no index; run `personae build`")
        return self._searcher


def get_searcher() -> Searcher:
    """The current app's Searcher; raises ``IndexMissing`` (503) when there is no usable index."""
    holder: SearcherHolder = current_app.extensions["personae"]
    return holder.get()


def get_settings() -> Settings:
    holder: SearcherHolder = current_app.extensions["personae"]
    return holder.settings


def create_app(settings: Settings | None = None, searcher: Searcher | None = None, *,
               warm: bool = False) -> Flask:
    """Build the Flask app. ``searcher`` (optional) is used as is; else one is opened from ``settings``
    (with ``warm``: and answers one query before the app is returned, so the first user's is not slow)."""
    if settings is None:
        settings = searcher.settings if searcher is not None else Settings.load()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["personae"] = SearcherHolder(settings, searcher, warm=warm)

    @app.before_request
    def _refresh() -> None:
        if request.endpoint != "static":
            app.extensions["personae"].refresh()

    @app.after_request
    def _headers(resp):  # type: ignore[no-untyped-def]
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if resp.mimetype == "text/html":
            resp.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            )
        return resp

    from web import api, errors, pages

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    errors.register(app)
    if warm:
        _warm_routes(app)
    return app


def _warm_routes(app: Flask) -> None:
    """Answer the search page and its API call once through the app itself, before any user does: Flask's
    first request, the templates' compilation and the JSON encoder are then paid at start-up, not by the
    first user (the searcher itself is warmed by ``Searcher.warm``). Nothing goes over the network."""
    holder: SearcherHolder = app.extensions["personae"]
    if holder._searcher is None:
        return
    with app.test_client() as client:
        for path in ("/api/search", "/"):
            client.get(path, query_string={"q": WARM_QUERY, "group": "true"})


__all__ = ["create_app", "get_searcher", "get_settings", "SearcherHolder"]
