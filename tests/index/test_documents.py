"""Ingestion of every format, bad-input handling, and paragraph offsets."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from index.documents import normalize_text, parse_html, read_corpus, split_paragraphs
from index.records import Document

SEED_ID = "000_f549e937e1170963.txt"


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def test_seed_txt_title_and_paragraphs(tmp_path: Path) -> None:
    corpus = read_corpus(Path(__file__).resolve().parents[2] / "seeds", exclude=["seeds/entities.jsonl"])
    docs = {d.id: d for d in corpus.documents}
    doc = docs[SEED_ID]
    assert doc.title == "Russian Foreign Minister Rules Out Territorial Concessions to Ukraine"
    paras = split_paragraphs(doc)
    assert len(paras) > 20
    assert all(doc.text[p.start : p.end] == p.text for p in paras)
    assert [p.id for p in paras[:2]] == [f"{SEED_ID}#0", f"{SEED_ID}#1"]
    assert any("rare earth metals" in p.text for p in paras)
    assert not any(p.text == doc.title for p in paras[:1]), "the title line is a field, not a paragraph"


def test_txt_and_md_metadata(tmp_path: Path) -> None:
    _write(
        tmp_path / "a.txt",
        "Big News Today\nBy Jane Doe\nUpdated: Feb. 17, 2025\n\nFirst para.\n\nSecond para.\n",
    )
    _write(tmp_path / "sub/b.md", "# A Markdown Story\n\n2024-03-05\n\nBody text here.\n")
    corpus = read_corpus(tmp_path)
    docs = {d.id: d for d in corpus.documents}
    assert set(docs) == {"a.txt", "sub/b.md"}
    assert docs["a.txt"].title == "Big News Today"
    assert docs["a.txt"].byline == "Jane Doe"
    assert docs["a.txt"].date == "2025-02-17"
    assert docs["sub/b.md"].title == "A Markdown Story"
    assert docs["sub/b.md"].date == "2024-03-05"
    assert corpus.skipped == []
    # byline and date lines are metadata, not paragraphs
    assert [p.text for p in split_paragraphs(docs["a.txt"])] == ["First para.", "Second para."]
    assert [p.text for p in split_paragraphs(docs["sub/b.md"])] == ["Body text here."]


def test_html_article_extraction(tmp_path: Path) -> None:
    html = """<html><head><title>Site | Story</title>
    <meta property="article:published_time" content="2025-02-17T10:00:00Z">
    <meta name="author" content="Jack Phillips"><script>var x = "<p>evil</p>";</script>
    <style>p{}</style></head>
    <body><nav><a href="/">Home</a> Menu items</nav><article><h1>Lavrov speaks</h1>
    <p>First &amp; foremost.</p>
    <p>Second <b>bold</b> paragraph.</p></article><footer>Copyright</footer></body></html>"""
    _write(tmp_path / "story.html", html)
    corpus = read_corpus(tmp_path)
    (doc,) = corpus.documents
    assert doc.title == "Lavrov speaks"
    assert doc.date == "2025-02-17"
    assert doc.byline == "Jack Phillips"
    assert "evil" not in doc.text and "Menu" not in doc.text and "Copyright" not in doc.text
    assert [p.text for p in split_paragraphs(doc)] == ["First & foremost.", "Second bold paragraph."]
    title, body, _ = parse_html("<p>no article tag</p><p>two</p>")
    assert body == "no article tag\n\ntwo"


def test_jsonl_formats_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "id": "d1",
                "title": "One",
                "text": "Alpha text.",
                "date": "2025-01-02",
                "url": "http://x",
                "source": "S",
            }
        ),
        json.dumps({"_id": "beir-7", "title": "", "text": "BEIR style body."}),
        "{not json",
        json.dumps({"id": "d3", "title": "No text"}),
        json.dumps(["a", "list"]),
        json.dumps({"title": "no id", "text": "x"}),
        json.dumps({"id": "d1", "title": "dup", "text": "again"}),
        "",
    ]
    _write(tmp_path / "c.jsonl", "\n".join(lines))
    corpus = read_corpus(tmp_path / "c.jsonl")
    assert [d.id for d in corpus.documents] == ["d1", "beir-7"]
    d1 = corpus.documents[0]
    assert (d1.title, d1.date, d1.url, d1.source) == ("One", "2025-01-02", "http://x", "S")
    assert corpus.documents[1].title == "BEIR style body."
    where = sorted(e.where for e in corpus.skipped)
    assert where == ["c.jsonl:3", "c.jsonl:4", "c.jsonl:5", "c.jsonl:6", "c.jsonl:7"]
    assert any("malformed JSON" in str(e) for e in corpus.skipped)


def test_bad_files_reported_and_rest_indexes(tmp_path: Path) -> None:
    _write(tmp_path / "good.txt", "Good title\n\nGood body.")
    _write(tmp_path / "empty.txt", "")
    _write(tmp_path / "blank.md", "   \n\n  \n")
    _write(tmp_path / "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    _write(tmp_path / "image.png", b"\x89PNG")
    _write(tmp_path / "latin.txt", "Caf\xe9 story\n\nA na\xefve body.".encode("latin-1"))
    unreadable = _write(tmp_path / "locked.txt", "Secret\n\nbody")
    unreadable.chmod(0)
    corpus = read_corpus(tmp_path)
    ids = sorted(d.id for d in corpus.documents)
    reasons = {e.where: e.reason for e in corpus.skipped}
    assert "good.txt" in ids and "latin.txt" in ids
    latin = next(d for d in corpus.documents if d.id == "latin.txt")
    assert latin.title == "Café story"
    assert any("Latin-1" in w for w in corpus.warnings)
    assert "empty" in reasons["empty.txt"] and "empty" in reasons["blank.md"]
    assert "binary" in reasons["binary.txt"]
    assert "unsupported" in reasons["image.png"]
    if "locked.txt" not in ids:  # root can read a chmod-0 file; everyone else gets the error
        assert "cannot read" in reasons["locked.txt"]


def test_missing_corpus_reported(tmp_path: Path) -> None:
    corpus = read_corpus(tmp_path / "nope")
    assert corpus.documents == [] and "does not exist" in str(corpus.skipped[0])


def test_normalisation_nfc_crlf_and_controls() -> None:
    assert normalize_text("Cafe\u0301\r\nnext\x00\x07 line  \r\n") == "Café\nnext line"


def test_long_paragraph_split_at_sentences() -> None:
    body = " ".join(f"Sentence number {i} ends here." for i in range(200))
    doc = Document(id="x", title="T", text="T\n\n" + body + "\n\nShort tail.")
    paras = split_paragraphs(doc, max_chars=300)
    assert all(len(p.text) <= 300 for p in paras)
    assert all(p.text.endswith(".") for p in paras)
    assert all(doc.text[p.start : p.end] == p.text for p in paras)
    assert paras[-1].text == "Short tail."
    assert [p.n for p in paras] == list(range(len(paras)))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3000), st.integers(20, 400))
def test_paragraph_offsets_always_round_trip(text: str, max_chars: int) -> None:
    doc = Document(id="h", title="", text=normalize_text(text))
    paras = split_paragraphs(doc, max_chars=max_chars)
    last = 0
    for p in paras:
        assert 0 <= p.start < p.end <= len(doc.text)
        assert p.start >= last
        assert doc.text[p.start : p.end] == p.text
        assert p.text == p.text.strip()
        assert len(p.text) <= max_chars
        last = p.end
