"""A digest of every part of a build of the first N BBC articles: to show a change leaves the output alone.

Run (from the repository root; run it on both versions and diff the output)::

    .venv/bin/python benchmarks/build_digest.py [--docs 300] [--model hash]

Builds ``--docs`` BBC articles from scratch (``incremental=False``) and prints one hash per part: the
store's documents, paragraphs (with links and quotes) and entities, read through ``index/store.py``; the
vectors and their ids; Whoosh's contents read back through Whoosh (stored fields, document lengths, term
infos, and per posting block the length and weight bounds, ids, weights and values; segment ids left out);
the posting arrays byte for byte (bar the segment id in ``meta.json``); every other file byte for byte;
the manifest counts. The linking state is hashed as loaded (its pickles' bytes vary from build to build).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_latency import bbc_available, bbc_documents, settings_for, write_jsonl  # noqa: E402

from index import layout  # noqa: E402
from index.build import build_index  # noqa: E402
from index.linking.incremental import LinkingState  # noqa: E402
from index.store import open_store  # noqa: E402
from index.vectors import VectorIndex  # noqa: E402


def _canon(value: Any) -> Any:
    """``value`` as JSON-able data with sets sorted (their order changes from process to process)."""
    if isinstance(value, dict):
        return sorted(([_canon(k), _canon(v)] for k, v in value.items()), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_canon(v) for v in value), key=repr)
    if hasattr(value, "__dict__") or hasattr(value, "__slots__"):
        fields = getattr(value, "__dict__", None) or {k: getattr(value, k) for k in value.__slots__}
        return [type(value).__name__, _canon(fields)]
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _h(value: Any) -> str:
    data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, default=repr).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def whoosh_contents(folder: Path) -> str:
    """A hash of everything the Whoosh index in ``folder`` holds, read through Whoosh."""
    from whoosh import index as whoosh_index

    h = hashlib.sha256()
    with whoosh_index.open_dir(str(folder)).reader() as r:
        names = r.schema.names()
        for d in range(r.doc_count_all()):
            lengths = [r.doc_field_length(d, f) for f in names]
            h.update(repr((sorted(r.stored_fields(d).items()), lengths)).encode())
        for f in names:
            if not r.schema[f].indexed:
                continue
            h.update(repr((f, r.field_length(f))).encode())
            for t in r.field_terms(f):
                ti = r.term_info(f, t)
                h.update(repr((f, t, ti.weight(), ti.doc_frequency(), ti.min_length(), ti.max_length(),
                               ti.max_weight(), ti.min_id(), ti.max_id())).encode())
                m = r.postings(f, t)
                while m.is_active():
                    h.update(repr((m.block_min_length(), m.block_max_length(), m.block_max_weight(), m.id(),
                                   m.weight(), m.value())).encode())
                    m.next()
    return h.hexdigest()[:16]


def digest(build: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    store = open_store(build)
    try:
        paragraphs = list(store.iter_paragraphs())
        out["store documents"] = _h(list(store.iter_documents()))
        out["store paragraphs (links, quotes)"] = _h(paragraphs)
        ids = sorted({lk["entity_id"] for p in paragraphs for lk in p["links"]})
        out["store entities"] = _h([store.entity(e) for e in ids])
    finally:
        store.close()
    vi = VectorIndex.open(build)
    live = vi.live_ids()  # row order (a delta build: base rows, then the delta's)
    out["vectors"] = _h(vi.vectors(vi.rows_of(live)).tobytes() + json.dumps(live).encode())
    out["whoosh contents"] = whoosh_contents(build / layout.WHOOSH_DIR)
    arrays = build / layout.POSTINGS_DIR
    meta = json.loads((arrays / "meta.json").read_text(encoding="utf-8"))
    meta.pop("segment")
    out["posting arrays"] = _h(b"".join(p.name.encode() + p.read_bytes() for p in sorted(arrays.iterdir())
                                        if p.name != "meta.json") + json.dumps(meta).encode())
    state = LinkingState.load(build / layout.LINKING_STATE)
    if state is not None:
        out["linking state (unpickled)"] = _h(_canon((state.fingerprints, state.results, state.quotes,
                                                      state.outcome, state.languages)))
    for f in sorted(build.iterdir()):
        if f.name.startswith("linking") and f.suffix == ".pkl":
            continue
        if f.is_file() and f.name != layout.MANIFEST and f.suffix not in (".faiss", ".sqlite"):
            out[f.name] = _h(f.read_bytes())
    out["manifest counts"] = _h(json.loads((build / layout.MANIFEST).read_text(encoding="utf-8"))["counts"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--model", default="hash", help="encoder (hash: deterministic and fast)")
    args = ap.parse_args(argv)
    if not bbc_available():
        print("skip: BBC corpus not found (set PERSONAE_BBC)")
        return 0
    with tempfile.TemporaryDirectory(prefix="build-digest-") as tmp:
        corpus = write_jsonl(bbc_documents()[: args.docs], Path(tmp) / "corpus.jsonl")
        report = build_index(settings_for(Path(tmp) / "index", corpus, model=args.model), incremental=False)
        for part, value in digest(report.folder).items():
            print(f"{part:34s} {value}")
        print(f"{report.documents} documents, {report.paragraphs} paragraphs, {report.entities} entities, "
              f"{report.links} links, {report.quotes} quotes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
