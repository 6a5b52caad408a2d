"""Real files of every format, written by the libraries that make them (reportlab, Pillow, python-docx,
the standard library's ``email``/``mailbox``), for the reader and build tests."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path

HEADER = "Harbour Authority - Annual Report 2024"


def make_pdf(
    path: Path,
    pages: list[list[str]],
    *,
    title: str | None = None,
    author: str | None = None,
    header: str | None = HEADER,
    page_numbers: bool = True,
    encrypt: str | None = None,
    scanned_page: list[str] | None = None,
) -> Path:
    """A text PDF: ``pages`` of lines ("" = paragraph gap), a running header and page numbers as a printer
    would set them. Lines are drawn as given, so a line ending in "-" is a word hyphenated across lines."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, encrypt=encrypt, invariant=1)
    if title:
        c.setTitle(title)
    if author:
        c.setAuthor(author)
    width, height = A4
    for number, lines in enumerate(pages, start=1):
        c.setFont("Helvetica", 9)
        if header:
            c.drawString(72, height - 40, header)
        if page_numbers:
            c.drawCentredString(width / 2, 30, str(number))
        c.setFont("Helvetica", 11)
        y = height - 100
        for line in lines:
            if line:
                c.drawString(72, y, line)
            y -= 30 if not line else 14
        c.showPage()
    if scanned_page:  # one more page that is only an image of text
        from reportlab.lib.utils import ImageReader

        c.drawImage(ImageReader(text_image(scanned_page)), 0, 0, width=width, height=height)
        c.showPage()
    c.save()
    return path


def text_image(lines: list[str]):  # -> PIL.Image.Image
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    y = 200
    for line in lines:
        if line:
            draw.text((150, y), line, fill=0, font=font)
        y += 70
    return image


def make_scanned_pdf(path: Path, lines: list[str]) -> Path:
    """A PDF whose only page is an image of text (no text layer), as a scanner makes (Pillow writes it)."""
    text_image(lines).save(path, "PDF", resolution=200)
    return path


def make_docx(path: Path, *, title: str, paragraphs: list[str], author: str = "",
              heading: str | None = None, table: list[list[str]] | None = None) -> Path:
    import datetime

    import docx

    d = docx.Document()
    if heading:
        d.add_heading(heading, 0)
    for text in paragraphs:
        d.add_paragraph(text)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for col, value in enumerate(row):
                t.cell(r, col).text = value
    d.core_properties.title = title
    d.core_properties.author = author
    d.core_properties.created = datetime.datetime(2024, 5, 6, 10, 0, 0)
    d.save(str(path))
    return path


def make_message(*, subject: str, sender: str, to: str, date: str, body: str,
                 attachments: list[tuple[str, bytes, str]] = ()) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date
    msg.set_content(body)
    for filename, data, mime in attachments:
        maintype, subtype = mime.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def write_eml(path: Path, msg: EmailMessage) -> Path:
    path.write_bytes(msg.as_bytes())
    return path


def write_mbox(path: Path, messages: list[EmailMessage]) -> Path:
    box = mailbox.mbox(str(path))
    try:
        for msg in messages:
            box.add(msg)
        box.flush()
    finally:
        box.close()
    return path


ZERO_PAGE_PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
