"""Build the index folder: corpus → paragraphs → entity links → Whoosh + FAISS → manifest → atomic swap.

This is the only writer of ``<index_dir>``. A build happens in ``.tmp-<stamp>-<pid>``; only when every
part is written does it get its manifest, become ``build-<stamp>`` and have CURRENT point at it.

Incremental builds. Every build is complete, but the expensive steps reuse the previous build's work when
it is still valid, and the parts below are shared with it rather than written again:

* **linking** (``linking.pkl``, :mod:`index.linking.incremental`): a document whose id, title, date and text
  are unchanged keeps its resolution and is not run through NER again; the corpus pass starts from the
  previous outcome and resolves again only the blocks the changed, added and deleted documents touch; a
  document whose final links are unchanged keeps its quotes. Reused when the detector and resolver code,
  the model and the registry file are unchanged; the result equals a full rebuild's.
* **rows** (:mod:`index.kept_rows`): a document whose final links and quotes the linker knows to be the
  previous build's, and whose record the previous store holds as it is, keeps its stored paragraph rows,
  keyword tags and share of the entity table and counts; nothing is derived for it again.
* **mention detection** (spaCy NER + gazetteer) of documents that did change is cached in
  ``mentions-<gen>.jsonl``, keyed by a hash of the document text, under the same conditions.
* **paragraph vectors** are read back from the previous build's float32 rows (a flat index's own, or an
  8-bit HNSW base's ``vectors-exact.npy``: lossless), keyed by a hash of the exact text that was embedded;
  reused when the encoder is unchanged.
* **sharing** (:mod:`index.layers`): the store's rows, the detector output and the per-document linking
  state are layer files; a build hard-links the previous build's layers and writes only what changed
  (documents whose rows differ, texts detected anew, entries whose digest differs) into one new layer, and
  the manifest takes a shared file's checksum from the previous manifest. The previous build's files are
  never written: it keeps serving, and a build that fails leaves it as it was.
* **the vector and keyword indexes** are shared, not rewritten: the new build hard-links the previous
  build's base files (``vectors.faiss``, the Whoosh base segment and its posting arrays; never modified)
  and writes only a delta (``index/vectors.py``, ``index/keyword.py``: a small exact index and a mask of
  the base rows that left; one new Whoosh segment and the base rows marked deleted). Once the delta would
  exceed ``delta_fraction`` of the base, the build writes them whole again (a new base). A linked file
  keeps its checksum from the previous manifest (same inode, size and mtime).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
import pickle
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from index import layers, layout
from index.dates import with_iso_dates
from index.documents import read_corpus, split_paragraphs
from index.duplicates import write_duplicates
from index.encoder import compose_text
from index.errors import PersonaeError, StorageError
from index.kept_rows import PreviousRows, Tallies
from index.linking.context import ParagraphVectors
from index.readers import ReadOptions
from index.records import Document, Link, Mention, Paragraph, Quote
from index.settings import Settings
from index.store import open_store, write_store

if TYPE_CHECKING:
    from index.linking.incremental import LinkingState

VERSION = "0.1.0"
EMBED_RECIPE = "compose_text:1"  # bump when the text a paragraph is embedded as changes: old vectors go stale


@dataclass
class BuildReport:
    folder: Path
    documents: int
    paragraphs: int
    entities: int
    links: int
    quotes: int  # quotes found (a quote running across paragraphs counts once)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    reused: int = 0  # documents whose mentions and vectors all came from the previous build
    processed: int = 0  # documents that needed NER or encoding
    incremental: str = ""  # "" for a full build, else the previous build's folder name it reused from
    health: dict[str, Any] = field(default_factory=dict)  # index.linking.evaluate.link_health
    quotes_named: int = 0  # quotes attributed to a named entity
    quotes_unnamed: int = 0  # quotes of an unnamed source ("a company spokeswoman")
    quotes_unattributed: int = 0  # quotes whose speaker was not found
    formats: dict[str, int] = field(default_factory=dict)  # documents per format (pdf, docx, eml, ...)
    languages: dict[str, int] = field(default_factory=dict)  # documents per detected language ("" unknown)

    def summary(self) -> str:
        lines = [
            f"built {self.folder}",
            f"  documents  {self.documents}",
            f"  paragraphs {self.paragraphs}",
            f"  entities   {self.entities} ({self.links} links, {self.quotes} quotes)",
            f"  quotes     {self.quotes} found: {self.quotes_named} attributed to a named entity, "
            f"{self.quotes_unnamed} to an unnamed source, {self.quotes_unattributed} unattributed",
            f"  formats    {_counts(self.formats)}",
            f"  languages  {_counts(self.languages)}",
            f"  skipped    {len(self.skipped)}",
            *self._health_lines(),
            (f"  reused     {self.reused} documents, processed {self.processed} (incremental from "
             f"{self.incremental})" if self.incremental
             else f"  full build ({self.processed} documents processed)"),
            f"  time       {self.seconds:.1f}s ("
            + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
            + ")",
        ]
        lines += [f"  skipped: {s}" for s in self.skipped]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def _health_lines(self) -> list[str]:
        h = self.health
        if not h:
            return []
        types = ", ".join(f"{n} {t}" for t, n in h["entities_per_type"].items())
        return [
            f"  types      {types}",
            f"  link check {h['links_on_function_words']} links on function words, "
            f"{h['locals_with_function_word_edges']} local names with function-word edges, "
            f"{h['locals_with_scores']} with scores, {h['numbered_without_full_name']} digit-less names on "
            "numbered entities" + (f" (links of the {h['documents_checked']} documents linked again)"
                                   if h.get("documents_checked", self.documents) < self.documents else ""),
        ]


def _counts(counter: dict[str, int]) -> str:
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k or 'unknown'} {n}" for k, n in ranked)


def read_options(settings: Settings) -> ReadOptions:
    """How the build reads the corpus; OCR results are cached beside the builds (kept across them)."""
    return ReadOptions(
        text_column=settings.text_column, title_column=settings.title_column,
        date_column=settings.date_column,
        ocr=settings.ocr, ocr_language=settings.ocr_language, max_block_chars=settings.max_block_chars,
        ocr_cache=settings.index_path / OCR_CACHE,
    )


OCR_CACHE = "ocr-cache"
Log = Callable[[str], None]


def build_index(
    settings: Settings,
    *,
    progress: bool = False,
    encoder: Any = None,
    linker: Any = None,
    log: Log | None = None,
    extra_settings: dict[str, Any] | None = None,
    incremental: bool = True,
) -> BuildReport:
    """Build a complete index for ``settings.corpus`` into ``settings.index_dir`` and make it current.

    With ``incremental`` (the default) mentions and vectors of unchanged documents are taken from the
    current build when its snapshot (builder version, detector, registry, encoder) matches; the result is
    the same as a full rebuild. ``incremental=False`` recomputes everything.
    """
    index_dir = settings.index_path
    if index_dir.exists() and not index_dir.is_dir():
        raise StorageError(index_dir, "it is a file, not a folder", "build in")
    index_dir.mkdir(parents=True, exist_ok=True)
    with layout.build_lock(index_dir), _batch_gc():  # one builder per index folder
        return _build_locked(settings, progress=progress, encoder=encoder, linker=linker, log=log,
                             extra_settings=extra_settings, incremental=incremental)


GC_YOUNG_THRESHOLD = 100_000  # allocations between young collections while a build runs (CPython: 700)


@contextlib.contextmanager
def _batch_gc() -> Iterator[None]:
    """Fewer young garbage collections while a build runs. A build allocates millions of objects that live
    until it ends (every document's linking results, the previous build's linking state unpickled): at the
    default threshold the collector runs every 700 allocations and promotes them through every generation,
    which dominates unpickling the state and weighs on the corpus pass. Cyclic garbage is still collected,
    140 times less often; the old thresholds come back afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _build_locked(
    settings: Settings,
    *,
    progress: bool,
    encoder: Any,
    linker: Any,
    log: Log | None,
    extra_settings: dict[str, Any] | None,
    incremental: bool,
) -> BuildReport:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    say = log or (lambda _msg: None)
    index_dir = settings.index_path

    t = time.perf_counter()
    # Language detection is left to the linking worker (``_with_languages``): only NER and Whoosh need it,
    # and there it runs beside the encode instead of before it.
    corpus = read_corpus(settings.corpus, exclude=[str(settings.registry_path)],
                         options=replace(read_options(settings), detect_language=False))
    corpus.documents, date_warnings = with_iso_dates(corpus.documents)
    corpus.warnings.extend(date_warnings)
    paragraphs_by_doc = {d.id: split_paragraphs(d, settings.max_paragraph_chars) for d in corpus.documents}
    timings["read"] = time.perf_counter() - t
    say(f"read {len(corpus.documents)} documents, skipped {len(corpus.skipped)}")

    if linker is None:
        linker = _default_linker(settings)
    elif getattr(linker, "state", None) is not None:
        # A linker kept from an earlier build (one process building again and again) still holds what that
        # build linked: the state on disk is the one this build reuses, and two in memory would double the
        # heap the collector walks while the new one loads.
        linker.state = None
    snapshot = _snapshot(settings, linker, encoder)
    previous = _previous_build(index_dir, snapshot, say) if incremental else None
    warnings = list(corpus.warnings)

    reuse_mentions = previous is not None and previous.same("builder", "ner", "registry")
    cache = _MentionCache(getattr(linker, "detector", None),
                          previous.mentions() if reuse_mentions else _StoredMentions())
    # the detector's output outlives a change of the resolver; the linking state does not
    reuse_linking = previous is not None and previous.same("builder", "ner", "resolver", "registry")
    keep_state = reuse_linking and hasattr(linker, "state")
    titles = {d.id: d.title for d in corpus.documents}
    dates = {d.id: d.date or "" for d in corpus.documents}
    # The embedded texts depend only on titles and paragraph texts, not on links: encoding (the main cost)
    # runs here while a worker thread detects languages, links, writes the text files, Whoosh and the
    # near-duplicates. Both torch and spaCy release the GIL in their kernels, so on 2 cores that work hides
    # behind the encode; everything the encode does not need goes to the worker, nothing runs before or
    # after both but the manifest.
    plan = [p for ps in paragraphs_by_doc.values() for p in ps]
    texts = [compose_text(titles[p.doc_id], p.text, embed_title=settings.embed_title) for p in plan]

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    tmp = index_dir / f".tmp-{stamp}-{os.getpid()}"
    tmp.mkdir()
    stop = threading.Event()

    # NER and language detection of the texts the previous build never saw, in a process of its own while
    # this one loads the linking state: both are single-threaded Python, which in one process take turns.
    ahead = _DetectAhead.start(corpus.documents, cache, linker) if keep_state else None
    encoded = _Encoded(stop)
    context = ParagraphVectors(_paragraph_rows(corpus.documents, paragraphs_by_doc), encoded.vectors,
                               encoded.encode)

    def text_side() -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], dict[str, Any],
                             dict[str, float]]:
        spent: dict[str, float] = {}
        t = time.perf_counter()
        state = previous.linking_state() if previous is not None and keep_state else None  # beside the encode
        spent["linking_state_load"] = time.perf_counter() - t
        t = time.perf_counter()
        found = ahead.result() if ahead is not None else None
        if found is not None:
            cache.add_detected(found.mentions)
        # the main thread reads them after result(); unchanged documents keep the language found before
        corpus.documents = _with_languages(corpus.documents, state, found.languages if found else None)
        corpus.languages = Counter(d.language for d in corpus.documents)
        cache.gazetteer_only = {_text_key(d.text) for d in corpus.documents if not _english(d)}
        langs = {d.id: d.language for d in corpus.documents}
        spent["languages"] = time.perf_counter() - t
        t = time.perf_counter()
        # documents whose rows the previous build's store holds as they are: linking may leave them be
        stored = [d.to_dict() for d in corpus.documents]  # as the store writes them
        kept_from = (PreviousRows.open(previous.folder, stored, previous.manifest.counts)
                     if state is not None and previous is not None and previous.same("max_paragraph_chars")
                     else None)
        linked = _link(corpus.documents, paragraphs_by_doc, linker, progress, cache, stop=stop,
                       context=context, state=state,
                       skip=kept_from.candidates if kept_from is not None else ())
        kept = {d for d, rows in linked.items() if rows is None}
        tallies = kept_from.tallies(kept) if kept_from is not None and kept else Tallies()
        tallies.add(rows for rows in linked.values() if rows is not None)
        entities, surface_counts = tallies.entity_table(linker.entities())
        spent["link"] = time.perf_counter() - t
        if getattr(linker, "state", None) is not None:
            t = time.perf_counter()
            linker.state.save(tmp / layout.LINKING_STATE, base=state)
            spent["linking_state"] = time.perf_counter() - t
        t = time.perf_counter()
        write_store(tmp / layout.STORE, stored,
                    (row for rows in linked.values() if rows is not None for row in rows), entities,
                    previous=previous.folder / layout.STORE if previous is not None else None, kept=kept,
                    records=kept_from.records if kept_from is not None else None,
                    surface_counts=surface_counts)
        spent["store"] = time.perf_counter() - t
        registry = getattr(linker, "registry", None)
        if registry is not None:  # the registry this build linked with: queries link the same way
            registry.save(tmp / layout.REGISTRY)
        if cache.enabled:
            t = time.perf_counter()
            cache.write(tmp, (d.text for d in corpus.documents))
            spent["mentions"] = time.perf_counter() - t
        if stop.is_set():
            raise _Cancelled
        t = time.perf_counter()

        def every_row() -> Iterator[dict[str, str]]:  # those of kept documents from the previous store
            tags = kept_from.keyword_tags(kept) if kept_from is not None and kept else {}
            return _keyword_rows(linked, titles, dates, langs, paragraphs_by_doc, tags)

        # a kept document's rows are the previous build's as they are: the keyword delta keeps them by id
        rows = list(_keyword_rows({d: rows for d, rows in linked.items() if rows is not None}, titles, dates,
                                  langs))
        unchanged = [p.id for d in linked if d in kept for p in paragraphs_by_doc[d]]
        _write_keyword(tmp, previous, rows, unchanged, every_row, set(langs.values()), settings, say)
        spent["keyword"] = time.perf_counter() - t
        t = time.perf_counter()
        write_duplicates(tmp, corpus.documents, previous.folder if previous is not None else None)
        spent["duplicates"] = time.perf_counter() - t
        from index.linking.evaluate import link_health

        # here rather than after the encode, where it would keep the other core idle
        # the links of the documents linked again (those kept were checked by the build that linked them)
        health = link_health({d: [lk for row in rows for lk in row["links"]] for d, rows in linked.items()
                              if rows is not None}, entities)
        health["documents_checked"] = len(linked) - len(kept)
        return linked, tallies, len(entities), health, spent

    worker = _Worker(text_side)
    try:
        t = time.perf_counter()
        reuse_vectors = previous is not None and previous.same("builder", "encoder", "embed")
        keys = [_text_key(text) for text in texts]
        old_vectors = previous.vectors(keys) if reuse_vectors else _OldVectors.none()
        todo = [i for i, key in enumerate(keys) if key not in old_vectors.row]
        encoder, model_id = _encoder_for(settings, encoder, previous,
                                         needed=bool(todo) or not old_vectors.row)
        # The worker shares the cores only while it works, not while it waits for these vectors.
        fresh = (_encode([texts[i] for i in todo], settings, encoder, progress,
                         busy=lambda: worker.alive() and not encoded.waiting) if todo else None)
        vectors = _BuildVectors(keys, old_vectors, todo, fresh, dim=getattr(encoder, "dim", 0))
        encoded.done(vectors, encoder, settings.batch_size)
        vinfo = _write_vectors(tmp, previous if reuse_vectors else None, vectors, [p.id for p in plan],
                               keys, settings, say)
        vectors_s = time.perf_counter() - t
        linked, tallies, n_entities, health, spent = worker.result()
        timings.update(spent)
        timings["vectors"] = vectors_s
        if list(linked) != [d.id for d in corpus.documents]:  # vectors were written in plan order
            raise RuntimeError("internal error: linked paragraphs are not in the order they were encoded")
        processed = _processed(corpus.documents, plan, todo, cache)
        if previous:
            say(f"incremental from {previous.folder.name}: reused {len(corpus.documents) - processed} "
                f"documents, processed {processed}; encoded {len(todo)} of {len(texts)} paragraphs")
        n_links, qc = tallies.links, tallies.quotes
        n_quotes = qc.found
        checksums, sizes, stats = _checksums(tmp, previous)
        manifest = layout.Manifest(
            format=layout.INDEX_FORMAT,
            version=VERSION,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            corpus=str(settings.corpus),
            corpus_fingerprint=corpus_fingerprint(corpus.documents),
            counts={"documents": len(corpus.documents), "paragraphs": len(plan), "entities": n_entities,
                    "links": n_links, "quotes": n_quotes, "quotes_named": qc.named,
                    "quotes_unnamed": qc.unnamed, "quotes_unattributed": qc.unattributed,
                    "skipped": len(corpus.skipped)},
            settings={**vars(settings), **(extra_settings or {})},
            models={"encoder": model_id, "dim": str(vinfo.get("dim")),
                    "vector_index": str(vinfo.get("kind")), "ner": settings.ner_model},
            skipped=[str(e) for e in corpus.skipped],
            files=checksums,
            build_seconds=round(time.perf_counter() - t0, 3),
            sizes=sizes,
            snapshot=snapshot,
            stats=stats,
        )
        layout.write_manifest(tmp, manifest)
        final = index_dir / f"build-{stamp}"
        layout.publish_build(tmp, final)
    except BaseException:
        stop.set()  # a failed encode stops the linking worker at its next chunk
        worker.join()
        if ahead is not None:
            ahead.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        layout.swap_current(index_dir, final)
    except BaseException:
        if not layout.points_at(index_dir, final):  # the old build still serves; drop the orphan
            shutil.rmtree(final, ignore_errors=True)
        raise
    return BuildReport(
        folder=final, documents=len(corpus.documents), paragraphs=len(plan), entities=n_entities,
        links=n_links, quotes=n_quotes, skipped=[str(e) for e in corpus.skipped], warnings=warnings,
        seconds=time.perf_counter() - t0, timings=timings, reused=len(corpus.documents) - processed,
        processed=processed, incremental=previous.folder.name if previous else "", health=health,
        quotes_named=qc.named, quotes_unnamed=qc.unnamed, quotes_unattributed=qc.unattributed,
        formats=dict(corpus.formats), languages=dict(corpus.languages),
    )


