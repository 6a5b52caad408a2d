"""Property tests for ingestion and paragraph splitting: hostile input is reported, never raised.

(The basic paragraph round trip is ``test_documents.test_paragraph_offsets_always_round_trip``; these add
titles, coverage and size bounds.)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from index.documents import normalize_text, read_corpus, split_paragraphs
from index.errors import IngestError
from index.records import Document

HOSTILE_CHARS = st.one_of(
    st.characters(blacklist_categories=()),
    st.integers(0xD800, 0xDFFF).map(chr),  # lone surrogates: what JSON "\ud800" escapes decode to
    st.sampled_from(["\x00", "\r", "\u2028", "\u00a0", "\ufeff", "<", "&", '"', "\n", " "]),
)
ANY_TEXT = st.text(alphabet=HOSTILE_CHARS, max_size=400)
SUFFIXES = st.sampled_from([".txt", ".md", ".html", ".htm", ".jsonl", ".ndjson", ".png", ""])
CONTENT = st.one_of(
    st.binary(max_size=600),
    ANY_TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")),
    ANY_TEXT.map(
        lambda s: ("<html><body><article><p>" + s + "</p></article></body></html>").encode("utf-8", "replace")
    ),
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
JSON_OBJECT = st.fixed_dictionaries(
    {}, optional={k: JSON_VALUE for k in ("id", "_id", "title", "text", "date", "url", "source", "author")}
)
PLAUSIBLE_OBJECT = st.fixed_dictionaries(  # mostly valid documents with hostile strings
    {"id": ANY_TEXT | st.integers(), "text": ANY_TEXT},
    optional={k: ANY_TEXT | st.none() for k in ("title", "date", "url", "source", "author")},
)
JSONL_LINE = st.one_of(
    JSON_OBJECT.map(lambda o: json.dumps(o, ensure_ascii=False)),
    PLAUSIBLE_OBJECT.map(lambda o: json.dumps(o, ensure_ascii=False)),
    PLAUSIBLE_OBJECT.map(json.dumps),  # \uXXXX escapes: lone surrogates reach the decoded strings
    JSON_VALUE.map(json.dumps),
    ANY_TEXT,
).map(lambda s: s.encode("utf-8", "surrogatepass"))


def _check_corpus(root: Path) -> None:
    corpus = read_corpus(root)
    for err in corpus.skipped:
        assert isinstance(err, IngestError) and err.where and err.reason
    ids = [d.id for d in corpus.documents]
    assert len(ids) == len(set(ids))
    for doc in corpus.documents:
        assert doc.text.strip() and doc.id.strip() and isinstance(doc.title, str)
        assert "\x00" not in doc.text and "\r" not in doc.text
        assert len(doc.fingerprint) == 16
        for p in split_paragraphs(doc, 200):
            assert doc.text[p.start : p.end] == p.text
        json.dumps(doc.to_dict(), ensure_ascii=False).encode("utf-8")  # the build writes UTF-8 JSONL


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(SUFFIXES, CONTENT), min_size=1, max_size=5))
def test_random_files_never_crash_read_corpus(files: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (suffix, data) in enumerate(files):
            (root / f"f{i}{suffix}").write_bytes(data)
        _check_corpus(root)
        corpus = read_corpus(root)
        # every file is either read or reported (a JSONL file may be both: some lines good, some bad)
        read = {(d.path or "").split(":")[0] for d in corpus.documents}
        reported = {e.where.split(":")[0] for e in corpus.skipped}
        assert {f"f{i}{s}" for i, (s, _) in enumerate(files)} <= read | reported


@settings(max_examples=150, deadline=None)
@given(st.lists(JSONL_LINE, min_size=1, max_size=8), st.sampled_from([b"\n", b"\r\n"]))
def test_random_jsonl_lines_are_read_or_reported(lines: list[bytes], sep: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.jsonl"
        path.write_bytes(sep.join(lines))
        _check_corpus(path)
        corpus = read_corpus(path)
        nonblank = [ln for ln in sep.join(lines).split(b"\n") if ln.strip()]
        if nonblank:
            # each non-blank line ends up as exactly one document or (at least) one report
            assert len(corpus.documents) + len(corpus.skipped) >= len(nonblank)
            assert len(corpus.documents) <= len(nonblank)


TEXTISH = st.text(
    alphabet=st.sampled_from(list("ab .!?\n\t#\"'”A1") + ["\u00a0", "é", "\u2028"]), max_size=2500
)


@settings(max_examples=300, deadline=None)
@given(TEXTISH, st.sampled_from(["", "a", "Ab. a", "# A"]), st.integers(1, 300))
@example("a\n1", "a", 1)  # title line skipped, the rest of its block kept (found by Hypothesis in CI)
def test_paragraphs_cover_the_text_in_order_within_bounds(raw: str, title: str, max_chars: int) -> None:
    text = normalize_text(raw)
    doc = Document(id="p", title=title, text=text)
    paras = split_paragraphs(doc, max_chars=max_chars)
    assert [p.n for p in paras] == list(range(len(paras)))
    assert [p.id for p in paras] == [f"p#{i}" for i in range(len(paras))]
    covered = set()
    last = 0
    for p in paras:
        assert doc.text[p.start : p.end] == p.text and p.text.strip() == p.text != ""
        assert len(p.text) <= max_chars
        assert p.start >= last
        last = p.end
        covered.update(range(p.start, p.end))
    # only whitespace and the skipped title line (the first line, when it is the title) are left out
    first = len(text) - len(text.lstrip())
    first_line_end = text.find("\n", first) if "\n" in text[first:] else len(text)
    for i, ch in enumerate(text):
        if not ch.isspace() and i not in covered:
            assert first <= i < first_line_end, (i, ch)
            assert text[first:first_line_end].strip().lstrip("#").strip() == title.strip()
