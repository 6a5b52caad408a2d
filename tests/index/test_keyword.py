"""The Whoosh keyword leg on its own: stemming, phrases, entity filters, bad syntax."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.errors import IndexMissing
from index.keyword import KeywordIndex, write_keyword_index

ROWS = [
    {
        "id": "a#0",
        "doc_id": "a",
        "title": "Lavrov on Ukraine",
        "text": "Lavrov rejected territorial concessions.",
        "entity": "Q1,Q2",
        "said": "Q1",
    },
    {
        "id": "a#1",
        "doc_id": "a",
        "title": "Lavrov on Ukraine",
        "text": "Rare earth metals were mentioned.",
        "entity": "Q1",
        "said": "",
    },
    {
        "id": "b#0",
        "doc_id": "b",
        "title": "Markets",
        "text": "Metal prices rose; earthy tones in rare form.",
        "entity": "Q3",
        "said": "",
    },
]


@pytest.fixture(scope="module")
def kw(tmp_path_factory: pytest.TempPathFactory) -> KeywordIndex:
    folder = tmp_path_factory.mktemp("kw") / "whoosh"
    assert write_keyword_index(folder, ROWS) == 3
    return KeywordIndex(folder)


def test_stemmed_match_and_ranking(kw: KeywordIndex) -> None:
    hits = kw.search(kw.parse("rare earth metal"), 10)
    assert hits[0][0] == "a#1"
    assert {h for h, _ in hits} == {"a#1", "b#0"}
    assert kw.count(kw.parse("concession")) == 1  # "concessions" stems to the same term


def test_phrase_query(kw: KeywordIndex) -> None:
    assert [h for h, _ in kw.search(kw.parse('"rare earth metals"'), 10)] == ["a#1"]


def test_title_field_matches(kw: KeywordIndex) -> None:
    assert {h for h, _ in kw.search(kw.parse("ukraine"), 10)} == {"a#0", "a#1"}


def test_entity_and_said_filters(kw: KeywordIndex) -> None:
    assert [h for h, _ in kw.search(kw.parse("rare"), 10, entities=["Q1"])] == ["a#1"]
    assert [h for h, _ in kw.search(None, 10, said=["Q1"])] == ["a#0"]
    assert sorted(kw.entity_paragraphs("Q1")) == ["a#0", "a#1"]
    assert kw.search(None, 10) == []


def test_field_syntax_is_not_exposed(kw: KeywordIndex) -> None:
    # "id:a#0" must be treated as words, not as a lookup on an internal field
    q = kw.parse("id:b#0 lavrov")
    assert {h for h, _ in kw.search(q, 10)} <= {"a#0", "a#1"}


@pytest.mark.parametrize(
    "text", ['"unbalanced', "((((a", "AND OR NOT", "*", "a~~~", "\x00", "a:b:c", "[a TO"]
)
def test_odd_syntax_never_crashes(kw: KeywordIndex, text: str) -> None:
    kw.search(kw.parse(text), 5)


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing):
        KeywordIndex(tmp_path)


def _whoosh_count(kw: KeywordIndex, query, entities=(), said=()) -> int:
    """The reference: Whoosh's own exact count of a filtered search."""
    from whoosh.query import Every

    from index.keyword import _filter

    filt = _filter(entities, said)
    q = query if query is not None else Every()
    return len(kw._searcher().search(q, limit=None, filter=filt))


@pytest.mark.parametrize(
    "text, entities, said",
    [
        ("rare earth metal", (), ()),
        ("rare OR lavrov", ("Q1",), ()),
        ("rare AND earth", (), ()),
        ('"rare earth metals" OR markets', (), ()),
        ("metal NOT lavrov", (), ()),
        ("nothingmatches", (), ()),
        ("", ("Q1",), ("Q1",)),
        ("", ("Q9",), ()),
    ],
)
def test_fast_count_equals_whoosh(kw: KeywordIndex, text: str, entities: tuple, said: tuple) -> None:
    q = kw.parse(text) if text else None
    assert kw.count(q, entities=entities, said=said) == _whoosh_count(kw, q, entities, said)


