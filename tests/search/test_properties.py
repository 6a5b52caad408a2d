"""Property tests for the query side: query parsing, keyword parsing/search, snippet highlighting.

Whatever a user types, the answer is a result or ``BadQuery`` (400), never another exception; snippets
never let document text through unescaped.
"""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.errors import BadQuery
from index.keyword import KeywordIndex, write_keyword_index
from search.query import MAX_DEPTH, Query, parse_query
from search.snippets import highlight, query_stems

HOSTILE_TOKENS = st.one_of(
    st.characters(blacklist_categories=()),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.sampled_from(
        list('"()*?^~+-:\\/[]{}<>&\x00\n\t\u2028\ufeff') + ["AND", "OR", "NOT", "TO", "entity:", "said:", " "]
    ),
)
QUERY_TEXT = st.lists(HOSTILE_TOKENS, max_size=120).map("".join)
WORDS = st.sampled_from(["goats", "river", "boats", "Lavrov", "mountain", "the", "a", "EU", "U.S.", "talks"])
STRUCTURED = st.recursive(  # syntax-heavy queries: nesting, operators, phrases, filters
    WORDS,
    lambda q: st.one_of(
        q.map(lambda s: f"({s})"),
        st.tuples(q, st.sampled_from([" AND ", " OR ", " NOT ", " ", " -", " +"]), q).map("".join),
        q.map(lambda s: f'"{s}"'),
        q.map(lambda s: f"entity:{s}"),
        q.map(lambda s: s + "~2"),
        q.map(lambda s: s + "^3"),
    ),
    max_leaves=12,
)
ANY_QUERY = st.one_of(QUERY_TEXT, STRUCTURED, st.integers(0, 40).map(lambda n: "(" * n + "goats" + ")" * n))


def test_parse_query_limits() -> None:
    with pytest.raises(BadQuery, match="limit"):
        parse_query("x" * 1001)
    with pytest.raises(BadQuery, match="nests"):
        parse_query("(" * (MAX_DEPTH + 1) + "goats" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(BadQuery, match="empty"):
        parse_query("\x00 \u2028 ")
    assert parse_query("a\x00b").text == "a b"


@settings(max_examples=400, deadline=None)
@given(ANY_QUERY)
def test_parse_query_returns_query_or_bad_query(raw: str) -> None:
    try:
        q = parse_query(raw)
    except BadQuery as err:
        assert str(err)
        return
    assert isinstance(q, Query)
    for part in (q.text, q.plain, *q.entities, *q.said, *q.phrases):
        part.encode("utf-8")  # no lone surrogates, no control characters
        assert not any(ord(c) < 32 for c in part)
    assert q.text.count('"') % 2 == 0


@pytest.fixture(scope="module")
def keyword(tmp_path_factory: pytest.TempPathFactory) -> KeywordIndex:
    folder = tmp_path_factory.mktemp("kw") / "whoosh"
    rows = [
        {
            "id": f"d{i}#0",
            "doc_id": f"d{i}",
            "date": "2025-01-0" + str(i + 1),
            "title": title,
            "text": text,
            "entity": ent,
            "said": said,
        }
        for i, (title, text, ent, said) in enumerate(
            [
                ("River news", "River boats and mountain goats.", "local:org:river", ""),
                (
                    "Talks",
                    "Sergei Lavrov said talks with the EU and the U.S. would go on.",
                    "sergei-lavrov",
                    "sergei-lavrov",
                ),
                ("Goats", "Goats again, on a farm. “Quoted” text & <tags>.", "", ""),
            ]
        )
    ]
    write_keyword_index(folder, rows)
    ix = KeywordIndex(folder)
    yield ix
    ix.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ANY_QUERY, st.booleans())
def test_keyword_parse_and_search_raise_only_bad_query(keyword: KeywordIndex, raw: str, conj: bool) -> None:
    try:
        q = parse_query(raw)
        kq = keyword.parse(q.text, conjunctive=conj) if q.text else None
        hits = keyword.search(kq, 10, entities=q.entities, said=q.said)
        total = keyword.count(kq, entities=q.entities, said=q.said)
        if q.plain:
            keyword.parse(f'"{q.plain}"')  # the searcher's exact-phrase probe
    except BadQuery:
        return
    assert len(hits) <= 10 and total >= len(hits)
    assert all(pid.startswith("d") for pid, _ in hits)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ANY_QUERY, st.sampled_from(["keyword", "hybrid", "vector"]), st.booleans())
def test_searcher_answers_or_bad_query(seed_searcher, raw: str, mode: str, link: bool) -> None:
    try:
        result = seed_searcher.search(raw, mode=mode, limit=5, link_query=link)
    except BadQuery:
        return
    assert len(result["hits"]) <= 5
    for h in result["hits"]:
        _check_snippet(h["text"], h["snippet"], 300)