def _with_languages(docs: Sequence[Document], state: LinkingState | None = None,
                    detected: dict[str, str] | None = None) -> list[Document]:
    """``docs`` with the language of each one the reader left unknown detected (ingestion's detection, which
    the build turns off while reading so that it runs in the linking worker, beside the encode), or taken
    from the previous build's ``state`` for a document it holds unchanged, or from ``detected`` (by
    ``_DetectAhead``)."""
    from index.readers.language import detect_language

    def language(d: Document) -> str:
        known = state.language_of(d) if state is not None else None
        if known is None and detected is not None:
            known = detected.get(d.id)
        return known if known is not None else detect_language(d.text)

    return [d if d.language else replace(d, language=language(d)) for d in docs]


def _english(doc: Document) -> bool:
    """English, or unknown (too little text to tell): the English NER model reads it."""
    return doc.language in ("", "en")


def _processed(
    docs: Sequence[Document], plan: list[Paragraph], todo: Sequence[int], cache: _MentionCache
) -> int:
    """Documents that needed NER or encoding."""
    encoded_docs = {plan[i].doc_id for i in todo}
    return sum(1 for d in docs if d.id in encoded_docs or cache.missed(d.text))


class _Cancelled(Exception):
    """The linking worker stopped early because the build failed elsewhere."""


