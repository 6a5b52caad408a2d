"""The posting arrays (index/postings.py) answer exactly what Whoosh answers, and ``KeywordIndex.matching``
(the exact-phrase guard's question) equals a full Whoosh search restricted to the asked paragraphs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from index.keyword import KeywordIndex, Restrict, _term_postings, write_keyword_index
from index.postings import read_postings, write_postings

WORDS = ("peace talks gas prices storm the of a in damage final football league title winter supply "
         "talks peace storm gas").split()  # repeated words: dense postings, phrases with many near misses
ENTITIES = ("Q1", "Q2", "Q3", "Q4")
QUERIES = ["peace talks", "storm", "gas prices winter", "football OR league", "talks AND storm",
           "peace -storm", "title NOT final", '"peace talks"', '"gas prices" storm', "damage"]
PHRASES = ['"peace talks"', '"talks peace"', '"peace talks storm"', '"gas prices"~3', '"storm storm"',
           '"the storm damage"', '"league title"', '"winter supply" OR "final football"', '"peace"',
           '"talks gas" AND storm', "storm -peace", "zzz"]


def _rows(n: int, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        doc = f"d{i // 3}"
        rows.append({
            "id": f"{doc}#{i % 3}", "doc_id": doc, "title": " ".join(rng.choices(WORDS, k=3)),
            "text": " ".join(rng.choices(WORDS, k=rng.randint(4, 30))),
            "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" if i % 7 else "",
            "entity": ",".join(sorted(set(rng.choices(ENTITIES, k=rng.randint(0, 2))))),
            "said": rng.choice(["", "", "Q1", "Q2"]),
        })
    return rows


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeywordIndex, KeywordIndex, Path]:
    """The same Whoosh index read through Whoosh alone and through the posting arrays."""
    root = tmp_path_factory.mktemp("postings")
    write_keyword_index(root / "whoosh", _rows(600))
    assert write_postings(root / "whoosh", root / "postings")
    return KeywordIndex(root / "whoosh"), KeywordIndex(root / "whoosh", postings=root / "postings"), root


def test_every_posting_list_is_whooshs(pair) -> None:
    plain, _, root = pair
    arrays = read_postings(root / "postings")
    reader = plain._searcher().reader()
    assert arrays is not None and arrays.segment == reader.segment().segment_id()
    for field in ("text", "entity", "said", "doc_id", "date"):
        terms = list(reader.field_terms(field))
        assert terms or field == "said"
        for term in terms:
            ids, weights = _term_postings(reader, field, term)
            got_ids, got_w = arrays.postings(field, term)
            assert np.array_equal(ids, got_ids) and np.array_equal(weights, got_w), (field, term)
            if field == "text":
                want = dict(reader.postings(field, term).items_as("positions"))
                assert arrays.positions(field, term, ids) == [list(want[d]) for d in ids.tolist()]
    assert arrays.postings("text", "no-such-term")[0].size == 0
    assert arrays.positions("text", "storm", np.array([10**6])) == [None]


@pytest.mark.parametrize("restrict", [None, Restrict(exclude="damage"), Restrict(date_from="2024-03-01"),
                                      Restrict(exclude='"peace talks"', whole_documents=True),
                                      Restrict(exclude_entities=("Q2",), date_to="2024-06-30")])
@pytest.mark.parametrize("entities", [(), ("Q1",), ("Q1", "Q3")])
def test_searches_are_identical_with_arrays(pair, restrict, entities) -> None:
    plain, fast, _ = pair
    assert fast._segment_arrays(fast._searcher().reader()) is not None  # the arrays are what is read
    for text in QUERIES:
        q = plain.parse(text)
        kw = {"entities": entities, "restrict": restrict}
        assert fast.search(q, 50, **kw) == plain.search(q, 50, **kw), text
        assert fast.count(q, **kw) == plain.count(q, **kw), text
        a, b = fast.matches(q, **kw), plain.matches(q, **kw)
        for col in ("docnums", "scores", "doc_ords", "days"):
            assert np.array_equal(getattr(a, col), getattr(b, col)), (text, col)
    if entities:
        assert fast.search(None, 10**6, entities=entities) == plain.search(None, 10**6, entities=entities)


def test_matching_equals_a_full_search_within_the_asked_paragraphs(pair) -> None:
    plain, fast, _ = pair
    rng = random.Random(3)
    pids = [pid for pid, _ in plain.search(plain.parse(" OR ".join(set(WORDS))), 10**6)]
    for text in PHRASES:
        q = plain.parse(text)
        if q is None:
            continue
        everywhere = {hit["id"] for hit in plain._searcher().search(q, limit=None)}
        for size in (1, 25, 200, len(pids)):
            asked = rng.sample(pids, size) + ["not-a-paragraph"]
            want = everywhere & set(asked)
            assert plain.matching(q, asked) == want, (text, size)
            assert fast.matching(q, asked) == want, (text, size)
    assert any(plain.matching(plain.parse(t), pids) for t in PHRASES[:3])  # the test exercises matches


def test_a_stale_array_folder_is_ignored(tmp_path: Path) -> None:
    """Arrays written for another segment (a rebuilt Whoosh index) are not used."""
    write_keyword_index(tmp_path / "a", _rows(60, seed=1))
    write_keyword_index(tmp_path / "b", _rows(60, seed=2))
    assert write_postings(tmp_path / "a", tmp_path / "postings")
    plain, mixed = KeywordIndex(tmp_path / "b"), KeywordIndex(tmp_path / "b", postings=tmp_path / "postings")
    assert mixed._segment_arrays(mixed._searcher().reader()) is None
    q = plain.parse("peace talks storm")
    assert mixed.search(q, 100) == plain.search(q, 100)


def _array_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("languages", [(), ("de",)])
def test_arrays_gathered_while_writing_equal_the_arrays_read_back(tmp_path: Path, languages) -> None:
    """A build gathers the arrays as Whoosh writes its segment; they are byte for byte what reading the
    finished index back gives (same segment id, terms, docnums, float32 weights, positions)."""
    rows = _rows(400, seed=5)
    for i, row in enumerate(rows):
        row["lang"] = "de" if languages and i % 4 == 0 else "en"
    write_keyword_index(tmp_path / "whoosh", rows, languages=languages, postings=tmp_path / "gathered")
    assert write_postings(tmp_path / "whoosh", tmp_path / "read")
    gathered, read = _array_files(tmp_path / "gathered"), _array_files(tmp_path / "read")
    assert sorted(gathered) == sorted(read)
    assert any(name.startswith("text_de.") for name in read) == bool(languages)
    for name in read:
        assert gathered[name] == read[name], name
    fast = KeywordIndex(tmp_path / "whoosh", postings=tmp_path / "gathered")
    assert fast._segment_arrays(fast._searcher().reader()) is not None


def _block_stats(folder: Path) -> list[tuple]:
    """Per term and posting block: Whoosh's length and weight bounds, docnums, weights and values."""
    from whoosh import index as whoosh_index

    out: list[tuple] = []
    with whoosh_index.open_dir(str(folder)).reader() as reader:
        for field in ("text", "entity", "said", "doc_id", "date"):
            for term in reader.field_terms(field):
                info = reader.term_info(field, term)
                out.append((field, term, info.weight(), info.doc_frequency(), info.min_length(),
                            info.max_length(), info.max_weight()))
                m = reader.postings(field, term)
                while m.is_active():
                    out.append((m.block_min_length(), m.block_max_length(), m.block_max_weight(), m.id(),
                                m.weight(), m.value()))
                    m.next()
    return out


def test_lengths_read_per_field_keep_the_segment_whooshs(tmp_path: Path, monkeypatch) -> None:
    """The writer's document lengths, read once per field, give the same block and term statistics as
    Whoosh asking its column reader for each posting."""
    rows = _rows(700, seed=9)  # > 128 postings for common words: several blocks per term
    write_keyword_index(tmp_path / "fast", rows)
    import index.keyword

    monkeypatch.setattr(index.keyword, "_lengths_per_field", lambda _writer: None)
    write_keyword_index(tmp_path / "plain", rows)
    fast, plain = _block_stats(tmp_path / "fast"), _block_stats(tmp_path / "plain")
    assert len(plain) > 1000 and fast == plain