def test_fast_count_across_segments_and_deletions(tmp_path: Path) -> None:
    from whoosh import index as whoosh_index

    folder = tmp_path / "whoosh"
    rows = [{"id": f"p{i}", "doc_id": f"d{i}", "title": "news", "text": "alpha beta" if i % 2 else "alpha",
             "entity": "E1" if i % 3 == 0 else ""} for i in range(400)]
    write_keyword_index(folder, rows[:250])
    ix = whoosh_index.open_dir(str(folder))
    w = ix.writer()  # a second segment, and deletions in the first
    for row in rows[250:]:
        w.add_document(**{k: v for k, v in row.items() if v and k != "title"})
    w.delete_by_term("id", "p1")
    w.delete_by_term("id", "p3")
    w.commit(merge=False)
    kw = KeywordIndex(folder)
    try:
        assert len(kw.ix.reader().leaf_readers()) == 2
        assert kw.count(kw.parse("beta")) == 200 - 2 == _whoosh_count(kw, kw.parse("beta"))
        assert kw.count(kw.parse("alpha"), entities=["E1"]) == _whoosh_count(kw, kw.parse("alpha"), ["E1"])
        assert kw.count(None, entities=["E1"]) == 134 - 1  # p3 was deleted
    finally:
        kw.close()


def test_entity_count_array_equals_counting_each_paragraphs_links(tmp_path: Path) -> None:
    """Facet counts read the matched paragraphs' rows of the (paragraph → entities) table: for any set of
    global docnums (repeats, out-of-range and negative ones ignored) they equal counting each paragraph's
    entity field, across two segments."""
    import numpy as np
    from whoosh import index as whoosh_index

    rng = np.random.default_rng(7)
    ents = [",".join(sorted({f"E{int(x)}" for x in rng.integers(0, 9, size=int(rng.integers(0, 4)))}))
            for _ in range(300)]
    rows = [{"id": f"p{i}", "doc_id": f"d{i // 3}", "title": "t", "text": "word", "entity": e}
            for i, e in enumerate(ents)]
    folder = tmp_path / "whoosh"
    write_keyword_index(folder, rows[:180])
    w = whoosh_index.open_dir(str(folder)).writer()
    for row in rows[180:]:
        w.add_document(**{k: v for k, v in row.items() if v and k != "title"})
    w.commit(merge=False)
    kw = KeywordIndex(folder)
    try:
        assert len(kw.ix.reader().leaf_readers()) == 2
        pids = kw.allowed_ids(np.ones(300, dtype=bool))
        by_docnum = {d: ents[int(pid[1:])] for d, pid in enumerate(pids)}
        for _ in range(40):  # few sorted docnums: their rows; many, or unsorted: a pass over every pair
            drawn = rng.integers(-5, 320, size=int(rng.integers(0, 120)))
            for docnums in (drawn, np.unique(drawn), np.unique(drawn)[: int(rng.integers(0, 40))]):
                want: dict[str, int] = {}
                for d in set(docnums.tolist()):
                    for e in filter(None, by_docnum.get(d, "").split(",")):
                        want[e] = want.get(e, 0) + 1
                assert kw.entity_counts(docnums) == want
    finally:
        kw.close()


def test_segment_parts_are_separate_files_read_through_the_page_cache(tmp_path: Path) -> None:
    """No compound segment file: Whoosh opens a compound file's parts as in-memory copies, one per server
    worker; the parts as files of their own are read from the OS page cache. Searches are the same."""
    from whoosh.filedb.structfile import BufferFile

    folder = tmp_path / "whoosh"
    write_keyword_index(folder, ROWS)
    assert not list(folder.glob("*.seg")) and list(folder.glob("*.pst"))
    kw = KeywordIndex(folder)
    try:
        copies = []
        real = BufferFile.__init__

        def spy(self, *args, **kwargs):
            copies.append(kwargs.get("name") or (args[1] if len(args) > 1 else None))
            real(self, *args, **kwargs)

        BufferFile.__init__ = spy
        try:
            assert [h for h, _ in kw.search(kw.parse("lavrov"), 5)] == ["a#0", "a#1"]  # a#1 by its title
        finally:
            BufferFile.__init__ = real
        assert copies == []
    finally:
        kw.close()