class _Worker:
    """Runs ``fn`` in a daemon thread; ``result()`` joins it and returns its value or re-raises its error."""

    def __init__(self, fn: Callable[[], Any]):
        self._fn = fn
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="personae-build-link", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as err:  # handed to the main thread by result()
            self._error = err

    def join(self) -> None:
        self._thread.join()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


# ------------------------------------------------------------------------------------ incremental reuse


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _file_digest(path: Path | str | None) -> str:
    if path is None:
        return "none"
    p = Path(path)
    return layout.sha256_file(p)[:32] if p.is_file() else "missing"


def _snapshot(settings: Settings, linker: Any, encoder: Any) -> dict[str, Any]:
    """What the reusable parts of a build depend on; a part is reused only when its keys are unchanged."""
    from index.keyword import KEYWORD_RECIPE

    detector = getattr(linker, "detector", None)
    registry = getattr(linker, "registry", None)
    if detector is None or registry is None:
        ner = registry_key = resolver = f"custom-{id(linker)}"  # unknown linker: never reuse mentions
    else:
        from index.linking.detect import DETECTOR_VERSION
        from index.linking.resolve import RESOLVER_VERSION

        resolver = RESOLVER_VERSION
        ner = json.dumps({"code": DETECTOR_VERSION,
                          "model": getattr(detector, "model", None),
                          "non_english": "gazetteer",  # documents not in English get no (English) NER
                          "use_ner": getattr(detector, "use_ner", None),
                          "rescan": getattr(detector, "rescan", None),
                          "window": getattr(detector, "window", None),
                          "labels": sorted(getattr(detector, "labels", ()))}, sort_keys=True)
        registry_key = _file_digest(getattr(registry, "path", None)) if getattr(registry, "path", None) else (
            "empty" if not len(registry) else f"unsaved-{id(registry)}")
    return {
        "builder": VERSION,
        "ner": ner,
        "resolver": resolver,
        "registry": registry_key,
        "encoder": f"model:{encoder.model_id}" if encoder is not None else f"setting:{settings.model}",
        "embed": EMBED_RECIPE,
        "keyword": KEYWORD_RECIPE,
        "embed_title": settings.embed_title,
        "max_paragraph_chars": settings.max_paragraph_chars,
    }


