"""The query side over the real seed index: hybrid, entity leg, filters, totals, grouping, errors."""

from __future__ import annotations

import pytest

from index.errors import BadQuery, NotFound

LAVROV = "sergei-lavrov"


def ids(result) -> list[str]:
    return [h["paragraph_id"] for h in result["hits"]]


def test_query_name_links_and_finds_title_mentions(seed_searcher) -> None:
    """A query "Lavrov" reaches paragraphs that only say "the Russian foreign minister"."""
    result = seed_searcher.search("Lavrov", limit=30)
    assert [e["id"] for e in result["linked"]] == [LAVROV]
    texts = [h["text"] for h in result["hits"]]
    assert any(t.startswith("The Russian foreign minister also said") for t in texts)
    entity_hits = [h for h in result["hits"] if h["explain"].get("entity")]
    assert entity_hits and all(LAVROV in h["entities"] for h in entity_hits)


def test_entity_filter_and_said_filter(seed_searcher) -> None:
    filtered = seed_searcher.search("war", entities=[LAVROV], limit=50)
    assert filtered["hits"] and all(LAVROV in h["entities"] for h in filtered["hits"])
    said = seed_searcher.search(f"said:{LAVROV}", limit=50, mode="keyword")
    texts = " ".join(h["text"] for h in said["hits"])
    assert "rare earth metals" in texts and "Territorial concessions" in texts
    assert all(any(q["speaker"] == LAVROV for q in h["quotes"]) for h in said["hits"])


def test_vector_leg_matches_other_words(seed_searcher) -> None:
    """Other words than the text: "giving up land to Kyiv" reaches the territorial-concessions quote."""
    result = seed_searcher.search("giving up land to Kyiv", mode="vector", limit=3)
    assert any("erritorial concessions" in h["text"] for h in result["hits"])
    keyword = seed_searcher.search("giving up land to Kyiv", mode="keyword", limit=50)
    assert not any("erritorial concessions" in h["text"] for h in keyword["hits"])


def test_every_hit_explains_each_leg(seed_searcher) -> None:
    result = seed_searcher.search("peace talks in Riyadh", limit=10)
    assert result["legs"][:2] == ["keyword", "vector"]
    for h in result["hits"]:
        assert set(result["legs"]) == set(h["explain"])
        assert any(v is not None for v in h["explain"].values())


def test_exact_phrase_never_below_vector_only(seed_searcher) -> None:
    result = seed_searcher.search('"security guarantees"', limit=21)
    exact = [i for i, h in enumerate(result["hits"]) if "security guarantees" in h["text"]]
    vector_only = [
        i
        for i, h in enumerate(result["hits"])
        if h["explain"]["vector"] and not h["explain"]["keyword"] and not h["explain"].get("entity")
    ]
    assert exact and (not vector_only or max(exact) < min(vector_only))


def test_pagination_and_totals_are_consistent(seed_searcher) -> None:
    first = seed_searcher.search("Ukraine", mode="keyword", limit=3)
    total = first["total"]
    seen = []
    for off in range(0, total, 3):
        seen += ids(seed_searcher.search("Ukraine", mode="keyword", limit=3, offset=off))
    assert len(seen) == len(set(seen)) == total
    hybrid = seed_searcher.search("Ukraine", limit=100)
    assert hybrid["total"] == len(hybrid["hits"])


@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
def test_group_by_document(seed_searcher, fusion: str) -> None:
    result = seed_searcher.search("Zelenskyy peace", group=True, fusion=fusion)
    assert result["total"] == 1 and len(result["groups"]) == 1
    g = result["groups"][0]
    assert g["hits"][0]["score"] >= g["hits"][-1]["score"]


def test_facets_count_entities_over_results(seed_searcher) -> None:
    result = seed_searcher.search("Ukraine", mode="keyword", limit=5)
    people = {f["id"]: f["count"] for f in result["facets"]["person"]}
    assert people.get(LAVROV, 0) >= 1
    places = {f["id"] for f in result["facets"]["place"]}
    assert "ukraine" in places


@pytest.mark.parametrize(
    "kwargs",
    [
        {"q": ""},
        {"q": "x" * 5000},
        {"q": "a", "limit": 0},
        {"q": "a", "limit": 10_000},
        {"q": "a", "offset": -1},
        {"q": "a", "mode": "magic"},
        {"q": "a", "fusion": "max"},
        {"q": "(" * 20 + "a"},
    ],
)
def test_bad_queries_raise_bad_query(seed_searcher, kwargs) -> None:
    with pytest.raises(BadQuery):
        seed_searcher.search(**kwargs)


def test_documents_and_entities(seed_searcher) -> None:
    doc = seed_searcher.document("000_f549e937e1170963.txt")
    assert doc["title"].startswith("Russian Foreign Minister") and len(doc["paragraphs"]) > 20
    ent = seed_searcher.entity(LAVROV)
    assert ent["name"] == "Sergei Lavrov" and ent["mention_count"] >= 5
    rare = next(q for q in ent["quotes"] if "rare earth metals" in q["text"])
    assert (rare["cue"], rare["how"]) == ("asked", "explicit")  # "“…?” Lavrov then asked."
    assert any(c["id"] == "marco-rubio" for c in ent["co_mentioned"])
    listing = seed_searcher.entities(type="person")
    assert listing["entities"][0]["type"] == "person"
    with pytest.raises(NotFound):
        seed_searcher.entity("nobody")
    with pytest.raises(NotFound):
        seed_searcher.document("../etc/passwd")


def test_query_vectors_are_cached_and_equal(seed_searcher) -> None:
    first = seed_searcher.embed_query("peace talks in Riyadh")
    again = seed_searcher.embed_query("peace talks in Riyadh")
    assert again is first
    fresh = seed_searcher.encoder().encode(["peace talks in Riyadh"])[0]
    assert abs(float(fresh @ first) - 1.0) < 1e-5


def test_a_failing_leg_is_a_clean_error_and_the_next_query_works(seed_index, monkeypatch) -> None:
    """The vector leg runs beside the linking and the keyword and entity legs: an error in either side
    reaches the caller as itself, and the searcher answers the next query."""
    from search.searcher import Searcher

    settings, _ = seed_index
    searcher = Searcher.open(settings)
    want = searcher.search("Lavrov sanctions", limit=5)
    searcher._qcache.clear()

    class Broken:
        def encode(self, *a, **kw):  # noqa: ANN002, ANN003
            raise RuntimeError("encoder failed")

    encoder = searcher.encoder()
    monkeypatch.setattr(searcher, "_encoder", Broken())
    with pytest.raises(RuntimeError, match="encoder failed"):
        searcher.search("Lavrov sanctions", limit=5)
    monkeypatch.setattr(searcher, "_encoder", encoder)

    def broken_link(query):  # noqa: ANN001, ANN202
        raise RuntimeError("linker failed")

    monkeypatch.setattr(searcher, "_link_query", broken_link)
    with pytest.raises(RuntimeError, match="linker failed"):
        searcher.search("Lavrov sanctions", limit=5)
    monkeypatch.undo()
    got = searcher.search("Lavrov sanctions", limit=5)
    got.pop("took_ms"), want.pop("took_ms")
    assert got == want
