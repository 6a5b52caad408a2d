"""Article extraction on pages with real-world boilerplate: trafilatura vs the old hand-written parser.

    python benchmarks/html_extract.py

Pages in ``benchmarks/html_pages/`` (a news article with a cookie banner, ads, related links, comments and
a newsletter box; a blog post with a sidebar, comment form and author box; a table-layout press release
with a consent overlay and no <article> tag). ``expected.json`` lists phrases of the article (recall: share
found) and of the boilerplate (kept: how many leaked into the text). Prints one row per page and extractor.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from index.readers.htmlpage import parse_html, trafilatura_article  # noqa: E402

PAGES = ROOT / "benchmarks" / "html_pages"


def main() -> None:
    expected = json.loads((PAGES / "expected.json").read_text(encoding="utf-8"))
    extractors = {"hand parser": parse_html, "trafilatura": trafilatura_article}
    totals = {name: [0, 0, 0, 0] for name in extractors}  # found, of, leaked, of
    print(f"{'page':22} {'extractor':12} {'recall':>7} {'boilerplate kept':>17}  title / date / author")
    for page, want in expected.items():
        html = (PAGES / page).read_text(encoding="utf-8")
        for name, extract in extractors.items():
            title, text, meta = extract(html) or ("", "", {})
            found = sum(phrase in text for phrase in want["article"])
            leaked = [phrase for phrase in want["boilerplate"] if phrase in text]
            t = totals[name]
            t[0] += found
            t[1] += len(want["article"])
            t[2] += len(leaked)
            t[3] += len(want["boilerplate"])
            recall = f"{found}/{len(want['article'])}"
            kept = f"{len(leaked)}/{len(want['boilerplate'])}"
            print(f"{page:22} {name:12} {recall:>7} {kept:>17}"
                  f"  {title[:40]!r} / {meta.get('date')} / {meta.get('author')}")
    for name, (f, n, leak, m) in totals.items():
        print(f"{'all pages':22} {name:12} {f}/{n:<5} {leak:>3}/{m}")


if __name__ == "__main__":
    main()
