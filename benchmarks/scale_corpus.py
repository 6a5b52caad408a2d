"""An honest scale corpus: N paragraphs assembled from real sentences, with real MiniLM vectors.

Run (from the repository root)::

    .venv/bin/python benchmarks/scale_corpus.py [--paragraphs 1000000] [--encode-only]

Why not copies of one corpus: ten copies of BBC multiply every term's document frequency by ten and give
HNSW tight clusters of near-duplicates, which flatters both legs. Here

* **sentences** come from three real collections with different vocabularies: BBC News (2004-05, five
  categories), SciFact abstracts (biomedical) and the seed article(s) in ``seeds/``. Sentences are cut
  with spaCy's rule-based sentencizer (SciFact ships its own sentence lists);
* a **document** has a topic article (its title is that article's headline) and 2-8 paragraphs; a
  paragraph starts at a random sentence of the topic article (probability 0.7) or of another article of
  the same collection (same BBC category), and has 1-3 sentences: each next one continues the story with
  probability 0.75, else it is a random sentence of another article of that collection. Paragraphs
  recombine real text the way rewritten wire copy does; exact repeats of a paragraph are rare;
* a paragraph's **vector** is the normalised mean of the real MiniLM vectors of its title and its
  sentences (each distinct text is encoded once; ``vectors()``), which is what the builder would embed,
  up to the averaging;
* **dates** are spread uniformly over 2000-2025;
* **queries** are held apart: 10% of the BBC articles never contribute a sentence or a title; their
  headlines, and the person/organisation names the real NER finds in them, are the queries. Half of the
  queries carry a filter (an entity facet click or a date range), and the benchmark runs them grouped,
  the call the search page makes.

Everything is cached under ``var/scale/`` (``PERSONAE_SCALE_CACHE``): ``texts.jsonl`` (distinct texts),
``vectors/vectors.f32`` (their vectors, an .npy memory map filled as encoding goes, so a killed run
resumes; only the texts a corpus uses are encoded for it),
``corpus-<N>.jsonl`` (the generated documents; each line also lists its paragraphs' sentence ids) and
``queries.jsonl``.
Generation is deterministic for a given seed; 1,000,000 paragraphs is the default size.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index.documents import normalize_text, read_corpus  # noqa: E402
from index.jsonl import read_jsonl, write_jsonl  # noqa: E402

SHARED = ROOT.parent / "shared"  # ../shared relative to the repository root
BBC = Path(os.environ.get("PERSONAE_BBC", SHARED / "data" / "bbc-news" / "bbc"))
SCIFACT = Path(os.environ.get("PERSONAE_SCIFACT", SHARED / "data" / "scifact-dev")) / "corpus_train.csv"
SEEDS = ROOT / "seeds"
CACHE = Path(os.environ.get("PERSONAE_SCALE_CACHE", ROOT / "var" / "scale"))
HELD_OUT = 0.10  # share of BBC articles kept out of the corpus: their headlines and names are the queries
MAX_PARAGRAPH_CHARS = 1400  # below the builder's max_paragraph_chars, so a generated paragraph stays whole
SOURCE_WEIGHTS = {"bbc": 0.6, "scifact": 0.37, "seed": 0.03}
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2025, 12, 31)
CHUNK = 4096  # texts per cached vector chunk
MODEL = os.environ.get("PERSONAE_SCALE_MODEL", "all-MiniLM-L6-v2")  # "hash" for a quick smoke run


@dataclass(frozen=True)
class Article:
    source: str  # "bbc" | "scifact" | "seed"
    key: str  # file or doc id inside its collection
    group: str  # BBC category, else the source
    title: str
    sentences: tuple[str, ...]


def available() -> str | None:
    """None when every source is present, else what is missing."""
    if not (BBC.is_dir() and any(BBC.glob("*/*.txt"))):
        return f"BBC corpus not found at {BBC} (set PERSONAE_BBC)"
    if not SCIFACT.is_file():
        return f"SciFact corpus not found at {SCIFACT} (set PERSONAE_SCIFACT)"
    return None


def _clean(sentence: str) -> str:
    return " ".join(normalize_text(sentence).split())


def _sentencizer() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def _article_sentences(nlp: Any, text: str) -> tuple[str, ...]:
    out = []
    for block in text.split("\n\n"):
        for sent in nlp(block).sents:
            s = _clean(sent.text)
            if len(s) >= 20 and len(s) <= MAX_PARAGRAPH_CHARS:  # drop bylines, captions, fragments
                out.append(s)
    return tuple(out)


def load_articles() -> list[Article]:
    """Every article of the three collections, split into sentences, in a fixed order."""
    from search.evaluate import parse_sentence_list

    nlp = _sentencizer()
    articles = []
    for source, root, exclude in (("bbc", BBC, [BBC / "README.TXT"]),
                                  ("seed", SEEDS, [SEEDS / "entities.jsonl"])):
        for d in read_corpus(root, exclude=exclude).documents:
            body = d.text.split("\n", 1)[1] if d.text.startswith(d.title) else d.text
            group = d.id.split("/")[0] if source == "bbc" else source
            articles.append(Article(source, d.id, group, _clean(d.title), _article_sentences(nlp, body)))
    csv.field_size_limit(1 << 24)
    with SCIFACT.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            sents = tuple(s for s in map(_clean, parse_sentence_list(row["abstract"]))
                          if 20 <= len(s) <= MAX_PARAGRAPH_CHARS)
            articles.append(Article("scifact", row["doc_id"], "scifact", _clean(row["title"]), sents))
    return [a for a in articles if a.title and a.sentences]


def split_held_out(articles: Sequence[Article], seed: int = 17) -> tuple[list[Article], list[Article]]:
    """(pool, held_out): a fixed 10% of BBC articles, and every pool article sharing a title or a
    sentence with one of them (the BBC set holds a few duplicate stories), never reach the corpus."""
    rng = random.Random(seed)
    bbc = [a for a in articles if a.source == "bbc"]
    held = set(rng.sample(range(len(bbc)), round(len(bbc) * HELD_OUT)))
    held_out = [a for i, a in enumerate(bbc) if i in held]
    banned_titles = {a.title.lower() for a in held_out}
    banned_sentences = {s for a in held_out for s in a.sentences}
    pool = [a for a in articles if a not in set(held_out) and a.title.lower() not in banned_titles
            and not banned_sentences.intersection(a.sentences)]
    return pool, held_out


class TextTable:
    """Distinct texts (sentences and titles) of the pool, numbered in first-seen order."""

    def __init__(self, texts: Sequence[str]):
        self.texts = list(texts)
        self.ids = {t: i for i, t in enumerate(self.texts)}

    @classmethod
    def of(cls, pool: Sequence[Article]) -> TextTable:
        seen: dict[str, None] = {}
        for a in pool:
            seen.setdefault(a.title)
            for s in a.sentences:
                seen.setdefault(s)
        return cls(list(seen))

    def save(self, path: Path) -> None:
        write_jsonl(path, ({"id": i, "text": t} for i, t in enumerate(self.texts)))


def vectors(table: TextTable, *, needed: Iterable[int] | None = None, model: str = MODEL,
            say: Any = print) -> np.ndarray:
    """Vectors of the distinct texts (row = text id), each encoded once and cached in ``vectors/``.

    Only the ``needed`` rows (default: all) are encoded now; the others stay zero until a later call needs
    them (a 100k corpus uses about 70% of the texts, 1M all of them). Progress is saved every ``CHUNK``
    texts, so a killed run resumes where it stopped.
    """
    out_dir = CACHE / "vectors"
    out_dir.mkdir(parents=True, exist_ok=True)
    n = len(table.texts)
    stamp = {"model": model, "count": n, "first": table.texts[0], "last": table.texts[-1]}
    meta, store, done_path = out_dir / "meta.json", out_dir / "vectors.f32", out_dir / "done.npy"
    if meta.is_file() and {k: v for k, v in json.loads(meta.read_text(encoding="utf-8")).items()
                           if k != "dim"} != stamp:
        for old in out_dir.iterdir():
            old.unlink()
    todo = sorted(set(range(n) if needed is None else needed))
    done = np.load(done_path) if done_path.is_file() else np.zeros(n, dtype=bool)
    todo = [i for i in todo if not done[i]]
    encoder = None
    if not store.is_file():
        from index.encoder import load_encoder

        encoder = load_encoder(model)
        dim = encoder.dim
        meta.write_text(json.dumps({**stamp, "dim": dim}), encoding="utf-8")
        np.lib.format.open_memmap(store, mode="w+", dtype=np.float32, shape=(n, dim)).flush()
    dim = json.loads(meta.read_text(encoding="utf-8"))["dim"]
    mm = np.lib.format.open_memmap(store, mode="r+")
    assert mm.shape == (n, dim)
    for chunk in sorted(c for c in out_dir.glob("chunk-*.npy") if ".tmp" not in c.name):  # earlier layout
        start = int(chunk.stem.split("-")[1]) * CHUNK
        rows = np.load(chunk)
        mm[start:start + len(rows)] = rows
        done[start:start + len(rows)] = True
        mm.flush()
        np.save(done_path, done)
        chunk.unlink()
    todo = [i for i in todo if not done[i]]
    t0 = time.perf_counter()
    for start in range(0, len(todo), CHUNK):
        if encoder is None:
            from index.encoder import load_encoder

            encoder = load_encoder(model)
        rows = todo[start:start + CHUNK]
        mm[rows] = encoder.encode([table.texts[i] for i in rows], batch_size=64)
        mm.flush()
        done[rows] = True
        np.save(out_dir / "done.tmp.npy", done)
        os.replace(out_dir / "done.tmp.npy", done_path)
        say(f"  encoded {start + len(rows)}/{len(todo)} texts ({int(done.sum())} of {n} cached; "
            f"{time.perf_counter() - t0:.0f} s)")
    missing = [i for i in (range(n) if needed is None else needed) if not done[i]]
    if missing:
        raise RuntimeError(f"{len(missing)} needed texts have no vector")
    return np.lib.format.open_memmap(store, mode="r")


def forget_changed(old: Path, table: TextTable, say: Any = print) -> None:
    """Drop the cached vector and detector output of every text id whose text changed since ``old`` was
    written (e.g. the reader now decodes HTML entities): ids follow the pool's order, so a changed text
    keeps its id, and the caches, keyed by id, would otherwise serve the old text's vector and offsets."""
    if not old.is_file():
        return
    before = [row["text"] for row in read_jsonl(old)]
    if len(before) != len(table.texts):
        return  # another pool: vectors() starts afresh (its stamp holds the count)
    changed = {i for i, (a, b) in enumerate(zip(before, table.texts, strict=True)) if a != b}
    if not changed:
        return
    done_path = CACHE / "vectors" / "done.npy"
    if done_path.is_file():
        done = np.load(done_path)
        done[sorted(changed)] = False
        np.save(CACHE / "vectors" / "done.tmp.npy", done)
        os.replace(CACHE / "vectors" / "done.tmp.npy", done_path)
    mentions = CACHE / "mentions.jsonl"
    if mentions.is_file():
        write_jsonl(mentions.with_suffix(".tmp"), (r for r in read_jsonl(mentions) if r["id"] not in changed))
        os.replace(mentions.with_suffix(".tmp"), mentions)
    say(f"{len(changed)} texts changed since the cache was written: their vectors and mentions are redone")


