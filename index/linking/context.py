"""What the text around a mention says about which of several registry entities it names.

An alias that several registry entities share ("Ford": the president, the car maker) is first scored in its
document (:meth:`index.linking.resolve.Linker._choose`); one left undecided there is weighed in the corpus
pass by the company it keeps and, when the build has them, by **vectors**: the paragraph around the mention
against each candidate's *known contexts* (the paragraphs where the corpus links that candidate without
doubt) and its *description*. The paragraph vectors are the ones the build already encodes for search, so
this costs no second pass over the corpus: only the few candidates' descriptions are encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from index.linking.candidates import RegistryIndex
    from index.linking.resolve import DocResult

VECTOR_WEIGHT = 1.0  # added to the candidate whose contexts the paragraph is closest to, at full margin
FULL_MARGIN = 0.1  # cosine margin over the runner-up that earns the full weight (less earns a share)
KNOWN_CONTEXTS = 200  # paragraphs per candidate averaged into its known context, at most


class ContextVectors(Protocol):
    """The build's paragraph vectors, as the corpus pass reads them."""

    def mention_vector(self, doc: int, offset: int) -> np.ndarray | None:
        """The unit vector of the paragraph of document number ``doc`` that holds ``offset``."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of a few short texts (candidates' descriptions)."""


class Rows(Protocol):
    """Row-aligned paragraph vectors: ``rows[i]`` is row ``i`` (a matrix, or rows read when asked for)."""

    def __getitem__(self, row: int) -> np.ndarray: ...


class ParagraphVectors:
    """:class:`ContextVectors` over a build's paragraphs: ``spans[doc]`` lists each paragraph's (start, end,
    row); ``vectors()`` gives the row-aligned matrix once the encode is done (it may wait for it)."""

    def __init__(
        self,
        spans: Sequence[Sequence[tuple[int, int, int]]],
        vectors: Callable[[], Rows],
        encode: Callable[[list[str]], np.ndarray],
    ):
        self._spans = spans
        self._vectors = vectors
        self._encode = encode

    def mention_vector(self, doc: int, offset: int) -> np.ndarray | None:
        for start, end, row in self._spans[doc]:
            if start <= offset < end:
                return _unit(self._vectors()[row])
        return None

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.vstack([_unit(v) for v in self._encode(texts)]) if texts else np.zeros((0, 0))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n else v


def vector_scores(
    undecided: Sequence[tuple[int, str, int, Sequence[str]]],
    results: Sequence[DocResult],
    index: RegistryIndex,
    context: ContextVectors,
) -> dict[str, dict[str, float]]:
    """For each undecided link (doc number, provisional id, offset, candidates): the bonus each candidate
    earns from the paragraph around it (see module doc). Known contexts and descriptions are computed only
    for the candidates these links name."""
    wanted = sorted({c for *_, cands in undecided for c in cands})
    known = _known_contexts(wanted, results, context)
    entities = {c: index.entity(c) for c in wanted}
    descriptions = {c: e.description for c, e in entities.items() if e is not None and e.description}
    desc = dict(zip(descriptions, context.encode(list(descriptions.values())), strict=True))
    out: dict[str, dict[str, float]] = {}
    for doc, pid, offset, cands in undecided:
        v = context.mention_vector(doc, offset)
        if v is None:
            continue
        sims = sorted(
            ((max([float(v @ x) for x in (known.get(c), desc.get(c)) if x is not None], default=-1.0), c)
             for c in cands),
            reverse=True,
        )
        if len(sims) < 2 or sims[0][0] <= -1.0:
            continue
        margin = sims[0][0] - sims[1][0]
        out[pid] = {sims[0][1]: VECTOR_WEIGHT * min(1.0, margin / FULL_MARGIN)}
    return out


def _known_contexts(
    wanted: Sequence[str], results: Sequence[DocResult], context: ContextVectors
) -> dict[str, np.ndarray]:
    rows: dict[str, list[np.ndarray]] = {c: [] for c in wanted}
    for doc, r in enumerate(results):
        for lk in r.links:
            got = rows.get(lk.entity_id)
            if got is not None and len(got) < KNOWN_CONTEXTS:
                v = context.mention_vector(doc, lk.start)
                if v is not None:
                    got.append(v)
    return {c: _unit(np.mean(vs, axis=0)) for c, vs in rows.items() if vs}