class _Previous:
    """The live build, read only for what an incremental build can reuse."""

    def __init__(self, folder: Path, manifest: layout.Manifest, snapshot: dict[str, Any]):
        self.folder = folder
        self.manifest = manifest
        self.snapshot = snapshot

    def same(self, *keys: str) -> bool:
        old = self.manifest.snapshot
        return all(k in old and old[k] == self.snapshot[k] for k in keys)

    def mentions(self) -> _StoredMentions:
        return _StoredMentions(self.folder)

    def linking_state(self) -> LinkingState | None:
        """The previous build's linking, per document and for the corpus pass (None if it kept none); the
        texts of documents that changed or left come from its store."""
        from index.linking.incremental import LinkingState

        state = LinkingState.load(self.folder / layout.LINKING_STATE)
        if state is not None:
            state.old_text = self._texts
        return state

    def _texts(self, doc_ids: Sequence[str]) -> dict[str, str]:
        store = open_store(self.folder)
        try:
            return {d: row["text"] for d, row in store.documents(doc_ids).items()}
        finally:
            store.close()

    @functools.cached_property
    def vector_keys(self) -> tuple[list[str], list[str | None], dict[str, tuple[int, str]]] | None:
        """``index.vectors.stored_keys`` of this build, read once (the reuse of old vectors and the vector
        delta both need it)."""
        from index.vectors import stored_keys

        return stored_keys(self.folder)

    def vectors(self, wanted: Sequence[str]) -> _OldVectors:
        """Old vectors for those of the text keys ``wanted`` (``_text_key``) the previous build embedded (the
        keys its vector files record, else read from its store)."""
        stored = self.vector_keys
        if stored is not None:
            return self._vectors_of(wanted, {pid: key for pid, (_, key) in stored[2].items()})
        store = open_store(self.folder)
        try:
            titles = {d["id"]: d["title"] for d in store.iter_documents()}
            embed_title = bool(self.manifest.settings.get("embed_title", True))
            row_key = {
                row["id"]: _text_key(compose_text(titles[row["doc_id"]], row["text"],
                                                  embed_title=embed_title))
                for row in store.iter_paragraphs()
            }
        finally:
            store.close()
        return self._vectors_of(wanted, row_key)

    def _vectors_of(self, wanted_keys: Sequence[str], row_key: dict[str, str]) -> _OldVectors:
        from index.vectors import VectorIndex

        wanted = set(wanted_keys)
        index = VectorIndex.open(self.folder)
        rows: dict[str, int] = {}
        for i, pid in enumerate(index.ids):
            key = row_key.get(pid)
            if key in wanted and key not in rows:
                rows[key] = i
        if not rows:
            return _OldVectors.none()
        return _OldVectors(index, rows)


