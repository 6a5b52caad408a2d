"""Issue 15 through the API (Flask test client) on a generated news archive of a few thousand dated
articles: exclusion, date range and order, paging to the last page, near-duplicates, exports, facets."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.search.newsgen import FORMULA_ID, Article
from tests.web.test_api import validate
from web import create_app

RUSSIA = re.compile(r"\brussia\b", re.I)


@pytest.fixture(scope="module")
def news(news_index) -> tuple[FlaskClient, dict[str, Article]]:  # type: ignore[no-untyped-def]
    settings, articles = news_index
    app = create_app(settings)
    with app.test_client() as c:
        yield c, {a.id: a for a in articles}


def _get(client: FlaskClient, **params: Any) -> dict[str, Any]:
    resp = client.get("/api/search", query_string=params)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    validate(body, "SearchResult")
    return body


def _all_groups(client: FlaskClient, **params: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every group of every page, with the total each page reported."""
    offset = 0
    while True:
        body = _get(client, group="true", limit=100, offset=offset, **params)
        yield from ((body["total"], g) for g in body["groups"])
        offset += 100
        if offset >= body["total"]:
            return


def _text(a: Article) -> str:
    return a.title + "\n" + "\n".join(a.paragraphs)


def _has(a: Article, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", _text(a), re.I) is not None


# ----------------------------------------------------------------------------------------- exclusion
def test_excluded_word_leaves_out_every_document_that_has_it(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news
    for mode in ("hybrid", "keyword", "vector"):
        seen = [g["doc_id"] for _, g in _all_groups(client, q="storm -Russia", mode=mode, duplicates="show")]
        assert seen and not [d for d in seen if _has(arts[d], "russia")], mode
    body = _get(client, q="storm NOT Russia", group="true", duplicates="show", mode="keyword")
    truth = [a for a in arts.values() if _has(a, "storm") and not _has(a, "russia")]
    assert body["total"] == len(truth)
    assert body["filters"]["exclude"] == ["Russia"] and body["query"] == "storm NOT Russia"


def test_excluded_word_is_neither_linked_nor_embedded(news) -> None:  # type: ignore[no-untyped-def]
    client, _ = news
    body = _get(client, q="Ukraine -Russia")
    assert [e["id"] for e in body["linked"]] == ["ukraine"]  # Russia is a registry name, but excluded
    assert "entity" in body["legs"] and body["hits"]
    assert not [h for h in body["hits"] if RUSSIA.search(h["text"])]  # every leg, paragraph by paragraph


def test_ungrouped_exclusion_is_per_paragraph(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news
    body = _get(client, q="Paris -Riyadh", mode="keyword", limit=100)
    assert body["hits"] and not [h for h in body["hits"] if "riyadh" in h["text"].lower()]
    # A paragraph without Riyadh is kept even when another paragraph of its document has it.
    assert [h for h in body["hits"] if _has(arts[h["doc_id"]], "riyadh")]


def test_excluded_phrase_and_entity(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news
    phrase = list(_all_groups(client, q='Paris NOT "peace talks"', mode="keyword", duplicates="show"))
    assert phrase and not [g for _, g in phrase if "peace talks" in _text(arts[g["doc_id"]]).lower()]
    assert phrase[0][0] == len([a for a in arts.values()
                                if _has(a, "paris") and "peace talks" not in _text(a).lower()])
    ent = _get(client, q="gas prices -entity:moscow", limit=100, mode="keyword")
    assert ent["hits"] and all("moscow" not in h["entities"] for h in ent["hits"])
    assert ent["filters"]["exclude_entities"] == ["moscow"]


def test_excluded_speaker_on_the_seed_index(client: FlaskClient) -> None:
    said = client.get("/api/search", query_string={"q": "rare earth metals", "limit": 50}).get_json()
    assert any(q["speaker"] == "sergei-lavrov" for h in said["hits"] for q in h["quotes"])
    body = client.get("/api/search", query_string={"q": "rare earth metals NOT said:sergei-lavrov",
                                                    "limit": 50}).get_json()
    speakers = {q["speaker"] for h in body["hits"] for q in h["quotes"]}
    assert body["hits"] and "sergei-lavrov" not in speakers


def test_a_query_of_only_exclusions_is_a_400(news) -> None:  # type: ignore[no-untyped-def]
    client, _ = news
    resp = client.get("/api/search", query_string={"q": "-Russia"})
    assert resp.status_code == 400 and "only excludes" in resp.get_json()["error"]


# ---------------------------------------------------------------------------------------------- time
def test_dates_are_stored_as_iso_whatever_the_source_wrote(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news
    for doc_id in ("a00001", "a00002", "a00003", "a00004"):  # four different ways of writing a date
        doc = client.get(f"/api/documents/{doc_id}").get_json()
        assert doc["date"] == arts[doc_id].day.isoformat()


def test_date_range_filters_every_leg(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news
    groups = list(_all_groups(client, q="storm", duplicates="show", **{"from": "2024-02", "to": "2024-03"}))
    assert groups
    assert all("2024-02-01" <= g["date"] <= "2024-03-31" for _, g in groups)
    truth = [a for a in arts.values() if _has(a, "storm") and a.day and "2024-02-01" <= a.day.isoformat()
             <= "2024-03-31"]
    kw = _get(client, q="storm", group="true", mode="keyword", duplicates="show", **{"from": "2024-02",
                                                                                     "to": "2024-03"})
    assert kw["total"] == len(truth)
    assert kw["filters"]["from"] == "2024-02-01" and kw["filters"]["to"] == "2024-03-31"
    only_from = _get(client, q="storm", mode="vector", limit=50, **{"from": "2025-06-15"})
    assert only_from["hits"] and all(h["date"] and h["date"] >= "2025-06-15" for h in only_from["hits"])


def test_sort_by_date_newest_first_and_undated_last(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news
    groups = [g for _, g in _all_groups(client, q="flooding", sort="date", duplicates="show")]
    dates = [g["date"] for g in groups]
    dated = [d for d in dates if d]
    assert dated == sorted(dated, reverse=True)
    undated = [i for i, d in enumerate(dates) if d is None]
    assert undated and undated == list(range(len(dates) - len(undated), len(dates)))  # all at the end
    hits = _get(client, q="flooding", sort="date", limit=100)["hits"]
    hit_dates = [h["date"] for h in hits if h["date"]]
    assert hit_dates == sorted(hit_dates, reverse=True)


def test_timeline_counts_the_matched_documents(news) -> None:  # type: ignore[no-untyped-def]
    client, _ = news
    body = _get(client, q="storm", group="true", **{"from": "2024-01-01", "to": "2024-12-31"})
    tl = body["timeline"]
    assert tl["unit"] == "month" and [b["period"] for b in tl["bins"]][0] >= "2024-01"
    assert sum(b["count"] for b in tl["bins"]) == body["total"]
    narrow = _get(client, q="storm", group="true", **{"from": "2024-03", "to": "2024-03"})
    assert narrow["timeline"]["unit"] == "day"


@pytest.mark.parametrize("params, message", [
    ({"from": "2025-13"}, "not a calendar date"), ({"from": "yesterday"}, "ISO date"),
    ({"from": "2025-03", "to": "2025-01"}, "is after"), ({"sort": "newest"}, "sort must be one of"),
    ({"duplicates": "hide"}, "duplicates must be one of"), ({"format": "xml"}, "format must be one of"),
    ({"offset": "10001"}, "offset must be an integer from 0 to 10000"),
])
def test_bad_time_and_paging_parameters_are_400(news, params: dict[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = news
    resp = client.get("/api/search", query_string={"q": "storm", **params})
    assert resp.status_code == 400 and message in resp.get_json()["error"]


# -------------------------------------------------------------------------------------------- paging
def test_grouped_pages_reach_every_keyword_match_without_repeats(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news
    truth = {a.id for a in arts.values() if _has(a, "football")}
    assert len(truth) > 300  # far more than the fused window of 100 paragraphs
    seen: list[str] = []
    totals = set()
    for total, g in _all_groups(client, q="football", duplicates="show"):
        totals.add(total)
        seen.append(g["doc_id"])
    assert len(totals) == 1 and len(seen) == totals.pop()
    assert len(seen) == len(set(seen))  # no page repeats a document
    assert truth <= set(seen)  # none skipped
    assert len(set(seen) - truth) <= 100  # the vector leg adds only its window's neighbours
    beyond = _get(client, q="football", group="true", duplicates="show", offset=len(seen) - 1)["groups"]
    assert beyond[0]["hits"] and beyond[0]["hits"][0]["explain"]["keyword"]  # ranked by the keyword leg


def test_keyword_mode_total_is_exact(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news
    body = _get(client, q="Riyadh", group="true", mode="keyword", duplicates="show")
    assert body["total"] == len([a for a in arts.values() if _has(a, "riyadh")])


# ---------------------------------------------------------------------------------------- duplicates
def test_wire_copies_collapse_and_stay_searchable(news) -> None:  # type: ignore[no-untyped-def]
    client, arts = news

    def story(doc_id: str) -> str:  # the original a chain of copies goes back to
        while arts[doc_id].copy_of:
            doc_id = arts[doc_id].copy_of
        return doc_id

    shown = [g for _, g in _all_groups(client, q="heatwave", mode="keyword", duplicates="show")]
    collapsed = [g for _, g in _all_groups(client, q="heatwave", mode="keyword")]
    stories = Counter(story(g["doc_id"]) for g in shown)
    assert [s for s, n in stories.items() if n > 1], "the generated corpus has copies of heatwave stories"
    # Collapsed: one result per story; its copies are listed under it, and every copy is still reachable.
    assert sorted(story(g["doc_id"]) for g in collapsed) == sorted(stories)
    for g in collapsed:
        assert {story(d["doc_id"]) for d in g["similar"]} <= {story(g["doc_id"])}
        assert len(g["similar"]) == stories[story(g["doc_id"])] - 1
    assert {g["doc_id"] for g in shown} == {d["doc_id"] for g in collapsed for d in [g, *g["similar"]]}
    assert all(not g["similar"] for g in shown)


# ------------------------------------------------------------------------------------------- exports
def test_csv_export_has_every_page_and_escapes_formulas(news) -> None:  # type: ignore[no-untyped-def]
    client, _ = news
    resp = client.get("/api/search", query_string={"q": "storm", "format": "csv", "mode": "keyword"})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    total = _get(client, q="storm", mode="keyword")["total"]
    assert len(rows) == total > 100  # all pages, not the first
    assert list(rows[0]) == ["paragraph_id", "doc_id", "date", "title", "score", "snippet", "entity_ids",
                             "entity_names"]
    formula = [r for r in rows if r["doc_id"] == FORMULA_ID]
    assert formula and all(r["title"].startswith("'=HYPERLINK") for r in formula)
    assert any(r["snippet"].startswith(("'+44", "'@agency")) for r in formula)
    for r in rows:
        assert not r["title"].startswith(("=", "+", "-", "@"))
    paris = [r for r in formula if "paris" in r["entity_ids"]]
    assert paris and "Paris" in paris[0]["entity_names"]


def test_jsonl_export_of_grouped_results(news) -> None:  # type: ignore[no-untyped-def]
    client, _ = news
    params = {"q": "Riyadh", "group": "true", "format": "jsonl", "duplicates": "show", "mode": "keyword"}
    resp = client.get("/api/search", query_string=params)
    assert resp.status_code == 200 and resp.mimetype == "application/x-ndjson"
    rows = [json.loads(line) for line in resp.get_data(as_text=True).splitlines()]
    groups = [g for _, g in _all_groups(client, q="Riyadh", mode="keyword", duplicates="show")]
    assert [r["paragraph_id"] for r in rows] == [h["paragraph_id"] for g in groups for h in g["hits"]]
    assert all(isinstance(r["entity_ids"], list) and "<" not in r["snippet"] for r in rows)
    bad = client.get("/api/search", query_string={"q": "-x", "format": "csv"})
    assert bad.status_code == 400 and bad.is_json


# -------------------------------------------------------------------------------------------- facets
def test_facets_count_every_keyword_match(news) -> None:  # type: ignore[no-untyped-def]
    client, _ = news
    body = _get(client, q="pipeline", mode="keyword")
    assert body["facet_scope"] == "matches" and body["total"] > 100
    rows = [json.loads(line) for line in client.get("/api/search", query_string={
        "q": "pipeline", "mode": "keyword", "format": "jsonl"}).get_data(as_text=True).splitlines()]
    assert len(rows) == body["total"]
    truth = Counter(e for r in rows for e in r["entity_ids"])
    for bucket in body["facets"].values():
        for f in bucket:
            assert f["count"] == truth[f["id"]], f
