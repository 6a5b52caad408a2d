"""Storage backends for the keyword, vector and entity legs.

``embedded`` (Whoosh + FAISS files inside the build folder) is the default and needs nothing running.
``milvus`` keeps the same legs in a Milvus collection: a local file through milvus-lite, or a sharded,
replicated Milvus cluster at ``http://host:19530``; see docs/scale-out.md. A searcher on ``milvus`` reads
the records and the live build from Milvus too (``milvus_store.py``); ``open_backend`` opens the legs of
one build folder's export only (benchmarks compare that with the engine-only path).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from index.errors import PersonaeError
from search.backends.base import Backend, Hits

if TYPE_CHECKING:
    from index.settings import Settings

BACKENDS = ("embedded", "milvus")
DEFAULT_COLLECTION = "personae"

__all__ = ["BACKENDS", "DEFAULT_COLLECTION", "Backend", "Hits", "open_backend"]


def open_backend(folder: Path, settings: Settings) -> Backend:
    """The backend named by ``settings.backend`` for build ``folder`` (imports the engine lazily)."""
    name = getattr(settings, "backend", "embedded")
    if name == "embedded":
        from search.backends.embedded import EmbeddedBackend

        return EmbeddedBackend.open(folder, b=settings.bm25_b, k1=settings.bm25_k1)
    if name == "milvus":
        from search.backends.milvus import MilvusBackend

        uri = getattr(settings, "milvus_uri", "")
        if not uri:
            raise PersonaeError("setting backend='milvus' needs milvus_uri (a file path or http://host:19530)")
        return MilvusBackend.open(uri, DEFAULT_COLLECTION, expect_build=folder.name)
    raise PersonaeError(f"setting backend={name!r}: expected one of {', '.join(BACKENDS)}")