@dataclass
class _OldVectors:
    """Vectors the previous build embedded: ``index`` (its vector index, opened) holds the vector of the
    text with key ``k`` in row ``row[k]``; read only when asked for (``take``)."""

    index: Any
    row: dict[str, int]

    @classmethod
    def none(cls) -> _OldVectors:
        return cls(None, {})

    def take(self, keys: Iterable[str]) -> np.ndarray:
        rows = np.fromiter((self.row[k] for k in keys), dtype=np.int64)
        return self.index.vectors(rows)


class _BuildVectors:
    """The build's paragraph vectors, row ``i`` that of ``keys[i]``: those encoded now (rows ``todo``, in
    ``fresh``) and those the previous build embedded, read from its index only when a row is asked for. An
    incremental build writes a vector delta of a few thousand rows and the linker reads a few more: the
    million rows the previous build holds are never all copied into memory (``array`` does, for a full
    write)."""

    def __init__(self, keys: Sequence[str], old: _OldVectors, todo: Sequence[int], fresh: Any, dim: int):
        self._keys = keys
        self._old = old
        self._fresh_row = {i: j for j, i in enumerate(todo)}
        self._fresh = np.asarray(fresh, dtype=np.float32) if fresh is not None else None
        if self._fresh is not None and len(self._fresh):
            dim = self._fresh.shape[1]
        elif old.index is not None:
            dim = old.index.dim
        self.shape = (len(keys), dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, at: int | Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(at, (int, np.integer)):
            return self.rows([int(at)])[0]
        return self.rows(at)

    def rows(self, at: Sequence[int] | np.ndarray) -> np.ndarray:
        at = [int(i) for i in at]
        out = np.empty((len(at), self.shape[1]), dtype=np.float32)
        mine = [(n, self._fresh_row[i]) for n, i in enumerate(at) if i in self._fresh_row]
        if mine:
            out[[n for n, _ in mine]] = self._fresh[[j for _, j in mine]]  # type: ignore[index]
        theirs = [(n, self._keys[i]) for n, i in enumerate(at) if i not in self._fresh_row]
        if theirs:
            out[[n for n, _ in theirs]] = self._old.take(k for _, k in theirs)
        return out

    def array(self) -> np.ndarray:
        return self.rows(range(self.shape[0])) if self.shape[0] else np.zeros(self.shape, dtype=np.float32)


def _previous_build(index_dir: Path, snapshot: dict[str, Any], say: Log) -> _Previous | None:
    try:
        folder = layout.current_build(index_dir)
        manifest = layout.verify(folder, deep=True, trust_unchanged=True)  # never reuse a damaged build
    except PersonaeError as err:
        say(f"full build: no usable previous build ({err})")
        return None
    return _Previous(folder, manifest, snapshot)


class _StoredMentions:
    """The previous build's detector output (its ``mentions-<gen>.jsonl`` layers), by text key: a line is
    parsed only when its mentions are asked for (most documents of an incremental build are reused whole,
    and their detector output need not be decoded)."""

    _PREFIX = '{"key": "'

    def __init__(self, folder: Path | None = None):
        self.lines: dict[str, str] = {}
        self.layers: list[tuple[Path, list[str]]] = []  # each file and the keys it holds
        for path in layers.layer_files(folder, layout.MENTIONS, ".jsonl") if folder is not None else ():
            keys = []
            with path.open(encoding="utf-8") as f:
                for line in f:
                    if line.startswith(self._PREFIX):
                        key = line[len(self._PREFIX) : line.index('"', len(self._PREFIX))]
                        self.lines[key] = line
                        keys.append(key)
            self.layers.append((path, keys))

    def __contains__(self, key: object) -> bool:
        return key in self.lines

    def __getitem__(self, key: str) -> list[Mention]:
        return [Mention(*m) for m in json.loads(self.lines[key])["mentions"]]


def read_mentions(folder: Path) -> dict[str, list[Mention]]:
    """Every text key's detector output stored in build ``folder`` (all its layers)."""
    stored = _StoredMentions(folder)
    return {k: stored[k] for k in stored.lines}


class _MentionCache:
    """Wraps the linker's detector: cached mentions for texts seen by the previous build, NER for the rest.

    Records every text's mentions so the new build can write its own detector-output layer. Texts whose key
    is in ``gazetteer_only`` (documents not in English) get the registry gazetteer only, no English NER.
    """

    def __init__(self, detector: Any, cached: _StoredMentions, gazetteer_only: Collection[str] = ()):
        self.detector = detector
        self.gazetteer_only = gazetteer_only
        self.enabled = detector is not None and hasattr(detector, "detect_many")
        self.cached = cached
        self.seen: dict[str, list[Mention]] = {}
        self._missed: set[str] = set()

    def detect(self, text: str) -> list[Mention]:
        return self.detect_many([text])[0]

    def detect_many(
        self, texts: Iterable[str], batch_size: int = 64, n_process: int = 1
    ) -> list[list[Mention]]:
        texts = list(texts)
        keys = [_text_key(t) for t in texts]
        todo = [i for i, k in enumerate(keys) if k not in self.cached and k not in self.seen]
        ner = [i for i in todo if keys[i] not in self.gazetteer_only]
        found = dict(zip(ner, self.detector.detect_many([texts[i] for i in ner], batch_size=batch_size,
                                                        n_process=n_process) if ner else [], strict=True))
        gazetteer = getattr(self.detector, "detect_gazetteer", lambda _text: [])
        fresh = [found[i] if i in found else gazetteer(texts[i]) for i in todo]
        self.add_detected({keys[i]: ms for i, ms in zip(todo, fresh, strict=True)})
        out = []
        for k in keys:
            ms = self.seen.get(k)
            if ms is None:
                ms = self.seen[k] = self.cached[k]
            out.append(ms)
        return out

    def add_detected(self, found: dict[str, list[Mention]]) -> None:
        """Mentions this build detected, by text key (here, or in ``_DetectAhead``'s process)."""
        self.seen.update(found)
        self._missed.update(found)

    def missed(self, text: str) -> bool:
        return not self.enabled or _text_key(text) in self._missed

    def write(self, folder: Path, texts: Iterable[str]) -> None:
        """The build's ``mentions-<gen>.jsonl`` layers: every text's mentions, once per text. The previous
        build's layers that ``layers.keep_layers`` keeps are hard-linked, and only the texts they lack
        (detected by this build, or kept in a layer not kept) are written, into one new layer."""
        keys = list(dict.fromkeys(_text_key(t) for t in texts))
        old = self.cached.layers
        wanted = set(keys)
        keep = layers.keep_layers([len(k) for _, k in old], [len(wanted.intersection(k)) for _, k in old],
                                  len(keys))
        shared: set[str] = set()
        for i in keep:
            layers.share(old[i][0], folder)
            shared.update(old[i][1])
        todo = [k for k in keys if k not in shared]
        if not todo and keep:
            return
        name = layers.layer_name(layout.MENTIONS, layers.next_generation(
            [p.name for p, _ in old], layout.MENTIONS, ".jsonl"), ".jsonl")
        with (folder / name).open("w", encoding="utf-8") as f:
            for k in todo:
                ms = self.seen.get(k)
                if ms is not None:
                    row = {"key": k, "mentions": [[m.start, m.end, m.text, m.type, m.source] for m in ms]}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                elif k in self.cached:
                    f.write(self.cached.lines[k])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.detector, name)


