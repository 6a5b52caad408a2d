"""HTML pages: search (``/``), entity (``/entities/<id>``), document (``/documents/<id>``), entity list.

Plain GET forms and links, so everything works without JavaScript. Snippet HTML comes from
``search.snippets.highlight`` (which escapes the document text itself); it is the only ``|safe`` content.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from index.errors import NotFound
from index.records import ENTITY_TYPES
from search.searcher import EXPORT_MAX, MODES
from search.snippets import highlight, query_stems
from web import get_searcher, get_settings
from web.api import MAX_OFFSET, Params
from web.charts import bars

bp = Blueprint("pages", __name__)

PAGE_SIZE = 10
TYPE_LABELS = {"person": "People", "org": "Organisations", "place": "Places", "other": "Other"}
TYPE_SINGULAR = {"person": "Person", "org": "Organisation", "place": "Place", "other": "Other"}
LEG_LABELS = {"keyword": "Keyword (BM25)", "vector": "Vector (semantic)", "entity": "Entity match"}
MODE_LABELS = {"hybrid": "Hybrid", "keyword": "Keyword", "vector": "Semantic"}


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {"TYPE_LABELS": TYPE_LABELS, "TYPE_SINGULAR": TYPE_SINGULAR, "LEG_LABELS": LEG_LABELS,
            "MODE_LABELS": MODE_LABELS, "MODES": MODES, "url_with": url_with,
            "max_query_chars": get_settings().max_query_chars}


def url_with(*, add: tuple[str, str] | None = None, remove: tuple[str, str] | None = None,
             **replace: Any) -> str:
    """The current search URL with one ``name=value`` added or removed, or single values replaced
    (``None`` drops the parameter). Any change other than ``page`` goes back to page 1."""
    args: MultiDict[str, str] = MultiDict(request.args)
    if add is not None:
        if add[1] not in args.getlist(add[0]):
            args.add(*add)
    if remove is not None:
        args.setlist(remove[0], [v for v in args.getlist(remove[0]) if v != remove[1]])
    for name, value in replace.items():
        if value is None or value == "":
            args.poplist(name)
        else:
            args.setlist(name, [str(value)])
    if "page" not in replace:
        args.poplist("page")
    if args.get("mode") == "hybrid":
        args.poplist("mode")
    query = urlencode([(k, v) for k, vs in args.lists() for v in vs if v != ""])
    return url_for("pages.search") + (f"?{query}" if query else "")


def _paragraph_n(paragraph_id: str) -> str:
    return paragraph_id.rsplit("#", 1)[-1]


@bp.get("/")
def search() -> Any:
    p = Params(request.args, get_settings())
    entities, said = p.ids("entity"), p.ids("said")
    q = p.text("q")
    mode = p.choice("mode", MODES, "hybrid") or "hybrid"
    page = p.integer("page", 1, 1, MAX_OFFSET // PAGE_SIZE + 1)
    if not q.strip() and not entities and not said:
        searcher = get_searcher()
        top = {t: searcher.entities(type=t, limit=8)["entities"] for t in ("person", "org", "place")}
        return render_template("home.html", stats=searcher.stats(), top=top, q="", mode=mode)
    req = replace(p.search_request(), group=True, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    result = get_searcher().run(req)
    names = {f["id"]: f["name"] for bucket in result.facets.values() for f in bucket}
    active = [_entity_label(eid, names) for eid in entities]
    speakers = [_entity_label(eid, names) for eid in said]
    excluded = [_entity_label(eid, names) for eid in result.filters["exclude_entities"]]
    pages = max(1, math.ceil(result.total / PAGE_SIZE))
    snippets = {h.paragraph_id: Markup(h.snippet)  # built and escaped by search.snippets.highlight
                for g in result.groups or [] for h in g.hits}
    chart = bars(result.timeline, lambda period: url_with(**{"from": period, "to": period}))
    exports = {fmt: _export_url(fmt) for fmt in ("csv", "jsonl")}
    return render_template(
        "search.html", q=q, mode=mode, result=result, active=active, speakers=speakers, page=page,
        pages=pages, page_range=_page_range(page, pages), page_size=PAGE_SIZE, snippets=snippets,
        excluded=excluded, chart=chart, exports=exports, export_cap=EXPORT_MAX,
        date_from=result.filters["from"], date_to=result.filters["to"], sort=result.sort,
        duplicates=req.duplicates, window=get_settings().candidates,
    )


def _export_url(fmt: str) -> str:
    """The API URL that exports the result set this page shows (every page, grouped as here)."""
    args = [(k, v) for k, vs in request.args.lists() for v in vs if k not in ("page", "format") and v]
    args += [("group", "true"), ("format", fmt)]
    return url_for("api.search") + "?" + urlencode(args)


def _entity_label(eid: str, names: dict[str, str]) -> dict[str, Any]:
    if eid not in names:
        try:
            names[eid] = get_searcher().entity(eid, limit=1)["name"]
        except NotFound:  # shown as is; the page also lists it under "unknown entities"
            names[eid] = eid
    return {"id": eid, "name": names[eid]}


def _page_range(page: int, pages: int, width: int = 7) -> list[int]:
    start = max(1, min(page - width // 2, pages - width + 1))
    return list(range(start, min(pages, start + width - 1) + 1))


@bp.get("/entities")
def entity_list() -> Any:
    p = Params(request.args, get_settings())
    etype = p.choice("type", ENTITY_TYPES, None)
    q = p.text("q", max_chars=200)
    page = p.integer("page", 1, 1, MAX_OFFSET // 50 + 1)
    result = get_searcher().entities(type=etype, q=q or None, limit=50, offset=(page - 1) * 50)
    pages = max(1, math.ceil(result["total"] / 50))
    return render_template("entities.html", result=result, etype=etype, eq=q, page=page, pages=pages,
                           q="", mode="hybrid")


@bp.get("/entities/<path:entity_id>")
def entity(entity_id: str) -> Any:
    ent = get_searcher().entity(entity_id, limit=100)
    for m in ent["mentions"]:
        m["snippet_html"] = Markup(m["snippet"])  # built and escaped by search.snippets.highlight
        m["n"] = _paragraph_n(m["paragraph_id"])
    for qt in ent["quotes"]:
        qt["n"] = _paragraph_n(qt["paragraph_id"])
    seen = [s for s in ent.get("surfaces", []) if s != ent["name"]]
    offices, roles = _titles(ent.get("titles") or [])
    chart = bars([(b["period"], b["count"]) for b in ent["timeline"]["bins"]],
                 lambda period: url_for("pages.search", entity=entity_id, **{"from": period, "to": period}))
    return render_template("entity.html", ent=ent, seen=seen, offices=offices, roles=roles, q="",
                           mode="hybrid", chart=chart)


def _titles(titles: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Dated titles (``{title, start, end}``: offices held, earliest first) and undated ones (roles)."""
    offices, roles = [], []
    for t in titles:
        if t.get("start") or t.get("end"):
            offices.append(t)
        else:
            roles.append(t["title"])
    offices.sort(key=lambda t: (t.get("start") or "", t.get("end") or "9999", t["title"]))
    return offices, roles


@bp.get("/documents/<path:doc_id>")
def document(doc_id: str) -> Any:
    doc = get_searcher().document(doc_id)  # a dictionary lookup; the id never reaches the file system
    p = Params(request.args, get_settings())
    q = p.text("q")
    stems = query_stems(q) if q.strip() else set()
    paragraphs = [
        {"n": para["n"], "html": Markup(highlight(para["text"], stems=stems, links=para["links"])),
         "quotes": para["quotes"], "page": para.get("page"), "page_end": para.get("page_end"),
         "kind": para.get("kind", "")}
        for para in doc["paragraphs"]
    ]
    by_type: dict[str, list[dict[str, Any]]] = {t: [] for t in TYPE_LABELS}
    for e in doc["entities"]:
        by_type.get(e["type"], by_type["other"]).append(e)
    return render_template("document.html", doc=doc, paragraphs=paragraphs, by_type=by_type, q=q,
                           mode="hybrid")
