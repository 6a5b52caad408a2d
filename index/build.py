"""Build the index folder: corpus → paragraphs → entity links → Whoosh + FAISS → manifest → atomic swap.

This is the only writer of ``<index_dir>``. A build happens in ``.tmp-<stamp>-<pid>``; only when every
part is written does it get its manifest, become ``build-<stamp>`` and have CURRENT point at it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from index import layout
from index.documents import Corpus, read_corpus, split_paragraphs
from index.records import Document, Entity, Link, Paragraph, Quote
from index.settings import Settings

VERSION = "0.1.0"


@dataclass
class BuildReport:
    folder: Path
    documents: int
    paragraphs: int
    entities: int
    links: int
    quotes: int
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"built {self.folder}",
            f"  documents  {self.documents}",
            f"  paragraphs {self.paragraphs}",
            f"  entities   {self.entities} ({self.links} links, {self.quotes} quotes)",
            f"  skipped    {len(self.skipped)}",
            f"  time       {self.seconds:.1f}s ("
            + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
            + ")",
        ]
        lines += [f"  skipped: {s}" for s in self.skipped]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


Log = Callable[[str], None]


def build_index(
    settings: Settings,
    *,
    progress: bool = False,
    encoder: Any = None,
    linker: Any = None,
    log: Log | None = None,
    extra_settings: dict[str, Any] | None = None,
) -> BuildReport:
    """Build a fresh index for ``settings.corpus`` into ``settings.index_dir`` and make it current."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    say = log or (lambda _msg: None)
    index_dir = settings.index_path
    index_dir.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    corpus = read_corpus(settings.corpus, exclude=[settings.entities_file])
    paragraphs_by_doc = {d.id: split_paragraphs(d, settings.max_paragraph_chars) for d in corpus.documents}
    timings["read"] = time.perf_counter() - t
    say(f"read {len(corpus.documents)} documents, skipped {len(corpus.skipped)}")

    t = time.perf_counter()
    if linker is None:
        linker = _default_linker(settings)
    linked = _link(corpus.documents, paragraphs_by_doc, linker, progress)
    entities = _entity_table(linker.entities(), linked)
    timings["link"] = time.perf_counter() - t

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    tmp = index_dir / f".tmp-{stamp}-{os.getpid()}"
    tmp.mkdir()
    _write_jsonl(tmp / layout.DOCUMENTS, (d.to_dict() for d in corpus.documents))
    _write_jsonl(tmp / layout.PARAGRAPHS, (row for rows in linked.values() for row in rows))
    (tmp / layout.ENTITIES).write_text(json.dumps(entities, ensure_ascii=False), encoding="utf-8")

    t = time.perf_counter()
    from index.keyword import write_keyword_index

    titles = {d.id: d.title for d in corpus.documents}
    dates = {d.id: d.date or "" for d in corpus.documents}
    write_keyword_index(tmp / layout.WHOOSH_DIR, _keyword_rows(linked, titles, dates))
    timings["keyword"] = time.perf_counter() - t

    t = time.perf_counter()
    from index.encoder import load_encoder
    from index.vectors import write_vector_index

    encoder = encoder or load_encoder(settings.model)
    order = [row for rows in linked.values() for row in rows]
    texts = [_embed_text(titles[row["doc_id"]], row["text"], settings.embed_title) for row in order]
    vectors = encoder.encode(texts, batch_size=settings.batch_size, show_progress=progress)
    vinfo = write_vector_index(tmp, vectors, [row["id"] for row in order], hnsw_threshold=settings.hnsw_threshold)
    timings["vectors"] = time.perf_counter() - t

    n_links = sum(len(r["links"]) for r in order)
    n_quotes = sum(len(r["quotes"]) for r in order)
    manifest = layout.Manifest(
        format=layout.INDEX_FORMAT,
        version=VERSION,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        corpus=str(settings.corpus),
        corpus_fingerprint=corpus_fingerprint(corpus.documents),
        counts={"documents": len(corpus.documents), "paragraphs": len(order), "entities": len(entities),
                "links": n_links, "quotes": n_quotes, "skipped": len(corpus.skipped)},
        settings={**vars(settings), **(extra_settings or {})},
        models={"encoder": encoder.model_id, "dim": str(vinfo.get("dim")), "vector_index": str(vinfo.get("kind")),
                "ner": settings.ner_model},
        skipped=[str(e) for e in corpus.skipped],
        files=_checksums(tmp),
        build_seconds=round(time.perf_counter() - t0, 3),
    )
    layout.write_manifest(tmp, manifest)
    final = index_dir / f"build-{stamp}"
    os.replace(tmp, final)
    layout.swap_current(index_dir, final)
    return BuildReport(
        folder=final, documents=len(corpus.documents), paragraphs=len(order), entities=len(entities),
        links=n_links, quotes=n_quotes, skipped=[str(e) for e in corpus.skipped], warnings=corpus.warnings,
        seconds=time.perf_counter() - t0, timings=timings,
    )


