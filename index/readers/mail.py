"""E-mail: .eml (one message) and .mbox (many), with the standard library's ``email`` and ``mailbox``.

The subject is the title. From, To, Cc and Date open the text as a header block, so they are searchable
and shown, and are kept as metadata too. The body is the text/plain part (or the HTML one, extracted like
any web page). Quoted replies ("> ..." and "On ... wrote:", "-----Original Message-----") and the signature
(after "-- ") stay in the text but come last, as regions of kind "quote" / "signature", so their
paragraphs are flagged. Attachments of a supported type are read as documents of their own, linked to the
message by ``Document.parent``; other attachments are reported.
"""

from __future__ import annotations

import email
import mailbox
import re
from collections.abc import Iterator
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import PurePosixPath

from index.errors import IngestError
from index.readers import FORMATS, Context, Source
from index.readers.common import fingerprint, normalize_text
from index.records import Document

_ATTRIBUTION = re.compile(r"^(?:On\b.{0,200}\bwrote:|.{0,80}\bschrieb:|Le .{0,200} a écrit ?:)\s*$", re.I)
_FORWARD = re.compile(r"^-{2,}\s*(?:Original Message|Forwarded message)\s*-{2,}\s*$", re.I)


def read_eml(source: Source, ctx: Context) -> Iterator[Document]:
    data = source.read_bytes()
    if not data.strip():
        raise IngestError(source.rel, "empty file")
    msg = email.message_from_bytes(data, policy=policy.default)
    yield from _message(msg, source.rel, data, ctx)  # type: ignore[arg-type]


def read_mbox(source: Source, ctx: Context) -> Iterator[Document]:
    if source.path is None:  # an .mbox attached to a message: mailbox needs a file
        raise IngestError(source.rel, "an mbox inside an e-mail is not read; save it as a file")
    box = mailbox.mbox(str(source.path), create=False)
    try:
        keys = list(box.keys())
        if not keys:
            raise IngestError(source.rel, "empty mbox (no messages)")
        for n, key in enumerate(keys, start=1):
            where = f"{source.rel}:{n}"
            try:
                data = box.get_bytes(key)
                msg = email.message_from_bytes(data, policy=policy.default)
                yield from _message(msg, where, data, ctx)  # type: ignore[arg-type]
            except IngestError as err:
                ctx.skipped.append(err)
            except Exception as err:  # one broken message must not lose the rest of the mailbox
                ctx.skipped.append(IngestError(where, f"unreadable message ({type(err).__name__}: {err})"))
    finally:
        box.close()


def _message(msg: EmailMessage, doc_id: str, data: bytes, ctx: Context) -> Iterator[Document]:
    if not (msg["from"] or msg["subject"]):
        raise IngestError(doc_id, "not an e-mail message (no From or Subject header)")
    subject = " ".join(str(msg["subject"] or "").split())
    headers = _headers(msg)
    body, html_title = _body(msg)
    main, parts_text = _split_quotes(normalize_text(body))
    header_block = "\n".join(f"{k}: {v}" for k, v in headers.items() if v)
    text = header_block
    parts: list[tuple[int, int, str]] = []
    if main:
        text += "\n\n" + main
    for kind, chunk in parts_text:
        start = len(text) + 2
        text += "\n\n" + chunk
        parts.append((start, len(text), kind))
    text = normalize_text(text)
    date = _date(msg["date"])
    yield Document(
        id=doc_id, title=subject or html_title or "(no subject)", text=text, date=date,
        byline=headers.get("From") or None, path=doc_id, fingerprint=fingerprint(data), title_in_text=False,
        parts=tuple(parts), metadata={k.lower(): v for k, v in headers.items() if v and k != "Date"},
    )
    yield from _attachments(msg, doc_id, ctx)


def _headers(msg: EmailMessage) -> dict[str, str]:
    out = {}
    for name in ("From", "To", "Cc", "Date"):
        values = msg.get_all(name) or []
        if name == "Date":
            out[name] = " ".join(str(values[0]).split()) if values else ""
            continue
        addrs = getaddresses([str(v) for v in values])
        out[name] = ", ".join(f"{n} <{a}>" if n and a else (n or a) for n, a in addrs if n or a)
    return out


def _date(value: object) -> str | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(str(value)).date().isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def _body(msg: EmailMessage) -> tuple[str, str]:
    """(body text, title of an HTML body) from the text/plain part, else the text/html part."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: decode bytes leniently
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        from index.readers.htmlpage import extract_article

        title, text, _meta = extract_article(str(content))
        return text, title
    return str(content), ""


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution(lines: list[str], i: int) -> int:
    """How many lines (1, or 2 where the client wrapped it) make an "On ... wrote:" line at ``i``; 0: none."""
    if _ATTRIBUTION.match(lines[i].strip()):
        return 1
    if i + 1 < len(lines) and _ATTRIBUTION.match(f"{lines[i].strip()} {lines[i + 1].strip()}"):
        return 2
    return 0


def _split_quotes(body: str) -> tuple[str, list[tuple[str, str]]]:
    """(own text, [(kind, text)]): quoted replies become "quote" blocks, the signature a "signature" one."""
    lines = body.split("\n")
    own: list[str] = []
    quotes: list[list[str]] = []
    signature: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip() in ("--", "-- "):
            rest = lines[i + 1:]
            signature = [ln for ln in rest if not _is_quote(ln)]
            quotes.append([re.sub(r"^\s*(?:>\s?)+", "", ln) for ln in rest if _is_quote(ln)])
            break
        if _FORWARD.match(line.strip()):
            quotes.append(lines[i + 1:])
            break
        head = _attribution(lines, i) if not _is_quote(line) else 0
        if head or _is_quote(line):
            block = [" ".join(ln.strip() for ln in lines[i:i + head])] if head else []
            i += head
            while i < len(lines) and (_is_quote(lines[i]) or (not lines[i].strip() and i + 1 < len(lines)
                                                               and _is_quote(lines[i + 1]))):
                block.append(re.sub(r"^\s*(?:>\s?)+", "", lines[i]))
                i += 1
            quotes.append(block)
            continue
        own.append(line)
        i += 1
    out = [("quote", normalize_text("\n".join(q)).strip()) for q in quotes]
    out.append(("signature", normalize_text("\n".join(signature)).strip()))
    return normalize_text("\n".join(own)).strip(), [(k, t) for k, t in out if t]


def _attachments(msg: EmailMessage, doc_id: str, ctx: Context) -> Iterator[Document]:
    for part in msg.iter_attachments():
        name = part.get_filename() or ""
        where = f"{doc_id}/{PurePosixPath(name).name or 'attachment'}"
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in FORMATS or suffix == ".mbox":
            ctx.skipped.append(IngestError(where, f"attachment of unsupported type {suffix or '(none)'}"))
            continue
        payload = part.get_payload(decode=True)
        if not payload:
            ctx.skipped.append(IngestError(where, "empty attachment"))
            continue
        try:
            for fmt, doc in ctx.read(Source(rel=where, suffix=suffix, data=payload)):
                yield replace(doc, parent=doc_id, format=fmt)
        except IngestError as err:
            ctx.skipped.append(err)