# ---------------------------------------------------------------------------------------------- snippets

_OURS = re.compile(r'<mark>|</mark>|<a class="ent ent-[^"<>]*" href="[^"<>]*" data-entity="[^"<>]*">|</a>')


def _check_snippet(text: str, out: str, size: int | None) -> None:
    stripped = _OURS.sub("", out)
    assert "<" not in stripped and ">" not in stripped, out
    visible = html.unescape(stripped)
    if visible.startswith("… ") and not text.startswith("… "):
        visible = visible[2:]
    if visible.endswith(" …") and not text.endswith(" …"):
        visible = visible[:-2]
    assert visible in text, (visible, text)
    if size is not None:
        assert len(visible) <= max(size, 0) or len(text) <= size
    else:
        assert visible == text
    assert out.count("<mark>") == out.count("</mark>") and out.count("<a ") == out.count("</a>")


SNIPPET_TEXT = st.lists(
    st.one_of(st.sampled_from(list("ab goats <>&\"'.\n") + ["river", "Lavrov "]), HOSTILE_TOKENS),
    max_size=300,
).map("".join)


@st.composite
def _links(draw: st.DrawFn, text: str) -> list[dict]:
    n = len(text)
    spans = draw(st.lists(st.tuples(st.integers(-5, n + 5), st.integers(-5, n + 5)), max_size=6))
    ids = st.one_of(st.sampled_from(["sergei-lavrov", "local:org:x"]), QUERY_TEXT)
    return [
        {
            "start": s,
            "end": e,
            "text": text[max(s, 0) : max(e, 0)],
            "entity_id": draw(ids),
            "type": draw(st.one_of(st.none(), st.sampled_from(["person", "org"]), QUERY_TEXT)),
        }
        for s, e in spans
    ]


@settings(max_examples=500, deadline=None)
@given(st.data(), SNIPPET_TEXT, st.one_of(st.none(), st.integers(1, 400)))
def test_highlight_escapes_everything_and_shows_a_window(
    data: st.DataObject, text: str, size: int | None
) -> None:
    links = data.draw(_links(text))
    words = data.draw(st.lists(st.sampled_from(text.split() or ["x"]), max_size=4))
    stems = query_stems(" ".join(words))
    out = highlight(text, stems=stems, links=links, size=size)
    _check_snippet(text, out, size)


def test_highlight_window_prefers_valid_links_over_invalid_ones() -> None:
    text = "word " * 200 + "Lavrov spoke."
    pos = text.index("Lavrov")
    links = [
        {"start": 8, "end": 2, "entity_id": "bad"},
        {"start": 10_000, "end": 10_006, "entity_id": "bad"},
        {"start": pos, "end": pos + 6, "entity_id": "sergei-lavrov", "type": "person"},
    ]
    out = highlight(text, links=links, size=60)
    assert 'data-entity="sergei-lavrov">Lavrov</a>' in out


def test_seed_snippets_are_escaped(seed_searcher) -> None:
    for q in ("Lavrov", "rare earth metals", "Ukraine territory"):
        for h in seed_searcher.search(q, mode="keyword", limit=5)["hits"]:
            _check_snippet(h["text"], h["snippet"], 300)


TOKEN_TEXT = st.lists(  # words, dotted abbreviations, numbers, stop words, odd case and scripts
    st.one_of(st.sampled_from(["The", "talks", "TALKING", "U.S.", "e.g.", "3.14", "a", "an", "Running",
                               "runs", "naïve", "İstanbul", "ﬁnance", "x.y.z", "..", "_", "'s", "don't"]),
              HOSTILE_TOKENS),
    max_size=200,
).map(lambda parts: " ".join(parts) if len(parts) % 2 else "".join(parts))


@settings(max_examples=400, deadline=None)
@given(TOKEN_TEXT, st.lists(st.sampled_from(["talks", "talking", "u.s", "run", "the", "a", "finance",
                                             "naïv", "3.14", "x.y.z", "don't", "istanbul"]), max_size=5))
def test_term_spans_are_the_analyzers_tokens(text: str, stems: list[str]) -> None:
    """Snippets find query terms with one regex scan (``search.snippets._Chain``); the spans are exactly
    those of the index's Whoosh analyzer, token by token."""
    from search import snippets

    assert snippets._CHAIN is not None  # the index analyzer has the shape the fast path knows
    want_stems = set(stems) | query_stems(text[:40])
    want = [(t.startchar, t.endchar) for t in snippets._ANALYZER(text, chars=True) if t.text in want_stems]
    assert snippets.term_spans(text, want_stems) == want
