"""Every reader on real files made in the test (reportlab, Pillow, python-docx, ``email``/``mailbox``), and
the bad cases: each is read, or skipped with a clear reason while the rest of the corpus indexes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from index.documents import read_corpus, split_paragraphs
from index.readers import ReadOptions
from index.records import Document
from tests.index.files import (
    HEADER,
    ZERO_PAGE_PDF,
    make_docx,
    make_message,
    make_pdf,
    make_scanned_pdf,
    write_eml,
    write_mbox,
)

ROOT = Path(__file__).resolve().parents[2]
PAGE_1 = [
    "Quarterly shipping volumes at the northern terminal rose sharply in the",
    "autumn, when the authority completed the long-awaited dredging of the ap-",
    "proach channel.",
    "",
    "Container traffic grew by twelve percent over the year.",
    "",
    "The board approved a new tariff schedule that will come into force in the",
]
PAGE_2 = [
    "spring of next year, subject to the approval of the transport ministry.",
    "",
    "Three gantry cranes were ordered from a supplier in Finland.",
]
PAGE_3 = ["The third page closes the report with thanks to the staff.", "", "Signed, the chair of the board."]


def _one(path: Path, **options) -> tuple[Document, list]:
    corpus = read_corpus(path, options=ReadOptions(**options))
    assert len(corpus.documents) == 1, (corpus.skipped, corpus.warnings)
    doc = corpus.documents[0]
    return doc, split_paragraphs(doc)


def _reasons(corpus) -> dict[str, str]:
    return {e.where: e.reason for e in corpus.skipped}


# ------------------------------------------------------------------------------------------------- PDF


def test_pdf_pages_hyphenation_headers_and_metadata(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "report.pdf", [PAGE_1, PAGE_2, PAGE_3], title="Annual Report 2024",
                    author="Ines Duarte")
    doc, paras = _one(path)
    assert (doc.format, doc.title, doc.byline) == ("pdf", "Annual Report 2024", "Ines Duarte")
    assert doc.language == "en"
    assert doc.metadata["pages"] == "3" and not doc.ocr
    texts = [p.text for p in paras]
    assert texts[0].endswith("the long-awaited dredging of the approach channel.")  # "ap-" + "proach"
    assert "long-awaited" in texts[0]  # a hyphen inside a line stays
    # the sentence that runs across the page break is one paragraph carrying the page range
    spanning = next(p for p in paras if p.text.startswith("The board approved"))
    assert spanning.text.endswith("subject to the approval of the transport ministry.")
    assert (spanning.page, spanning.page_end) == (1, 2)
    assert [(p.page, p.page_end) for p in paras] == [(1, None), (1, None), (1, 2), (2, None), (3, None),
                                                    (3, None)]
    # running header and page numbers are gone; nothing else is
    assert not any(HEADER in t for t in texts) and not any(t.strip().isdigit() for t in texts)
    assert any("gantry cranes" in t for t in texts) and texts[-1] == "Signed, the chair of the board."


def test_pdf_paragraphs_do_not_cross_pages_when_the_sentence_ends(tmp_path: Path) -> None:
    pages = [["The first page ends with a full stop."], ["the second page opens in lower case."],
             ["Proper-", "ly hyphenated across lines"], ["but the next page is a new"], ["sentence."]]
    path = make_pdf(tmp_path / "two.pdf", pages, title="Breaks", header=None)
    _doc, paras = _one(path)
    assert [(p.text, p.page, p.page_end) for p in paras] == [
        ("The first page ends with a full stop.", 1, None),
        ("the second page opens in lower case.", 2, None),
        ("Properly hyphenated across lines but the next page is a new sentence.", 3, 5),
    ]


def test_pdf_without_metadata_title_uses_the_heading(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "memo.pdf", [["Port Budget Review", "", *PAGE_3]], header=None)
    doc, paras = _one(path)
    assert doc.title == "Port Budget Review"
    assert paras[0].text.startswith("The third page closes")


def test_bad_pdfs_are_skipped_with_reasons_and_the_rest_indexes(tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "good.pdf", [PAGE_3])
    make_pdf(tmp_path / "locked.pdf", [PAGE_3], encrypt="secret")
    data = good.read_bytes()
    (tmp_path / "truncated.pdf").write_bytes(data[: len(data) // 2])
    (tmp_path / "zero.pdf").write_bytes(ZERO_PAGE_PDF)
    (tmp_path / "page.pdf").write_text("<html><body><p>Saved from a browser</p></body></html>")
    (tmp_path / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    shutil.copy(good, tmp_path / "misnamed.txt")
    corpus = read_corpus(tmp_path)
    reasons = _reasons(corpus)
    assert sorted(d.id for d in corpus.documents) == ["good.pdf", "misnamed.txt"]
    assert next(d for d in corpus.documents if d.id == "misnamed.txt").format == "pdf"
    assert any("misnamed.txt" in w and "read as pdf" in w for w in corpus.warnings)
    assert "encrypted" in reasons["locked.pdf"] and "password" in reasons["locked.pdf"]
    assert "truncated" in reasons["truncated.pdf"]
    assert "no pages" in reasons["zero.pdf"]
    assert "not a PDF" in reasons["page.pdf"] and "wrong extension" in reasons["page.pdf"]
    assert reasons["garbage.pdf"].startswith(("damaged PDF", "no text"))
    assert all("\n" not in r for r in reasons.values())  # one line each


# ------------------------------------------------------------------------------------------------- OCR


def _needs_tesseract() -> None:
    from index.readers.pdf import _tesseract_version

    if not _tesseract_version():
        pytest.skip("needs Tesseract (Debian tesseract-ocr; `make test` installs it)")


SCAN = ["The harbour committee approved the minutes", "on Tuesday after a short debate.", "",
        "Delegates from seven unions attended."]


def test_scanned_pdf_is_ocrd_flagged_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_tesseract()
    path = make_scanned_pdf(tmp_path / "scan.pdf", SCAN)
    cache = tmp_path / "ocr-cache"
    doc, paras = _one(path, ocr_cache=cache)
    assert doc.ocr and doc.metadata["ocr_pages"] == "1"
    text = " ".join(p.text for p in paras).lower()
    assert "harbour committee approved the minutes" in text and "seven unions" in text
    assert all(p.page == 1 for p in paras)
    assert len(list(cache.rglob("*.txt"))) == 1

    import pytesseract

    def no_ocr(*_args, **_kwargs):
        raise AssertionError("OCR ran again although the page is cached")

    monkeypatch.setattr(pytesseract, "image_to_string", no_ocr)
    again, _ = _one(path, ocr_cache=cache)
    assert again.text == doc.text and again.ocr


def test_scanned_page_in_a_text_pdf(tmp_path: Path) -> None:
    _needs_tesseract()
    path = make_pdf(tmp_path / "mixed.pdf", [PAGE_3], scanned_page=SCAN, header=None)
    doc, paras = _one(path)
    assert doc.ocr and doc.metadata["ocr_pages"] == "2"
    assert paras[0].page == 1 and any("seven unions" in p.text and p.page == 2 for p in paras)


def test_without_ocr_scanned_pages_are_reported_not_silently_empty(tmp_path: Path) -> None:
    make_pdf(tmp_path / "mixed.pdf", [PAGE_3], scanned_page=SCAN, header=None)
    make_scanned_pdf(tmp_path / "scan.pdf", SCAN)
    corpus = read_corpus(tmp_path, options=ReadOptions(ocr=False))
    assert [d.id for d in corpus.documents] == ["mixed.pdf"]  # its text page still indexes
    assert any(w.startswith("mixed.pdf p. 2: no text layer") for w in corpus.warnings)
    assert "no text layer" in _reasons(corpus)["scan.pdf"]


# ------------------------------------------------------------------------------------------------ Word


def test_docx_paragraphs_headings_tables_and_properties(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "memo.docx", title="Budget memo", author="Ana Lopes", heading="Budget memo",
                     paragraphs=["The finance committee met on Monday to discuss the budget.",
                                 "Pensions take a third of the spending."],
                     table=[["Item", "Cost"], ["Cranes", "4.2m"]])
    doc, paras = _one(path)
    assert (doc.format, doc.title, doc.byline, doc.date) == ("docx", "Budget memo", "Ana Lopes", "2024-05-06")
    assert [p.text for p in paras] == ["The finance committee met on Monday to discuss the budget.",
                                       "Pensions take a third of the spending.",
                                       "Item | Cost", "Cranes | 4.2m"]


def test_damaged_and_unsupported_office_files(tmp_path: Path) -> None:
    good = make_docx(tmp_path / "good.docx", title="", paragraphs=["One paragraph of a memo."])
    (tmp_path / "cut.docx").write_bytes(good.read_bytes()[:300])
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    (tmp_path / "notes.odt").write_bytes(b"PK\x03\x04odt")
    (tmp_path / "bundle.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    corpus = read_corpus(tmp_path)
    reasons = _reasons(corpus)
    assert [d.id for d in corpus.documents] == ["good.docx"]
    assert corpus.documents[0].title == "One paragraph of a memo."  # no title: derived, text kept
    assert split_paragraphs(corpus.documents[0])[0].text == "One paragraph of a memo."
    assert "docx" in reasons["cut.docx"]
    assert ".docx" in reasons["old.doc"] and "legacy Word" in reasons["old.doc"]
    assert "OpenDocument" in reasons["notes.odt"]
    assert "extract the files" in reasons["bundle.zip"]


# ---------------------------------------------------------------------------------------------- e-mail

REPLY = """Hi Tom,

