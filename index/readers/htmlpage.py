"""HTML pages: the article text, title, byline and date, without navigation, ads, comments or banners.

Extraction is trafilatura's (the field's maintained extractor: boilerplate removal, dates via htmldate,
authors). ``parse_html`` is the earlier hand-written parser, kept for comparison only
(``benchmarks/html_extract.py`` measures both on pages with real-world boilerplate; see the README) and as
the fallback for fragments too small for trafilatura to judge.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

from index.errors import IngestError
from index.readers import Context, Source
from index.readers.common import decode_bytes, fingerprint, iso_date, normalize_text
from index.records import Document


def read_html(source: Source, ctx: Context) -> Iterator[Document]:
    raw = source.read_bytes()
    if not raw.strip():
        raise IngestError(source.rel, "empty file")
    html = decode_bytes(raw, source.rel, ctx.warnings)
    title, body, meta = extract_article(html)
    text = normalize_text(body)
    if not text:
        raise IngestError(source.rel, "no article text found in HTML")
    title = normalize_text(title).replace("\n", " ")
    in_text = True
    if not title:
        from index.readers.common import title_from_text

        title, in_text = title_from_text(text)
    yield Document(
        id=source.rel, title=title, text=text, date=meta.get("date"), url=meta.get("url"),
        source=meta.get("source"), byline=meta.get("author"), path=source.rel, fingerprint=fingerprint(raw),
        title_in_text=in_text,
    )


# Below this many characters of text trafilatura falls back to "baseline" extraction, which keeps menus
# and breaks paragraphs at inline tags; a fragment that small is read by the hand parser instead.
MIN_TRAFILATURA_CHARS = 250


def extract_article(html: str) -> tuple[str, str, dict[str, str]]:
    """(title, article text with blank lines between paragraphs, metadata: date, author, url, source)."""
    title, body, meta = parse_html(html)
    if len(body) < MIN_TRAFILATURA_CHARS:
        return title, body, meta
    found = trafilatura_article(html)
    if found is None:
        return title, body, meta
    t_title, t_body, t_meta = found
    return t_title or title, t_body, {**meta, **t_meta}


def trafilatura_article(html: str) -> tuple[str, str, dict[str, str]] | None:
    """trafilatura's extraction as (title, text with blank lines between paragraphs, metadata), or None."""
    import trafilatura

    result = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, include_tables=True, favor_precision=True,
    )
    if result is None:
        return None
    found = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    text = (found.get("text") or "").strip()
    if not text:
        return None
    title = (found.get("title") or "").strip()
    text = "\n\n".join(line.strip() for line in text.split("\n") if line.strip())
    if title and text.startswith(title):
        text = text[len(title):].lstrip()
    meta = {k: v for k, v in {"date": iso_date(found.get("date")) or found.get("date"),
                              "author": found.get("author"), "url": found.get("url"),
                              "source": found.get("sitename")}.items() if v}
    return title, text, meta



_DROP = {
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "noscript",
    "form",
    "svg",
    "iframe",
    "template",
}
_BLOCK = {
    "p",
    "div",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "section",
    "article",
    "tr",
    "pre",
    "figcaption",
    "ul",
    "ol",
    "table",
    "main",
    "dd",
    "dt",
}


class _ArticleParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.in_title = False
        self.title = ""
        self.h1 = ""
        self.in_h1 = False
        self.parts: list[str] = []
        self.article_parts: list[str] | None = None
        self.article_depth = 0
        self.meta: dict[str, str] = {}

    def _emit(self, s: str) -> None:
        self.parts.append(s)
        if self.article_depth and self.article_parts is not None:
            self.article_parts.append(s)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in _DROP:
            self.skip += 1
        elif tag == "title":
            self.in_title = True
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            content = a.get("content", "")
            mapping = {
                "article:published_time": "date",
                "date": "date",
                "pubdate": "date",
                "author": "author",
                "og:url": "url",
                "og:site_name": "source",
                "og:title": "og_title",
            }
            if key in mapping and content:
                self.meta.setdefault(mapping[key], content)
        elif tag == "time" and a.get("datetime"):
            self.meta.setdefault("date", a["datetime"])
        if tag == "article":
            if self.article_parts is None:
                self.article_parts = []
            self.article_depth += 1
        if tag == "h1":
            self.in_h1 = True
        if tag in _BLOCK or tag == "br":
            self._emit("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP and self.skip:
            self.skip -= 1
        elif tag == "title":
            self.in_title = False
        if tag == "h1":
            self.in_h1 = False
        if tag in _BLOCK:
            self._emit("\n\n")
        if tag == "article" and self.article_depth:
            self.article_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
            return
        if self.skip:
            return
        if self.in_h1:
            self.h1 += data
        self._emit(re.sub(r"\s+", " ", data))


def parse_html(html: str) -> tuple[str, str, dict[str, str]]:
    """(title, article text with blank lines between blocks, metadata). Scripts, styles, nav are dropped."""
    parser = _ArticleParser()
    parser.feed(html)
    parser.close()
    has_article = bool(parser.article_parts and "".join(parser.article_parts).strip())
    parts = parser.article_parts if has_article and parser.article_parts else parser.parts
    body = "".join(parts)
    body = re.sub(r"[ \t]*\n[ \t]*", "\n", body)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    title = (parser.h1 or parser.meta.get("og_title") or parser.title).strip()
    meta = dict(parser.meta)
    if "date" in meta:
        meta["date"] = iso_date(meta["date"]) or meta["date"]
    # The h1 usually opens the body too; drop that copy so the title is not a paragraph of its own.
    if title and body.startswith(title):
        body = body[len(title) :].lstrip()
    return title, body, meta