def _encoder_for(
    settings: Settings, encoder: Any, previous: _Previous | None, *, needed: bool
) -> tuple[Any, str]:
    """The encoder, loaded only when something must be encoded; and the model id for the manifest."""
    if encoder is None and not needed and previous is not None:
        return None, previous.manifest.models.get("encoder", settings.model)
    from index.encoder import load_encoder

    encoder = encoder or load_encoder(settings.model)
    return encoder, encoder.model_id


def _encode(
    texts: list[str], settings: Settings, encoder: Any, progress: bool, busy: Callable[[], bool] | None = None
) -> Any:
    """Embedding is the cost of indexing: in-process, or spread over Ray actors (``ray_workers`` > 0).

    ``busy`` tells an encoder that can share the CPU (``encode_beside``) that the linking thread still runs.
    """
    if settings.ray_workers > 0:
        from index.distributed import encode_with_ray

        return encode_with_ray(texts, settings.model, settings.batch_size, settings.ray_workers)
    beside = getattr(encoder, "encode_beside", None)
    if busy is not None and beside is not None:
        return beside(texts, busy, batch_size=settings.batch_size, show_progress=progress)
    return encoder.encode(texts, batch_size=settings.batch_size, show_progress=progress)


def _default_linker(settings: Settings) -> Any:
    from index.linking.resolve import make_linker

    return make_linker(settings.registry_path, settings.ner_model, settings.ner_window)


def _link(
    docs: Sequence[Document], paragraphs_by_doc: dict[str, list[Paragraph]], linker: Any, progress: bool,
    cache: _MentionCache | None = None, *, stop: threading.Event | None = None,
    context: ParagraphVectors | None = None, state: LinkingState | None = None, skip: Collection[str] = (),
) -> dict[str, list[dict[str, Any]] | None]:
    """Link every document, then hand each paragraph the links and quotes inside it (paragraph offsets).

    Mentions are detected in chunks (through ``cache`` when given: the previous build's detector output),
    then the linker resolves the whole corpus at once, since the corpus pass joins names across documents.
    With ``state`` (the previous build's linking), documents it holds unchanged are not detected again, and
    the linker resolves only what the changes touch, and a document in ``skip`` whose links and quotes are
    the ones the previous build gave it gets None instead of rows (its rows are the previous build's). With
    ``stop``, detection gives up (``_Cancelled``) before the next chunk once the event is set.
    """
    todo = [d for d in docs if state is None or not state.holds(d)]
    found: dict[str, list[Mention]] = {}
    bar = tqdm(total=len(todo), desc="linking", unit="doc", disable=not progress)
    detector = cache if cache is not None and cache.enabled else linker.detector
    try:
        for i in range(0, len(todo), 64):
            if stop is not None and stop.is_set():
                raise _Cancelled
            chunk = todo[i:i + 64]
            got = detector.detect_many([d.text for d in chunk], batch_size=getattr(linker, "batch_size", 32),
                                       n_process=getattr(linker, "n_process", 1))
            found.update((d.id, ms) for d, ms in zip(chunk, got, strict=True))
            bar.update(len(chunk))
    finally:
        bar.close()
    mentions = [found.get(d.id) for d in docs]
    if state is not None:
        results = linker.link_corpus(docs, mentions, context=context, previous=state, skip=skip)
    else:
        results = linker.link_corpus(docs, mentions, context=context)
    out: dict[str, list[dict[str, Any]] | None] = {}
    for doc, result in zip(docs, results, strict=True):
        if result is None:
            out[doc.id] = None
            continue
        links, quotes = result
        rows = []
        for p in paragraphs_by_doc[doc.id]:
            p_quotes = [seg for q in quotes if q.start < p.end and p.start < q.end
                        for seg in [_quote_segment(q, p)] if seg is not None]
            row = p.to_dict()
            row["links"] = [_shifted(x, p) for x in links if p.start <= x.start and x.end <= p.end]
            row["quotes"] = [q.to_dict() for q in p_quotes]
            rows.append(row)
        out[doc.id] = rows
    return out