def test_title_is_searched_with_the_text(tmp_path: Path) -> None:
    """One combined field: a title word finds every paragraph of the document, counted once."""
    folder = tmp_path / "whoosh"
    write_keyword_index(folder, ROWS)
    kw = KeywordIndex(folder)
    try:
        assert kw.fields == ["text"]
        hits = kw.search(kw.parse("lavrov"), 10)
        assert hits[0][0] == "a#0"  # title + text beat title alone
        assert {h for h, _ in hits} == {"a#0", "a#1"}
        assert kw.count(kw.parse('"ukraine rare earth"')) == 1  # a phrase may run from title into text
    finally:
        kw.close()


def test_vectorised_or_equals_whoosh(tmp_path: Path) -> None:
    """The numpy path for plain OR queries ranks and scores exactly like Whoosh's own matcher loop."""
    import random

    from index.keyword import _filter, _plain_terms

    rng = random.Random(7)
    words = ["rare", "earth", "metal", "minister", "talks", "peace", "war", "ukraine", "market", "bank"]
    rows = []
    for i in range(400):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 40)))
        ents = ",".join(sorted({f"E{rng.randint(0, 3)}" for _ in range(rng.randint(0, 2))}))
        row = {"id": f"d{i}#0", "doc_id": f"d{i}", "title": f"Story {i % 7}", "text": text, "entity": ents}
        rows.append(row)
    write_keyword_index(tmp_path / "w", rows)
    kw = KeywordIndex(tmp_path / "w")
    s = kw._searcher()
    for text in ["rare earth metals", "peace", "war talks bank story", "nothingmatches", "ukraine 3"]:
        q = kw.parse(text)
        assert _plain_terms(q) is not None
        for ents in ([], ["E1"], ["E1", "E2"]):
            got = kw.search(q, 50, entities=ents)
            want = [(h["id"], float(h.score)) for h in s.search(q, limit=50, filter=_filter(ents, []))]
            assert [g[0] for g in got] == [w[0] for w in want], (text, ents)
            assert all(abs(g[1] - w[1]) < 1e-6 for g, w in zip(got, want, strict=True))
            # the count that follows a search is remembered from it, and exact
            assert kw.count(q, entities=ents) == len(s.search(q, limit=None, filter=_filter(ents, [])))
    assert _plain_terms(kw.parse('"rare earth"')) is None  # phrases still go through Whoosh


def test_field_lengths_read_in_one_piece_equal_whoosh_per_document(tmp_path: Path) -> None:
    """BM25's document lengths come from Whoosh's length column in one read: the same values as asking
    Whoosh document by document, for long and short texts, a field some rows lack, and a later segment
    whose documents have no title at all."""
    from whoosh import index as whoosh_index

    from index.keyword import _column_lengths

    folder = tmp_path / "whoosh"
    rows = [{"id": f"p{i}", "doc_id": f"d{i}", "title": "news" if i % 4 else "",
             "text": " ".join(["storm"] * (1 + (i * 37) % 300))} for i in range(300)]
    write_keyword_index(folder, rows)
    ix = whoosh_index.open_dir(str(folder))
    w = ix.writer()
    for i in range(20):
        w.add_document(id=f"q{i}", doc_id=f"e{i}", text="calm " * (i + 1))
    w.commit(merge=False)
    kw = KeywordIndex(folder)
    try:
        readers = kw.ix.reader().leaf_readers()
        assert len(readers) == 2
        for reader, _ in readers:
            for field in ("text", "title", "no-such-field"):
                want = [reader.doc_field_length(d, field) or 0 for d in range(reader.doc_count_all())]
                got = _column_lengths(reader, field)
                assert got is not None and got.tolist() == want, field
                assert (max(want) > 0) == (field == "text")
    finally:
        kw.close()
