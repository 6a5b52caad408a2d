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
    results = [linker.resolve_document(d, ms, i) for i, (d, ms) in enumerate(zip(docs, mentions, strict=True))]
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
    print(f"| step | seconds |\n|---|---:|\n| detection (spaCy + gazetteer) | {t_detect:.1f} |\n"
          f"| resolution per document | {t_doc:.1f} |\n| corpus pass | {t_corpus:.2f} |")
    for k, v in health.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
