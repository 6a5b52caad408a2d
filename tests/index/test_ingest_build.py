"""One ``build`` over a folder mixing every supported format and some bad files: every document is found by
a word only it contains, PDF hits carry page numbers (API, results page, document page), and the build
summary counts documents per format and language and lists the skipped files with their reasons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import hash_settings
from tests.index.files import make_docx, make_message, make_pdf, make_scanned_pdf, write_eml, write_mbox

ROOT = Path(__file__).resolve().parents[2]
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# document id -> a word only that document contains
UNIQUE = {
    "report.pdf": "quillwort",
    "memo.docx": "brackenridge",
    "mail.eml": "sandpiperish",
    "mail.eml/budget.docx": "tamarisk",
    "box.mbox:1": "lanternfish",
    "box.mbox:2": "cormorantine",
    "news.html": "dockworkers",
    "notes.txt": "gorsebush",
    "story.md": "heliotrope",
    "r1": "moonwort",
    "c1": "samphire",
    "de.txt": "Tarifvertrag",
}


def _corpus(root: Path, with_scan: bool) -> None:
    make_pdf(root / "report.pdf", [
        ["The harbour board met in March to review the quillwort survey and the", "dredging plan."],
        ["Container volumes grew by a tenth after the new tariffs, and the board approved a schedule that",
         "will come into force in the"],
        ["spring of next year."],
    ], title="Harbour Board Report", author="Ines Duarte")
    make_docx(root / "memo.docx", title="Brackenridge memo", author="Ana Lopes",
              paragraphs=["The brackenridge contract was signed on Monday by both parties."])
    budget = make_docx(root / "budget.tmp", title="Budget", paragraphs=["Tamarisk planting costs doubled."])
    write_eml(root / "mail.eml", make_message(
        subject="Budget attached", sender="Ana Lopes <ana@example.org>", to="Tom Baker <tom@example.org>",
        date="Tue, 04 Mar 2025 09:15:00 +0000",
        body="Hi Tom,\n\nThe sandpiperish figures are in the attached budget.\n\n--\nAna\n",
        attachments=[("budget.docx", budget.read_bytes(), DOCX_MIME)]))
    budget.unlink()
    write_mbox(root / "box.mbox", [
        make_message(subject="Lanternfish", sender="a@example.org", to="b@example.org",
                     date="Wed, 05 Mar 2025 09:00:00 +0000", body="The lanternfish quota was cut again.\n"),
        make_message(subject="Birds", sender="b@example.org", to="a@example.org",
                     date="Wed, 05 Mar 2025 10:00:00 +0000",
                     body="A cormorantine colony nests on the pier.\n"),
    ])
    shutil.copy(ROOT / "benchmarks" / "html_pages" / "news_article.html", root / "news.html")
    (root / "notes.txt").write_text("Field notes\n\nGorsebush fires spread along the cliffs on Sunday.\n")
    (root / "story.md").write_text("# A garden story\n\nThe heliotrope beds opened to visitors in June.\n")
    record = {"id": "r1", "text": "Moonwort grows on the old quay."}  # no title: the text is kept whole
    (root / "records.jsonl").write_text(json.dumps(record) + "\n")
    (root / "rows.csv").write_text('id,title,text\nc1,Salt marsh,"Samphire pickers returned to the marsh."\n')
    (root / "de.txt").write_text(
        "Einigung im Hafen\n\nDie Hafenarbeiter haben am Donnerstag einem neuen Tarifvertrag zugestimmt. "
        "Die Verhandlungen dauerten elf Tage, und viele Schiffe warteten vor der Küste. Donald Trump "
        "äußerte sich am Montag nicht dazu.\n", encoding="utf-8")
    if with_scan:
        make_scanned_pdf(root / "scan.pdf", ["The ferry committee approved", "the periwinkle timetable."])
    # bad inputs: each skipped with a reason, none stops the build
    make_pdf(root / "locked.pdf", [["Secret text."]], encrypt="pw")
    (root / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64)
    (root / "bundle.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)


@pytest.fixture(scope="module")
def mixed_index(tmp_path_factory: pytest.TempPathFactory):
    from index.build import build_index
    from index.readers.pdf import _tesseract_version

    root = tmp_path_factory.mktemp("mixed")
    corpus = root / "corpus"
    corpus.mkdir()
    with_scan = bool(_tesseract_version())
    _corpus(corpus, with_scan)
    settings = hash_settings(corpus, root / "index")
    report = build_index(settings)
    return settings, report, with_scan


def test_every_document_is_found_by_its_own_word(mixed_index) -> None:
    from search.searcher import Searcher

    settings, report, with_scan = mixed_index
    unique = dict(UNIQUE, **({"scan.pdf": "periwinkle"} if with_scan else {}))
    assert report.documents == len(unique)
    searcher = Searcher.open(settings)
    for doc_id, word in unique.items():
        groups = searcher.search(word, mode="keyword", limit=5, group=True)["groups"]
        assert [g["doc_id"] for g in groups] == [doc_id], word


def test_pdf_hits_and_document_page_show_page_numbers(mixed_index) -> None:
    from search.searcher import Searcher
    from web import create_app

    settings, _report, _ = mixed_index
    searcher = Searcher.open(settings)
    hit = searcher.search("tariffs schedule", mode="keyword", limit=1)["hits"][0]
    assert (hit["doc_id"], hit["page"], hit["page_end"]) == ("report.pdf", 2, 3)
    first = searcher.search("quillwort", mode="keyword", limit=1)["hits"][0]
    assert (first["page"], first["page_end"]) == (1, None)
    client = create_app(settings, searcher).test_client()
    page = client.get("/documents/report.pdf").get_data(as_text=True)
    assert 'class="page-mark" id="page-1">p. 1<' in page and 'id="page-2">p. 2<' in page
    attachment = client.get("/documents/mail.eml/budget.docx").get_data(as_text=True)
    assert 'attachment of <a href="/documents/mail.eml">mail.eml</a>' in attachment
    results = client.get("/?q=tariffs+schedule&mode=keyword").get_data(as_text=True)
    assert "pp. 2–3" in results
    api = client.get("/api/search?q=quillwort&mode=keyword").get_json()
    hits = api["hits"] or [h for g in api["groups"] for h in g["hits"]]
    assert hits[0]["page"] == 1


def test_summary_counts_formats_languages_and_lists_skips(mixed_index) -> None:
    _settings, report, with_scan = mixed_index
    assert report.formats == {"pdf": 1 + with_scan, "docx": 2, "eml": 1, "mbox": 2, "html": 1, "txt": 2,
                              "md": 1, "jsonl": 1, "csv": 1}
    assert report.languages["de"] == 1 and report.languages["en"] >= 4  # one-line ones: unknown ("")
    assert sum(report.languages.values()) == report.documents
    summary = report.summary()
    assert "formats    " in summary and "docx 2" in summary and "de 1" in summary and "unknown" in summary
    skipped = "\n".join(report.skipped)
    assert "locked.pdf: encrypted PDF" in skipped
    assert "old.doc: legacy Word" in skipped and "bundle.zip: archives are not unpacked" in skipped


def test_non_english_document_gets_its_stemmer(mixed_index) -> None:
    from search.searcher import Searcher

    settings, _report, _ = mixed_index
    # German stemming: "Verhandlung" finds "Verhandlungen" in the German document only
    searcher = Searcher.open(settings)
    groups = searcher.search("Verhandlung", mode="keyword", limit=5, group=True)["groups"]
    assert [g["doc_id"] for g in groups] == ["de.txt"]
    # no English NER, but the registry's names are still linked
    assert "donald-trump" in {e["id"] for e in searcher.document("de.txt")["entities"]}