The figures for the dredging contract are attached. Please check the totals.

On Mon, 3 Mar 2025 at 10:00, Tom Baker <tom@example.org> wrote:
> Can you send me the dredging figures?
> Thanks

--
Ana Lopes
Finance office, Harbour Authority
"""


def _reply(attachments=()):
    return make_message(subject="Dredging figures", sender="Ana Lopes <ana@example.org>",
                        to="Tom Baker <tom@example.org>", date="Tue, 04 Mar 2025 09:15:00 +0000", body=REPLY,
                        attachments=list(attachments))


def test_eml_headers_quotes_signature_and_attachments(tmp_path: Path) -> None:
    memo = make_docx(tmp_path / "memo.bin", title="Contract memo",
                     paragraphs=["Dredging costs rose by a fifth."])
    docx_mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    msg = _reply([("figures.docx", memo.read_bytes(), docx_mime), ("photo.png", b"\x89PNG\r\n", "image/png")])
    memo.unlink()
    write_eml(tmp_path / "mail.eml", msg)
    corpus = read_corpus(tmp_path)
    docs = {d.id: d for d in corpus.documents}
    assert set(docs) == {"mail.eml", "mail.eml/figures.docx"}
    mail = docs["mail.eml"]
    assert (mail.format, mail.title, mail.date) == ("eml", "Dredging figures", "2025-03-04")
    assert mail.metadata["from"] == "Ana Lopes <ana@example.org>" and "tom@example.org" in mail.metadata["to"]
    paras = split_paragraphs(mail)
    assert paras[0].text.startswith("From: Ana Lopes <ana@example.org>\nTo: Tom Baker")  # searchable
    kinds = {p.text.split("\n")[0]: p.kind for p in paras}
    assert kinds["The figures for the dredging contract are attached. Please check the totals."] == ""
    assert kinds["On Mon, 3 Mar 2025 at 10:00, Tom Baker <tom@example.org> wrote:"] == "quote"
    assert kinds["Ana Lopes"] == "signature"
    assert paras[-1].kind == "signature"  # quoted text and signature come after the message's own text
    attachment = docs["mail.eml/figures.docx"]
    assert (attachment.parent, attachment.format, attachment.title) == ("mail.eml", "docx", "Contract memo")
    assert "unsupported" in _reasons(corpus)["mail.eml/photo.png"]


def test_mbox_messages_and_a_broken_one(tmp_path: Path) -> None:
    other = make_message(subject="Marmalade", sender="x@example.org", to="y@example.org",
                         date="Wed, 05 Mar 2025 09:15:00 +0000", body="The marmalade shipment is late.\n")
    write_mbox(tmp_path / "box.mbox", [_reply(), other])
    with (tmp_path / "box.mbox").open("ab") as f:
        f.write(b"From nobody Thu Mar  6 00:00:00 2025\n\n\n")  # a message with no headers at all
    corpus = read_corpus(tmp_path)
    assert [(d.id, d.title, d.format) for d in corpus.documents] == [
        ("box.mbox:1", "Dredging figures", "mbox"), ("box.mbox:2", "Marmalade", "mbox")]
    assert "not an e-mail" in _reasons(corpus)["box.mbox:3"] or "no From" in _reasons(corpus)["box.mbox:3"]


# ------------------------------------------------------------------------------------------ JSONL / CSV


def test_jsonl_record_without_title_keeps_its_whole_text(tmp_path: Path) -> None:
    line = {"id": "a1", "text": "Sergei Lavrov met Marco Rubio in Riyadh. Lavrov said talks went well."}
    (tmp_path / "c.jsonl").write_text(json.dumps(line) + "\n")
    doc, paras = _one(tmp_path / "c.jsonl")
    assert [p.text for p in paras] == [line["text"]]
    assert doc.title.startswith("Sergei Lavrov met Marco Rubio")


def test_csv_with_named_columns(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(
        'ref,headline,body,published\n'
        'r1,Ferry timetable,"The winter timetable adds a late crossing on Fridays.\n\nTickets go on sale '
        'in May.",2025-01-09\n'
        'r2,,"A record without a headline keeps its text.",\n'
        'r3,Empty,,\n', encoding="utf-8")
    opts = {"text_column": "body", "title_column": "headline", "date_column": "published", "id_column": "ref"}
    corpus = read_corpus(tmp_path / "rows.csv", options=ReadOptions(**opts))
    docs = {d.id: d for d in corpus.documents}
    assert set(docs) == {"r1", "r2"} and docs["r1"].format == "csv"
    assert (docs["r1"].title, docs["r1"].date) == ("Ferry timetable", "2025-01-09")
    assert [p.text for p in split_paragraphs(docs["r1"])] == [
        "The winter timetable adds a late crossing on Fridays.", "Tickets go on sale in May."]
    assert [p.text for p in split_paragraphs(docs["r2"])] == ["A record without a headline keeps its text."]
    assert _reasons(corpus) == {"rows.csv:4": "missing or empty 'body'"}  # row 4 (header: 1)
    # without the column names the file is reported, naming the columns it has
    default = read_corpus(tmp_path / "rows.csv")
    assert "no 'text' column" in str(default.skipped[0]) and "headline" in str(default.skipped[0])


def test_ten_megabyte_single_paragraph_is_skipped_the_rest_indexes(tmp_path: Path) -> None:
    (tmp_path / "dump.txt").write_text("Dump\n\n" + "word " * (2 * 1024 * 1024))
    (tmp_path / "ok.txt").write_text("Title\n\nA normal paragraph.")
    corpus = read_corpus(tmp_path)
    assert [d.id for d in corpus.documents] == ["ok.txt"]
    assert "not prose" in _reasons(corpus)["dump.txt"]


# ------------------------------------------------------------------------------------- HTML, language


def test_html_boilerplate_is_dropped_by_trafilatura(tmp_path: Path) -> None:
    shutil.copy(ROOT / "benchmarks" / "html_pages" / "news_article.html", tmp_path / "a.html")
    doc, paras = _one(tmp_path)
    assert doc.title == "Port strike ends after 11 days as dockworkers accept wage deal"
    assert (doc.date, doc.byline) == ("2025-03-14", "Maria Okafor")
    text = "\n".join(p.text for p in paras)
    assert "raises basic wages by 9.5 percent" in text
    for boilerplate in ("We use cookies", "Related stories", "balcony", "All rights reserved", "Sign up"):
        assert boilerplate not in text


def test_language_is_detected_per_document(tmp_path: Path) -> None:
    (tmp_path / "de.txt").write_text(
        "Einigung im Hafen\n\nDie Hafenarbeiter haben am Donnerstag einem neuen Tarifvertrag zugestimmt. "
        "Die Verhandlungen dauerten elf Tage.", encoding="utf-8")
    (tmp_path / "en.txt").write_text(
        "Deal at the port\n\nDockworkers accepted a new pay agreement on Thursday after eleven days "
        "of talks.")
    (tmp_path / "tiny.txt").write_text("Ok\n\nYes.")
    # names are no language's: trigram models read this short English text as Latin unless they are set aside
    (tmp_path / "names.txt").write_text("Bonn\n\nThe Russian foreign minister, Eduard Shevardnadze, flew to "
                                        "Bonn. Shevardnadze met his German counterpart.")
    corpus = read_corpus(tmp_path)
    assert {d.id: d.language for d in corpus.documents} == {
        "de.txt": "de", "en.txt": "en", "tiny.txt": "", "names.txt": "en"}
    assert corpus.languages == {"de": 1, "en": 2, "": 1} and corpus.formats == {"txt": 4}


def test_plain_text_saved_from_a_web_page_loses_its_character_references(tmp_path: Path) -> None:
    text = "Deal\n\nAT&amp;T said America&#8217;s league &mdash; the NFL &#8212; grew.\n"
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "b.txt").write_text("Code\n\nWrite a & b, not a && b.\n")
    docs = {d.id: d for d in read_corpus(tmp_path).documents}
    assert docs["a.txt"].text.endswith("AT&T said America’s league — the NFL — grew.")
    assert docs["b.txt"].text.endswith("Write a & b, not a && b.")


@pytest.mark.parametrize("value", ["2020-01-05", "2020-1-5", "2020-02-30", "2020-01-05T10:00:00Z",
                                   "2020-13-01", " 2021-12-31 extra", "2004-02-29T23:59:59", "1999-12-31x"])
def test_iso_date_fast_path_gives_what_strptime_gives(value: str) -> None:
    """Numeric dates skip strptime when they start with a valid YYYY-MM-DD; the answer is strptime's."""
    from datetime import datetime

    from index.readers.common import iso_date

    def by_strptime(v: str) -> str | None:
        v = v.strip()
        for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"):
            try:
                return datetime.strptime(v[: len(datetime(2000, 1, 1).strftime(fmt))], fmt).date().isoformat()
            except ValueError:
                pass
        return None

    assert iso_date(value) == by_strptime(value)