def used_texts(corpus: Path) -> set[int]:
    """Ids of the texts (titles and sentences) a generated corpus uses."""
    used: set[int] = set()
    for doc in read_jsonl(corpus):
        used.add(doc["title_id"])
        for ids in doc["sentences"]:
            used.update(ids)
    return used


def paragraph_vector(vecs: np.ndarray, title_id: int | None, sentence_ids: Sequence[int]) -> np.ndarray:
    """Normalised mean of the title's and the sentences' vectors (the title only when it is embedded)."""
    rows = ([title_id] if title_id is not None else []) + list(sentence_ids)
    v = vecs[rows].mean(axis=0)
    return (v / np.linalg.norm(v)).astype(np.float32)


def generate(pool: Sequence[Article], table: TextTable, n_paragraphs: int, seed: int = 1,
             scifact_limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Documents until ``n_paragraphs`` paragraphs are made; deterministic for a seed.

    ``scifact_limit`` keeps only the first N SciFact abstracts of the pool (fewer texts to encode); each
    remaining article keeps the draw weight it has in the full pool, so the SciFact share shrinks.
    """
    rng = random.Random(seed)
    per_source = {s: sum(1 for a in pool if a.source == s) for s in SOURCE_WEIGHTS}
    if scifact_limit is not None:
        keep = {id(a) for a in [a for a in pool if a.source == "scifact"][:scifact_limit]}
        pool = [a for a in pool if a.source != "scifact" or id(a) in keep]
    by_group: dict[str, list[Article]] = {}
    for a in pool:
        by_group.setdefault(a.group, []).append(a)
    weights = [SOURCE_WEIGHTS[a.source] / per_source[a.source] for a in pool]
    span = (LAST_DAY - FIRST_DAY).days
    made = n = 0
    while made < n_paragraphs:
        topics = rng.choices(pool, weights=weights, k=1024)
        for topic in topics:
            if made >= n_paragraphs:
                break
            paragraphs = []
            for _ in range(min(rng.randint(2, 8), n_paragraphs - made)):
                src = topic if rng.random() < 0.7 else rng.choice(by_group[topic.group])
                at = rng.randrange(len(src.sentences))
                run = [src.sentences[at]]
                for _ in range(rng.choices((0, 1, 2), weights=(0.25, 0.4, 0.35))[0]):
                    if rng.random() < 0.75 and at + 1 < len(src.sentences):  # the story goes on
                        at += 1
                    else:  # or picks up a line from another story of the same kind
                        src = rng.choice(by_group[topic.group])
                        at = rng.randrange(len(src.sentences))
                    if len(" ".join(run)) + 1 + len(src.sentences[at]) > MAX_PARAGRAPH_CHARS:
                        break
                    run.append(src.sentences[at])
                paragraphs.append([table.ids[s] for s in run])
            made += len(paragraphs)
            yield {
                "id": f"gen-{n:07d}",
                "title": topic.title,
                "date": (FIRST_DAY + timedelta(days=rng.randrange(span + 1))).isoformat(),
                "source": topic.source,
                "text": "\n\n".join(" ".join(table.texts[i] for i in p) for p in paragraphs),
                "title_id": table.ids[topic.title],
                "sentences": paragraphs,
            }
            n += 1


def held_out_queries(held_out: Sequence[Article], names: Sequence[str], n: int,
                     seed: int = 3) -> list[dict[str, Any]]:
    """Half headlines, half entity names, all from held-out articles; half of each carry a filter.

    A filter is ``{"entity": "facet"}`` (the benchmark clicks the top person/org facet of the unfiltered
    result, as a reader would) or ``{"date": [from, to]}`` (a span of one to five years).
    """
    rng = random.Random(seed)
    headlines = rng.sample([a.title for a in held_out], min(n - n // 2, len(held_out)))
    picked = rng.sample(list(names), min(n // 2, len(names)))
    per_kind = []
    for kind, texts in (("headline", headlines), ("name", picked)):
        rows = []
        for j, text in enumerate(texts):
            query: dict[str, Any] = {"text": text, "kind": kind, "filter": None}
            if j % 4 == 1:
                query["filter"] = {"entity": "facet"}
            elif j % 4 == 3:
                start = rng.randint(FIRST_DAY.year, LAST_DAY.year - 1)
                end = min(LAST_DAY.year, start + rng.randint(0, 4))
                query["filter"] = {"date": [f"{start}-01-01", f"{end}-12-31"]}
            rows.append(query)
        per_kind.append(rows)
    out = [q for pair in zip(*per_kind, strict=False) for q in pair]  # alternate, so any prefix mixes
    longest = max(per_kind, key=len)
    return out + longest[len(out) // 2:]


def entity_names(held_out: Sequence[Article], pool_text: set[str]) -> list[str]:
    """Person and organisation names (two words or more) the real detector finds in held-out articles.

    The names also occur in the corpus (a name nobody wrote about is no query), but the query is the name
    alone, never a copied passage. ``pool_text`` is the corpus's sentences, to keep names that do occur.
    """
    from index.linking.resolve import make_linker
    from index.records import ORG, PERSON
    from index.settings import Settings

    settings = Settings.load(env={})
    detector = make_linker(None, settings.ner_model, settings.ner_window).detector
    texts = [" ".join(a.sentences) for a in held_out]
    names: dict[str, None] = {}
    for mentions in detector.detect_many(texts):
        for m in mentions:
            if m.type in (PERSON, ORG) and len(m.text.split()) >= 2 and m.text[:1].isupper():
                names.setdefault(m.text)
    blob = "\n".join(pool_text)
    return [x for x in names if x in blob]


def corpus_name(n_paragraphs: int, scifact_limit: int | None = None) -> str:
    return f"{n_paragraphs}" + (f"-scifact{scifact_limit}" if scifact_limit is not None else "")


def prepare(n_paragraphs: int, *, queries: int = 200, say: Any = print, encode: bool = True,
            scifact_limit: int | None = None) -> dict[str, Path]:
    """Write (or reuse) the texts, their vectors, the corpus of ``n_paragraphs`` and the query set."""
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {"texts": CACHE / "texts.jsonl",
             "corpus": CACHE / f"corpus-{corpus_name(n_paragraphs, scifact_limit)}.jsonl",
             "queries": CACHE / "queries.jsonl"}
    if not all(path.is_file() for path in paths.values()):
        t0 = time.perf_counter()
        pool, held = split_held_out(load_articles())
        table = TextTable.of(pool)
        per_source = ", ".join(f"{s} {sum(a.source == s for a in pool)}" for s in SOURCE_WEIGHTS)
        say(f"{len(pool)} pool articles ({per_source}), {len(held)} held out; {len(table.texts)} distinct "
            f"texts ({time.perf_counter() - t0:.0f} s)")
        forget_changed(paths["texts"], table, say)
        table.save(paths["texts"])
        if not paths["corpus"].is_file():
            tmp = paths["corpus"].with_suffix(".tmp")
            write_jsonl(tmp, generate(pool, table, n_paragraphs, scifact_limit=scifact_limit))
            os.replace(tmp, paths["corpus"])
        if not paths["queries"].is_file():
            names = entity_names(held, set(table.texts))
            write_jsonl(paths["queries"], held_out_queries(held, names, queries))
    if encode:
        table = TextTable([row["text"] for row in read_jsonl(paths["texts"])])
        vectors(table, needed=used_texts(paths["corpus"]), say=say)
    return paths


# ------------------------------------------------------------------------------------ building it


class SentenceMentions:
    """The real detector, run once per distinct sentence (cached in ``mentions.jsonl``) and its mentions
    shifted to where each sentence sits in a generated document.

    What this reuses and what it loses: spaCy NER and the registry gazetteer see each sentence on its own,
    so a name is found as it would be in its source article's sentence; the detector's per-document rescan
    (a name found once, matched again elsewhere in the same document) does not run across sentences.
    Linking itself (the cascade, local entities, quotes) runs for real over every document.
    """

    def __init__(self, detector: Any, table: TextTable, layouts: dict[str, list[list[int]]], path: Path):
        self.detector = detector
        self.table = table
        self.layouts = layouts  # document text key -> its paragraphs' sentence ids
        self.path = path
        self.found: dict[int, list[list[Any]]] = {}
        if path.is_file():
            self.found = {row["id"]: row["mentions"] for row in read_jsonl(path)}

    def detect(self, text: str) -> list[Any]:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str], batch_size: int = 64, n_process: int = 1) -> list[list[Any]]:
        from index.build import _text_key
        from index.records import Mention

        layouts = [self.layouts[_text_key(t)] for t in texts]
        todo = sorted({i for lay in layouts for para in lay for i in para} - set(self.found))
        if todo:
            fresh = self.detector.detect_many([self.table.texts[i] for i in todo], batch_size=batch_size)
            rows = [{"id": i, "mentions": [[m.start, m.end, m.text, m.type, m.source] for m in ms]}
                    for i, ms in zip(todo, fresh, strict=True)]
            with self.path.open("a", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            self.found.update((row["id"], row["mentions"]) for row in rows)
        out = []
        for text, lay in zip(texts, layouts, strict=True):
            mentions, pos = [], 0
            for para in lay:
                for i in para:
                    for start, end, surface, kind, source in self.found[i]:
                        m = Mention(pos + start, pos + end, surface, kind, source)
                        if text[m.start:m.end] != surface:
                            raise RuntimeError(f"mention {surface!r} is not at {m.start} in its document")
                        mentions.append(m)
                    pos += len(self.table.texts[i]) + 1  # the space after a sentence
                pos += 1  # "\n\n" between paragraphs: one more than the space counted above
            out.append(mentions)
        return out

    def __getattr__(self, name: str) -> Any:  # model, window, labels...: the snapshot of the real detector
        return getattr(self.detector, name)


class PrecomputedEncoder:
    """Answers the builder's ``encode`` with each paragraph's mean sentence vector (no model runs).

    ``load`` gives the text vectors when first needed: the builder links and writes Whoosh in a worker
    thread meanwhile, so a build can start while another process still encodes sentences.
    """

    def __init__(self, load: Callable[[], np.ndarray], parts: dict[str, tuple[int | None, list[int]]],
                 model_id: str):
        self.load = load
        self.parts = parts  # key of the embedded text -> (title id or None, sentence ids)
        self.model_id = model_id

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        from index.build import _text_key

        vecs = self.load()
        out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
        for row, text in enumerate(texts):
            title_id, ids = self.parts[_text_key(text)]
            out[row] = paragraph_vector(vecs, title_id, ids)
        return out


def wait_for_vectors(needed: set[int], say: Any = print) -> np.ndarray:
    """The cached vectors once another process (``scale_corpus.py``) has encoded every ``needed`` text."""
    done_path = CACHE / "vectors" / "done.npy"
    while True:
        missing = len(needed) - int(np.load(done_path)[sorted(needed)].sum()) if done_path.is_file() else -1
        if missing == 0:
            return np.lib.format.open_memmap(CACHE / "vectors" / "vectors.f32", mode="r")
        say(f"  waiting for {missing if missing > 0 else 'all'} text vectors from the encoding process")
        time.sleep(60)


def _linking(paths: dict[str, Path], index_dir: Path) -> tuple[TextTable, Any, Any]:
    """The text table, the linker (its detector: ``SentenceMentions``) and the build's settings."""
    from index.build import _text_key
    from index.linking.resolve import make_linker
    from index.settings import Settings

    table = TextTable([row["text"] for row in read_jsonl(paths["texts"])])
    settings = Settings.load(env={}, index_dir=str(index_dir), corpus=str(paths["corpus"]), model=MODEL,
                             entities_file=str(ROOT / "seeds" / "entities.jsonl"))
    layouts = {_text_key(doc["text"]): doc["sentences"] for doc in read_jsonl(paths["corpus"])}
    linker = make_linker(settings.entities_file, settings.ner_model, settings.ner_window)
    linker.detector = SentenceMentions(linker.detector, table, layouts, CACHE / "mentions.jsonl")
    return table, linker, settings


def detect_sentences(n_paragraphs: int, say: Any = print, scifact_limit: int | None = None) -> None:
    """Run the detector over every distinct sentence of the corpus now (cached), e.g. beside encoding."""
    paths = prepare(n_paragraphs, say=say, encode=False, scifact_limit=scifact_limit)
    _, linker, _ = _linking(paths, CACHE / f"index-{corpus_name(n_paragraphs, scifact_limit)}")
    docs = [doc["text"] for doc in read_jsonl(paths["corpus"])]
    t0 = time.perf_counter()
    for start in range(0, len(docs), 512):
        linker.detector.detect_many(docs[start:start + 512])
        say(f"  detected {min(start + 512, len(docs))}/{len(docs)} documents' sentences "
            f"({time.perf_counter() - t0:.0f} s)")


def scale_build(n_paragraphs: int, say: Any = print, *, encoded_elsewhere: bool = False,
                scifact_limit: int | None = None, progress: bool = False) -> Path:
    """A real ``build_index`` of the generated corpus (cached as ``var/scale/index-<N>``); returns its folder.

    The builder, Whoosh, HNSW and the linker run for real; vectors come from ``PrecomputedEncoder`` and the
    detector's output per distinct sentence from ``SentenceMentions``.
    """
    from index import layout
    from index.build import _text_key, build_index
    from index.encoder import compose_text
    from index.errors import PersonaeError

    name = corpus_name(n_paragraphs, scifact_limit)
    index_dir = CACHE / f"index-{name}"
    try:
        folder = layout.current_build(index_dir)
        if layout.read_manifest(folder).settings.get("scale_corpus") == name:
            return index_dir
    except PersonaeError:
        pass
    paths = prepare(n_paragraphs, say=say, encode=False, scifact_limit=scifact_limit)
    table, linker, settings = _linking(paths, index_dir)
    needed = used_texts(paths["corpus"])
    parts: dict[str, tuple[int | None, list[int]]] = {}
    for doc in read_jsonl(paths["corpus"]):
        for ids in doc["sentences"]:
            text = compose_text(doc["title"], " ".join(table.texts[i] for i in ids),
                                embed_title=settings.embed_title)
            parts[_text_key(text)] = (doc["title_id"] if settings.embed_title else None, ids)
    encoder = PrecomputedEncoder(
        (lambda: wait_for_vectors(needed, say)) if encoded_elsewhere
        else (lambda: vectors(table, needed=needed, say=say)), parts, settings.model)
    say(f"building {n_paragraphs} generated paragraphs in {index_dir} (vectors precomputed, NER per "
        "sentence)")
    t0 = time.perf_counter()
    report = build_index(settings, encoder=encoder, linker=linker, progress=progress, incremental=False,
                         extra_settings={"scale_corpus": name}, log=say if progress else None)
    say(f"  built in {time.perf_counter() - t0:.0f} s: {report.summary()}")
    return index_dir


def extra_documents(n_docs: int, seed: int = 2, prefix: str = "add") -> list[dict[str, Any]]:
    """``n_docs`` more documents drawn like the corpus's (another seed, ids ``<prefix>-…``): what a newsroom
    adds to a live index. Their sentences come from the same pool, their combinations and dates are new."""
    pool, _ = split_held_out(load_articles())
    table = TextTable([row["text"] for row in read_jsonl(CACHE / "texts.jsonl")])
    docs = []
    for doc in generate(pool, table, n_paragraphs=10 * n_docs, seed=seed):
        docs.append({**doc, "id": f"{prefix}-" + doc["id"].split("-", 1)[1]})
        if len(docs) == n_docs:
            break
    return docs


def _disk_bytes(*folders: Path) -> int:
    """Bytes of the files under ``folders``, a file with several hard links counted once (as ``du``)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder in folders:
        for path in folder.rglob("*"):
            st = path.lstat()
            if path.is_file() and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def add_documents(n_paragraphs: int, n_add: int, say: Any = print, scifact_limit: int | None = None,
                  rounds: int = 1, only: int | None = None) -> None:
    """Add ``n_add`` documents to the cached build of ``n_paragraphs`` with an incremental ``build_index``
    (the real encoder and detector for what is new), against the bare encode of those documents; with
    ``rounds`` > 1, again and again on the build before (the first round also pays what a build of an older
    version did not keep; the later ones are the steady state).

    The builds run on a hard-linked copy of the cached index folder (``index-<N>-add<M>``; builds never
    write into a published build, so the cached one is untouched) and each round keeps both builds: disk
    use of the two, hard links counted once, against the previous build alone. With ``only``, just that
    round runs (the rounds before it ran already, in other processes: ``main`` runs each round in a process
    of its own, as ``personae build`` runs).
    """
    from index.settings import Settings

    name = corpus_name(n_paragraphs, scifact_limit)
    base = scale_build(n_paragraphs, say, scifact_limit=scifact_limit)
    work = CACHE / f"index-{name}-add{n_add}"
    if only in (None, 1):
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(base, work, copy_function=os.link, ignore=shutil.ignore_patterns(".tmp-*", "*.lock"))
    source = CACHE / f"corpus-{name}.jsonl"
    encoder = linker = None
    for n in range(1, rounds + 1):
        # the corpus file grown by the new documents, under its own name (in a folder of its own): each
        # document's stored path (file and line) stays what it was, as when a newsroom appends to its file
        corpus = CACHE / f"add{n_add}-round{n}" / f"corpus-{name}.jsonl"
        if only is not None and n != only:
            source = corpus
            continue
        corpus.parent.mkdir(exist_ok=True)
        extra = extra_documents(n_add, seed=1 + n, prefix="add" if n == 1 else f"add{n}")
        with corpus.open("w", encoding="utf-8") as out, source.open(encoding="utf-8") as f:
            shutil.copyfileobj(f, out)
            for doc in extra:
                out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        settings = Settings.load(env={}, index_dir=str(work), corpus=str(corpus), model=MODEL,
                                 entities_file=str(ROOT / "seeds" / "entities.jsonl"))
        if rounds > 1:
            say(f"round {n} of {rounds}")
        encoder, linker = _add_round(settings, extra, work, name, n_add, say, encoder, linker)
        source = corpus


def _add_round(settings: Any, extra: list[dict[str, Any]], work: Path, name: str, n_add: int, say: Any,
               encoder: Any, linker: Any) -> tuple[Any, Any]:
    """One incremental build adding ``extra``: timed against their bare encode, with the disk of both
    builds. Returns the encoder and linker for the next round."""
    from index import layout
    from index.build import build_index
    from index.documents import split_paragraphs
    from index.encoder import compose_text, load_encoder
    from index.linking.resolve import make_linker
    from index.records import Document

    encoder = encoder or load_encoder(settings.model)
    texts = [compose_text(d["title"], p.text, embed_title=settings.embed_title)
             for d in extra for p in split_paragraphs(Document(id=d["id"], title=d["title"], text=d["text"]),
                                                       settings.max_paragraph_chars)]
    encoder.encode(texts[:64], batch_size=settings.batch_size)  # load and warm the model first
    t = time.perf_counter()
    encoder.encode(texts, batch_size=settings.batch_size)
    bare = time.perf_counter() - t
    say(f"bare encode of the {n_add} added documents' {len(texts)} paragraphs: {bare:.1f} s")
    previous = layout.current_build(work)
    linker = linker or make_linker(settings.entities_file, settings.ner_model, settings.ner_window)
    t = time.perf_counter()
    report = build_index(settings, encoder=encoder, linker=linker, incremental=True,
                         extra_settings={"scale_corpus": f"{name}-add{n_add}"}, log=say)
    spent = time.perf_counter() - t
    say(report.summary())
    one, both = _disk_bytes(previous), _disk_bytes(previous, report.folder)
    say(f"incremental build adding {n_add} documents: {spent:.1f} s; target 2 x bare encode + 60 s = "
        f"{2 * bare + 60:.1f} s ({'met' if spent <= 2 * bare + 60 else 'not met'})")
    say(f"disk: previous build {one / 2**20:,.0f} MiB, both builds {both / 2**20:,.0f} MiB = "
        f"{both / one:.2f}x one build (target <= 1.3x: {'met' if both <= 1.3 * one else 'not met'})")
    return encoder, linker


def _vm_rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _watch(interval: float = 60.0) -> None:
    """Print resident memory, its peak so far and the load average every ``interval`` seconds (a daemon
    thread beside a long build: where it stands, and how busy the shared machine is)."""
    import resource
    import threading

    t0 = time.perf_counter()

    def loop() -> None:
        while True:
            time.sleep(interval)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            print(f"  [{time.strftime('%H:%M:%S')} +{time.perf_counter() - t0:.0f} s] RSS "
                  f"{_vm_rss_mb():.0f} MB (peak {peak:.0f} MB), load {load}", flush=True)

    threading.Thread(target=loop, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Generate the scale corpus, its vectors and its queries.")
    ap.add_argument("--paragraphs", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--no-encode", action="store_true", help="Write corpus and queries only.")
    ap.add_argument("--scifact-limit", type=int, default=None,
                    help="Use only the first N SciFact abstracts (fewer distinct texts to encode).")
    ap.add_argument("--detect", action="store_true",
                    help="Only run the detector over the corpus's distinct sentences (cached for the build).")
    ap.add_argument("--build", action="store_true",
                    help="Build the corpus's index (scale_build, cached), printing stages, RSS and load.")
    ap.add_argument("--add", type=int, default=0, metavar="N",
                    help="Add N generated documents to the cached build incrementally; time it against "
                    "their bare encode, and the disk use of both builds.")
    ap.add_argument("--rounds", type=int, default=1, metavar="R",
                    help="With --add: R incremental builds in a row, each adding N more documents to the one "
                    "before (the later rounds are the steady state).")
    ap.add_argument("--same-process", action="store_true",
                    help="With --rounds: run every round in this process (by default each runs in a process "
                    "of its own, as `personae build` does).")
    ap.add_argument("--only-round", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--encoded-elsewhere", action="store_true",
                    help="With --build: wait for a concurrent scale_corpus.py run to encode the texts.")
    args = ap.parse_args(argv)
    missing = available()
    if missing:
        print(f"skip: {missing}")
        return 0
    if args.add and args.rounds > 1 and not args.same_process and args.only_round is None:
        import subprocess

        for n in range(1, args.rounds + 1):  # a process per round: nothing of one build lingers in the next
            subprocess.run([sys.executable, "-u", __file__, "--paragraphs", str(args.paragraphs), "--add",
                            str(args.add), "--rounds", str(args.rounds), "--only-round", str(n),
                            *(["--scifact-limit", str(args.scifact_limit)] if args.scifact_limit else [])],
                           check=True)
        return 0
    if args.add:
        print(f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the start", flush=True)
        add_documents(args.paragraphs, args.add, scifact_limit=args.scifact_limit, rounds=args.rounds,
                      say=lambda m: print(m, flush=True), only=args.only_round)
        print(f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end")
        return 0
    if args.build:
        import resource

        _watch()
        print(f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the start", flush=True)
        index_dir = scale_build(args.paragraphs, encoded_elsewhere=args.encoded_elsewhere,
                                scifact_limit=args.scifact_limit, progress=True,
                                say=lambda m: print(m, flush=True))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"index: {index_dir}; peak RSS {peak:.0f} MB, "
              f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end")
        return 0
    if args.detect:
        detect_sentences(args.paragraphs, scifact_limit=args.scifact_limit)
        return 0
    paths = prepare(args.paragraphs, queries=args.queries, encode=not args.no_encode,
                    scifact_limit=args.scifact_limit)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