@dataclass
class _Detected:
    """What ``_DetectAhead`` found: each new document's language and each new text's mentions (by text
    key)."""

    languages: dict[str, str]
    mentions: dict[str, list[Mention]]


class _DetectAhead:
    """Language detection and NER of the documents whose text the previous build never saw, in a forked
    process: the build's process meanwhile loads the previous linking state, which is single-threaded
    Python as NER mostly is, so in one process they would take turns on one core while the second core
    encodes. It detects what the linking worker would (the language first; English NER, or the registry
    gazetteer for another language), and the worker then finds those texts detected.

    Forked before the build starts any thread (the encode, the linking worker). If the child fails, or the
    platform has no ``fork``, the worker detects them itself, as without it."""

    MIN_TEXTS = 20  # fewer new texts than this are not worth a process

    def __init__(self, pid: int, fd: int):
        self._pid = pid
        self._fd = fd

    @classmethod
    def start(cls, docs: Sequence[Document], cache: _MentionCache, linker: Any) -> _DetectAhead | None:
        by_key = {_text_key(d.text): d for d in docs}
        new = [d for key, d in by_key.items() if key not in cache.cached]
        if len(new) < cls.MIN_TEXTS or not cache.enabled or not hasattr(os, "fork"):
            return None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: detect, hand the result over, and leave without running any cleanup
            status = 1
            try:
                os.close(read)
                with os.fdopen(write, "wb") as out:
                    pickle.dump(_detect_new(new, cache, linker), out, protocol=pickle.HIGHEST_PROTOCOL)
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        return cls(pid, read)

    def result(self) -> _Detected | None:
        """What the child found, once it is done; None if it failed."""
        with os.fdopen(self._fd, "rb") as pipe:
            try:
                found = pickle.load(pipe)  # noqa: S301 (this build's own child)
            except (EOFError, pickle.UnpicklingError):
                found = None
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        return found if status == 0 and isinstance(found, _Detected) else None

    def close(self) -> None:
        """Stop the child if its result was never asked for (a build that failed first)."""
        if self._pid:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._pid = 0


def _detect_new(docs: Sequence[Document], cache: _MentionCache, linker: Any) -> _Detected:
    from index.readers.language import detect_language

    languages = {d.id: d.language or detect_language(d.text) for d in docs}
    cache.gazetteer_only = {_text_key(d.text) for d in docs if languages[d.id] not in ("", "en")}
    texts = [d.text for d in docs]
    found = cache.detect_many(texts, batch_size=getattr(linker, "batch_size", 32),
                              n_process=getattr(linker, "n_process", 1))
    return _Detected(languages, {_text_key(t): ms for t, ms in zip(texts, found, strict=True)})


class _Encoded:
    """The paragraph vectors as the linking thread may ask for them: only an alias that its document and
    the corpus leave undecided asks, and then waits for the main thread's encode (or gives up when the build
    stops). While it waits it needs no core: ``waiting`` tells the encode to take both back."""

    def __init__(self, stop: threading.Event):
        self._stop = stop
        self._ready = threading.Event()
        self._vectors: _BuildVectors | None = None
        self._encoder: Any = None
        self._batch = 64
        self.waiting = False

    def done(self, vectors: _BuildVectors, encoder: Any, batch_size: int) -> None:
        self._vectors, self._encoder, self._batch = vectors, encoder, batch_size
        self._ready.set()

    def _wait(self) -> None:
        self.waiting = not self._ready.is_set()
        try:
            while not self._ready.wait(0.2):
                if self._stop.is_set():
                    raise _Cancelled
        finally:
            self.waiting = False

    def vectors(self) -> _BuildVectors:
        self._wait()
        assert self._vectors is not None
        return self._vectors

    def encode(self, texts: list[str]) -> np.ndarray:
        self._wait()
        if self._encoder is None:  # every vector came from the previous build: descriptions go unread
            return np.zeros((len(texts), self.vectors().shape[1]), dtype=np.float32)
        return np.asarray(self._encoder.encode(texts, batch_size=self._batch))


def _paragraph_rows(
    docs: Sequence[Document], paragraphs_by_doc: dict[str, list[Paragraph]]
) -> list[list[tuple[int, int, int]]]:
    """Per document (corpus order): each paragraph's (start, end, row in the encode plan)."""
    rows: list[list[tuple[int, int, int]]] = []
    n = 0
    for d in docs:
        rows.append([(p.start, p.end, n + i) for i, p in enumerate(paragraphs_by_doc[d.id])])
        n += len(paragraphs_by_doc[d.id])
    return rows


def _shifted(link: Link, p: Paragraph) -> dict[str, Any]:
    """``link`` as a row of paragraph ``p`` (its offsets and text in the paragraph's), without building a
    shifted Link first (every link of the corpus passes here each build)."""
    row = link.to_dict()
    s, e = link.start - p.start, min(link.end, p.end) - p.start
    row["start"], row["end"], row["text"] = s, e, p.text[s:e]
    return row


def _quote_segment(q: Quote, p: Paragraph) -> Quote | None:
    """The part of quote ``q`` inside paragraph ``p`` (paragraph offsets), or None if only spaces are: a quote
    that runs across paragraphs becomes one segment per paragraph, all with its ``quote_id``."""
    s, e = max(q.start, p.start), min(q.end, p.end)
    while s < e and p.text[s - p.start].isspace():
        s += 1
    while e > s and p.text[e - 1 - p.start].isspace():
        e -= 1
    if s >= e:
        return None
    return replace(q, start=s - p.start, end=e - p.start, text=p.text[s - p.start : e - p.start])