def _embed_text(title: str, text: str, with_title: bool) -> str:
    return f"{title}\n{text}" if with_title and title and not text.startswith(title) else text


def _default_linker(settings: Settings) -> Any:
    from index.entities import Registry
    from index.linker import Linker
    from index.ner import Detector

    registry = Registry.load(settings.entities_file) if Path(settings.entities_file).is_file() else Registry()
    return Linker(registry, Detector(registry=registry, model=settings.ner_model))


def _link(
    docs: Sequence[Document], paragraphs_by_doc: dict[str, list[Paragraph]], linker: Any, progress: bool
) -> dict[str, list[dict[str, Any]]]:
    """Link every document, then hand each paragraph the links and quotes inside it (paragraph offsets)."""
    results: list[tuple[list[Link], list[Quote]]] = []
    bar = tqdm(total=len(docs), desc="linking", unit="doc", disable=not progress)
    for i in range(0, len(docs), 64):
        chunk = list(docs[i:i + 64])
        results.extend(linker.link_documents(chunk))
        bar.update(len(chunk))
    bar.close()
    out: dict[str, list[dict[str, Any]]] = {}
    for doc, (links, quotes) in zip(docs, results, strict=True):
        rows = []
        for p in paragraphs_by_doc[doc.id]:
            p_links = [_shift(x, p) for x in links if p.start <= x.start and x.end <= p.end]
            p_quotes = [_shift(q, p) for q in quotes if p.start <= q.start < p.end]
            row = p.to_dict()
            row["links"] = [x.to_dict() for x in p_links]
            row["quotes"] = [q.to_dict() for q in p_quotes]
            rows.append(row)
        out[doc.id] = rows
    return out


def _shift(item: Link | Quote, p: Paragraph) -> Any:
    from dataclasses import replace

    end = min(item.end, p.end)
    return replace(item, start=item.start - p.start, end=end - p.start, text=p.text[item.start - p.start:end - p.start])


def _entity_table(known: dict[str, Entity], linked: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Entities that occur in the corpus, with mention/paragraph/document counts and the surface forms seen."""
    mentions: Counter[str] = Counter()
    paragraphs: Counter[str] = Counter()
    docs: dict[str, set[str]] = defaultdict(set)
    surfaces: dict[str, Counter[str]] = defaultdict(Counter)
    for doc_id, rows in linked.items():
        for row in rows:
            ids = set()
            for link in row["links"]:
                mentions[link["entity_id"]] += 1
                surfaces[link["entity_id"]][link["text"]] += 1
                ids.add(link["entity_id"])
            for eid in ids:
                paragraphs[eid] += 1
                docs[eid].add(doc_id)
    table: dict[str, dict[str, Any]] = {}
    for eid in sorted(mentions):
        ent = known.get(eid) or Entity(id=eid, name=surfaces[eid].most_common(1)[0][0])
        row = ent.to_dict()
        row.update(mentions=mentions[eid], paragraphs=paragraphs[eid], documents=len(docs[eid]),
                   surfaces=[s for s, _ in surfaces[eid].most_common()])
        table[eid] = row
    return table


def _keyword_rows(linked: dict[str, list[dict[str, Any]]], titles: dict[str, str], dates: dict[str, str]):
    for doc_id, rows in linked.items():
        for row in rows:
            yield {
                "id": row["id"],
                "doc_id": doc_id,
                "date": dates[doc_id],
                "title": titles[doc_id],
                "text": row["text"],
                "entity": ",".join(sorted({x["entity_id"] for x in row["links"]})),
                "said": ",".join(sorted({q["speaker"] for q in row["quotes"]})),
            }


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _checksums(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): layout.sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != layout.MANIFEST
    }


def corpus_fingerprint(docs: Sequence[Document]) -> str:
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.id):
        h.update(f"{d.id}\0{d.fingerprint}\n".encode())
    return h.hexdigest()[:16]
