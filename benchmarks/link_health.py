"""Entity-linking health on a real corpus with no gold: what a reader would call broken links.

    python benchmarks/link_health.py [--corpus ../shared/data/bbc-news/bbc] [--limit N]

Links the corpus exactly as a build does (its own registry: entities.jsonl beside it, none for BBC), times
detection, per-document resolution and the corpus pass separately, and prints the counts of
`index.linking.evaluate.link_health` (links on function words, local names with function-word edges or
scores, numbered entities reached by a name without digits) and the entities per type.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from index.documents import read_corpus  # noqa: E402
from index.linking import corpus as corpus_pass  # noqa: E402
from index.linking.evaluate import link_health  # noqa: E402
from index.linking.resolve import make_linker  # noqa: E402
from index.settings import Settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "bbc-news" / "bbc"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--show", action="store_true", help="Print the offending names and links.")
    ap.add_argument(
        "--replicate",
        type=int,
        default=0,
        help="Also time the corpus pass alone over N copies of the resolved documents (each copy "
        "a year later), e.g. 10 for ~100k paragraphs of BBC.",
    )
    args = ap.parse_args()
    if not Path(args.corpus).exists():
        sys.exit(f"needs {args.corpus} (the shared data sets beside the project root)")
    settings = Settings.load(env={}, corpus=args.corpus)
    docs = read_corpus(settings.corpus, exclude=[str(settings.registry_path)]).documents[: args.limit]
    linker = make_linker(settings.registry_path, settings.ner_model, settings.ner_window)
    t = time.perf_counter()
    mentions = linker.detector.detect_many([d.text for d in docs])
    t_detect = time.perf_counter() - t
    t = time.perf_counter()
    results = [
        linker.resolve_document(d, ms) for d, ms in zip(docs, mentions, strict=True)
    ]
    t_doc = time.perf_counter() - t
    t = time.perf_counter()
    corpus_pass.resolve(results, linker.registry, linker.index)
    t_corpus = time.perf_counter() - t
    linked = linker.link_corpus(docs, mentions)
    entities = {eid: e.to_dict() for eid, e in linker.entities().items()}
    links = {d.id: [lk.to_dict() for lk in ls] for d, (ls, _) in zip(docs, linked, strict=True)}
    used = {lk["entity_id"] for ls in links.values() for lk in ls}
    health = link_health(links, {e: entities[e] for e in used if e in entities})
    n_links = sum(len(v) for v in links.values())
    print(f"{len(docs)} documents, {n_links} links, {len(used)} entities")
    print(
        f"| step | seconds |\n|---|---:|\n| detection (spaCy + gazetteer) | {t_detect:.1f} |\n"
        f"| resolution per document | {t_doc:.1f} |\n| corpus pass | {t_corpus:.2f} |"
    )
    for k, v in health.items():
        print(f"{k}: {v}")
    if args.show:
        _show(links, entities)
    if args.replicate:
        _time_replicated(results, linker, args.replicate)


def _show(links: dict, entities: dict) -> None:
    from index.linking.detect import EDGE_WORDS

    for eid, ent in sorted(entities.items()):
        words = str(ent.get("name", "")).split()
        if (
            eid.startswith("local:")
            and words
            and (
                (words[0].casefold() in EDGE_WORDS and words[0] != "The" and not words[0].isupper())
                or (words[-1].casefold() in EDGE_WORDS and not words[-1].isupper())
            )
        ):
            print("  edge:", eid, ent.get("name"))
    for doc_id, ls in links.items():
        named = {lk["text"] for lk in ls}
        for lk in ls:
            name = str(entities.get(lk["entity_id"], {}).get("name", ""))
            if (
                any(c.isdigit() for c in name)
                and not any(c.isdigit() for c in lk["text"])
                and name not in named
            ):
                print("  numbered:", doc_id, lk["text"], "->", lk["entity_id"], lk["rule"])


def _time_replicated(results: list, linker, copies: int) -> None:
    from dataclasses import replace as dc_replace

    many = []
    for k in range(copies):
        for r in results:
            shift = f"{int(r.date[:4]) + k:04d}{r.date[4:]}" if r.date else None
            clusters = {
                f"{pid}c{k}": dc_replace(cl, pid=f"{pid}c{k}", date=shift)
                for pid, cl in r.clusters.items()
            }
            ren = {pid: f"{pid}c{k}" for pid in r.clusters}
            links = [dc_replace(lk, entity_id=ren.get(lk.entity_id, lk.entity_id)) for lk in r.links]
            acr = [(a, ren.get(t, t)) for a, t in r.acronyms]
            many.append(
                dc_replace(
                    r, doc_id=f"{r.doc_id}#{k}", date=shift, links=links, clusters=clusters, acronyms=acr,
                    blocks=None,  # the copy's clusters have other ids
                )
            )
    t = time.perf_counter()
    corpus_pass.resolve(many, linker.registry, linker.index)
    print(f"corpus pass alone over {len(many)} documents ({copies} copies): {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