def _keyword_rows(
    linked: dict[str, list[dict[str, Any]] | None], titles: dict[str, str], dates: dict[str, str],
    langs: dict[str, str] | None = None, paragraphs_by_doc: dict[str, list[Paragraph]] | None = None,
    tags: dict[str, tuple[str, str]] | None = None,
) -> Iterator[dict[str, str]]:
    """The keyword index's row of every paragraph, in build order. A kept document (rows None) has its
    paragraphs from ``paragraphs_by_doc`` and their linked entities and speakers from ``tags`` (the
    previous build's store: ``PreviousRows.keyword_tags``)."""
    for doc_id, rows in linked.items():
        if rows is None:
            parts = [(p.id, p.text, *(tags or {}).get(p.id, ("", "")))
                     for p in (paragraphs_by_doc or {})[doc_id]]
        else:
            parts = [(row["id"], row["text"], ",".join(sorted({x["entity_id"] for x in row["links"]})),
                      ",".join(sorted({q["speaker"] for q in row["quotes"] if q["speaker"]})))
                     for row in rows]
        for pid, text, entity, said in parts:
            yield {"id": pid, "doc_id": doc_id, "lang": (langs or {}).get(doc_id, ""), "date": dates[doc_id],
                   "title": titles[doc_id], "text": text, "entity": entity, "said": said}


def _checksums(folder: Path, previous: _Previous | None = None,
               ) -> tuple[dict[str, str], dict[str, int], dict[str, list[int]]]:
    """sha256, size in bytes and [mtime_ns, inode] (``layout.unchanged_since_hashed``) of every file of the
    build but the manifest, by relative path. A file hard-linked from the previous build (the same inode,
    size and mtime as the file its manifest lists under the same path) keeps the checksum recorded there
    instead of being read again."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != layout.MANIFEST]
    rel = [p.relative_to(folder).as_posix() for p in files]
    checksums: dict[str, str] = {}
    sizes: dict[str, int] = {}
    stats: dict[str, list[int]] = {}
    for r, p in zip(rel, files, strict=True):
        st = p.stat()
        sizes[r] = st.st_size
        stats[r] = [st.st_mtime_ns, st.st_ino]
        known = previous.manifest.files.get(r) if previous is not None else None
        if known is not None and st.st_nlink > 1 and _same_file(st, previous.folder / r):  # type: ignore[union-attr]
            checksums[r] = known
        else:
            checksums[r] = layout.sha256_file(p)
    return checksums, sizes, stats


def _same_file(st: os.stat_result, other: Path) -> bool:
    try:
        o = other.stat()
    except OSError:
        return False
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns) == (o.st_ino, o.st_dev, o.st_size,
                                                                   o.st_mtime_ns)


def _write_vectors(
    tmp: Path, previous: _Previous | None, vectors: _BuildVectors, ids: list[str], keys: list[str],
    settings: Settings, say: Log,
) -> dict:
    """The vector index: a delta on the previous build's base (``previous``: its vectors are reusable) while
    the delta stays within ``delta_fraction`` of the base and the base is of the kind this many rows want;
    else written whole."""
    from index.vectors import share_base, write_vector_delta, write_vector_index

    stored = previous.vector_keys if previous is not None and settings.delta_fraction > 0 else None
    if stored is not None and previous is not None:
        base_ids, base_keys, _ = stored
        base_kind = previous.manifest.models.get("vector_index")  # the kind its base was written as
        kept, fresh = layers.match_base(base_ids, base_keys, ids, keys)
        removed = [row for row in range(len(base_ids)) if row not in kept]
        wanted = "hnsw" if len(ids) > settings.hnsw_threshold else "flat"
        if base_kind == wanted and len(fresh) + len(removed) <= settings.delta_fraction * len(base_ids):
            upgraded = share_base(previous.folder, tmp)
            how = " (upgraded to 8-bit codes)" if upgraded else ""
            say(f"vectors: {len(kept)} rows shared with {previous.folder.name}{how}, {len(fresh)} written, "
                f"{len(removed)} removed")
            return write_vector_delta(tmp, vectors[fresh], [ids[i] for i in fresh], [keys[i] for i in fresh],
                                      removed=removed)
    return write_vector_index(tmp, vectors.array(), ids, hnsw_threshold=settings.hnsw_threshold, keys=keys)


def _write_keyword(
    tmp: Path, previous: _Previous | None, rows: list[dict[str, str]], unchanged: list[str],
    every_row: Callable[[], Iterable[dict[str, str]]], languages: set[str], settings: Settings, say: Log,
) -> None:
    """The keyword index and its posting arrays: a delta on the previous build's segments while that is
    allowed (see ``write_keyword_delta``), else written whole. ``rows`` are those of the documents linked
    again, ``unchanged`` the paragraph ids of the others (the previous build's rows), ``every_row`` all rows
    in build order."""
    from index.keyword import write_keyword_delta, write_keyword_index

    whoosh, postings = tmp / layout.WHOOSH_DIR, tmp / layout.POSTINGS_DIR
    if previous is not None and previous.same("builder", "keyword") and settings.delta_fraction > 0:
        delta = write_keyword_delta(
            whoosh, previous.folder / layout.WHOOSH_DIR, rows, postings=postings,
            previous_postings=previous.folder / layout.POSTINGS_DIR, max_fraction=settings.delta_fraction,
            link=layers.link_or_copy, unchanged=unchanged, all_rows=every_row)
        if delta is not None:
            say(f"keyword: {delta.kept} rows shared with {previous.folder.name}, {delta.written} written, "
                f"{delta.deleted} deleted; {delta.segments} segments")
            return
    write_keyword_index(whoosh, every_row(), languages=languages, postings=postings)


def corpus_fingerprint(docs: Sequence[Document]) -> str:
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.id):
        h.update(f"{d.id}\0{d.fingerprint}\n".encode())
    return h.hexdigest()[:16]
