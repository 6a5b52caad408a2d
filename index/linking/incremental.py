"""What one build keeps so that the next links only what changed.

A build's linking is three steps: each document resolved on its own (:meth:`Linker.resolve_document`),
the corpus pass across documents (:mod:`index.linking.corpus`), and quote attribution over each document's
final links. :class:`LinkingState` keeps the output of all three, per document:

* a document whose id, title, date and text are unchanged keeps its resolved result (no NER, no
  resolution);
* the corpus pass starts from the previous outcome and resolves again only the blocks the changed, added
  and deleted documents touch (:func:`index.linking.corpus.resolve` with a ``PreviousPass``);
* a document whose final links are unchanged keeps its quotes (no parse).

The state is only reused under the same snapshot as the detector output (builder, detector and resolver
code versions, model, registry file): the build checks that before it loads it. It is a pickle of this
package's own dataclasses, written by a build into its own folder and read only from the live build of the
same index folder.
"""

from __future__ import annotations

import gc
import hashlib
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from index import layers
from index.linking.corpus import CorpusOutcome, PreviousPass
from index.linking.resolve import DocResult
from index.records import Document, Link, Quote

STATE_VERSION = 6  # bump when what is pickled changes shape (6: layers shared between builds)
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_STEM = "linking"  # layer files linking-<gen>.pkl beside the state file
# How a layer's entries are pickled (the third item of its entry in the state file; a layer listed without
# one is format 1). A layer of an older format is not shared: the next build writes its entries again, once.
# 2: document clusters' votes as plain dicts (``DocCluster.__getstate__``), not Counters built by
# ``Counter.__init__`` when loaded.
LAYER_FORMAT = 2


def doc_fingerprint(doc: Document) -> str:
    """What resolving a document reads of it: a changed fingerprint means resolve it again."""
    h = hashlib.sha256()
    for part in (doc.id, doc.title or "", doc.date or "", doc.text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def links_shape(links: Sequence[Link]) -> str:
    """What quote attribution reads of a document's final links besides their ids: where they are and
    what type."""
    h = hashlib.sha256()
    for lk in links:
        h.update(f"{lk.start}\0{lk.end}\0{lk.type}\n".encode())
    return h.hexdigest()[:32]


KeptQuotes = tuple[str, tuple[str, ...], list[Quote]]  # links' shape, their ids, the quotes


def kept_quotes(kept: KeptQuotes | None, links: Sequence[Link]) -> list[Quote] | None:
    """The quotes kept for a document, valid for its new final ``links``, or None if they must be attributed
    again. Attribution reads the links' spans and types and compares their ids only for equality, so when
    the spans and types are unchanged and the ids were renamed one to one (an entity renamed, a cluster
    joined to another name), the speakers are renamed the same way."""
    if kept is None or kept[0] != links_shape(links):
        return None
    old_ids, quotes = kept[1], kept[2]
    new_ids = tuple(lk.entity_id for lk in links)
    if new_ids == old_ids:
        return quotes
    forward: dict[str, str] = {}
    backward: dict[str, str] = {}
    for old, new in zip(old_ids, new_ids, strict=True):
        if forward.setdefault(old, new) != new or backward.setdefault(new, old) != old:
            return None  # two entities became one, or one became two: attribution may differ
    return [replace(q, speaker=forward.get(q.speaker, q.speaker)) if q.speaker else q for q in quotes]


@dataclass
class LinkingState:
    """Per document: its fingerprint, resolved result and quotes (with the shape and ids of the links they
    were attributed over); and the corpus pass's outcome."""

    fingerprints: dict[str, str] = field(default_factory=dict)
    results: dict[str, DocResult] = field(default_factory=dict)
    quotes: dict[str, KeptQuotes] = field(default_factory=dict)
    outcome: CorpusOutcome = field(default_factory=CorpusOutcome)
    languages: dict[str, str] = field(default_factory=dict)  # detected language (the build reuses it too)
    # the text of a document of this state that the next build no longer has (changed or deleted): the
    # lower-case vocabulary of the corpus pass subtracts it. Not saved: set by whoever loads the state.
    old_text: Callable[[Sequence[str]], dict[str, str]] | None = None
    # doc id → (its text, title and date when checked, whether unchanged): a build asks about each document
    # several times (language, detection, resolution), and a fingerprint hashes the whole text
    _checked: dict[str, tuple[str, tuple[str, str | None], bool]] = field(
        default_factory=dict, repr=False, compare=False)
    # documents whose entry is the one of the state this one was linked from (``Linker.link_corpus`` knows:
    # resolution reused, quotes kept as they were, same language): ``save`` shares them without pickling
    unchanged: set[str] = field(default_factory=set, repr=False, compare=False)
    # where a loaded state came from (folder, its layers, document -> its layer): what the next state's
    # ``save`` may share. Not saved.
    _origin: tuple[Path, list[_Layer], dict[str, int]] | None = field(
        default=None, repr=False, compare=False)

    def holds(self, doc: Document) -> bool:
        """Whether this state keeps ``doc``'s resolution and it is unchanged (id, title, date, text)."""
        seen = self._checked.get(doc.id)
        if seen is not None and seen[0] is doc.text and seen[1] == (doc.title, doc.date):
            return seen[2]
        same = doc.id in self.results and self.fingerprints.get(doc.id) == doc_fingerprint(doc)
        self._checked[doc.id] = (doc.text, (doc.title, doc.date), same)
        return same

    def result_for(self, doc: Document) -> DocResult | None:
        """The kept result of ``doc`` if it is unchanged, with its text put back."""
        return replace(self.results[doc.id], text=doc.text) if self.holds(doc) else None

    def previous_pass(self, current: Iterable[str], changed: set[str]) -> PreviousPass:
        """The corpus pass's starting point when the documents are ``current`` and those in ``changed``
        were resolved again."""
        here = set(current)
        gone = [d for d in self.results if d not in here or d in changed]
        texts = self.old_text(gone) if self.old_text is not None and gone else {}
        missing = [d for d in gone if d not in texts]
        if missing:
            raise KeyError(f"no text for {len(missing)} documents of the previous build (e.g. {missing[0]})")
        stale = [replace(self.results[d], text=texts[d]) for d in gone]
        return PreviousPass(self.outcome, stale, changed)

    def save(self, path: Path, base: LinkingState | None = None) -> None:
        """Write the state: ``path`` holds the corpus pass's outcome and where each document's entry
        (fingerprint, result without its text, quotes, language) is; the entries are in layer files
        ``linking-<gen>.pkl`` beside it. With ``base`` (the state of the build before, as loaded), the
        layers ``index.layers.keep_layers`` keeps are hard-linked and only the entries not in
        :attr:`unchanged` are written, into one new layer: an unchanged document costs no pickling."""
        path = Path(path)
        origin = base._origin if base is not None else None
        if origin is not None and not all((origin[0] / layer[0]).is_file() for layer in origin[1]):
            origin = None  # a layer of the state before is gone: write every entry
        before, layers_old, old_where = origin if origin is not None else (path.parent, [], {})
        same = {d: old_where[d] for d in self.unchanged if d in self.results and d in old_where}
        live = [0] * len(layers_old)
        for layer in same.values():
            live[layer] += _format(layers_old[layer]) == LAYER_FORMAT  # an older layer keeps nothing
        kept: list[_Layer] = []
        where: dict[str, int] = {}
        for i in layers.keep_layers([len(layer[1]) for layer in layers_old], live, len(self.results)):
            name, docs = layers_old[i][:2]
            layers.share(before / name, path.parent)
            kept.append((name, docs, LAYER_FORMAT))
            where.update((d, len(kept) - 1) for d in docs if same.get(d) == i)
        todo = [d for d in self.results if d not in where]
        if todo or not kept:
            name = layers.layer_name(_STEM, layers.next_generation([layer[0] for layer in layers_old], _STEM,
                                                                   ".pkl"), ".pkl")
            with open(path.parent / name, "wb") as fh:
                pickle.dump({d: pickle.dumps(self._entry(d), protocol=_PROTOCOL) for d in todo}, fh,
                            protocol=_PROTOCOL)
            kept.append((name, todo, LAYER_FORMAT))
            where.update((d, len(kept) - 1) for d in todo)
        with open(path, "wb") as fh:
            pickle.dump((STATE_VERSION, self.outcome, kept, where), fh, protocol=_PROTOCOL)

    def _entry(self, d: str) -> tuple[str | None, DocResult, KeptQuotes | None, str | None]:
        return (self.fingerprints.get(d), replace(self.results[d], text=""),  # the store has the texts
                self.quotes.get(d), self.languages.get(d))

    @classmethod
    def load(cls, path: Path) -> LinkingState | None:
        """The state a build saved, or None when there is none, a layer is missing or it has another
        shape. Remembers its layers, so that ``save`` of the next state shares what did not change."""
        with _collector_paused():
            return cls._load(path)

    @classmethod
    def _load(cls, path: Path) -> LinkingState | None:
        head = _read_head(path)
        if head is None:
            return None
        _, outcome, files, where = head
        state = cls(outcome=outcome)
        try:
            for n, layer in enumerate(files):
                with open(Path(path).parent / layer[0], "rb") as fh:
                    entries = pickle.load(fh)  # noqa: S301 (own build)
                for d, blob in entries.items():
                    if where.get(d) != n:
                        continue  # changed or deleted since this layer was written
                    fingerprint, result, quotes, language = pickle.loads(blob)  # noqa: S301 (own build)
                    state.fingerprints[d] = fingerprint
                    state.results[d] = result
                    if quotes is not None:
                        state.quotes[d] = quotes
                    state.languages[d] = language
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError, AttributeError,
                ModuleNotFoundError):
            return None
        if len(state.results) != len(where):
            return None
        state._origin = (Path(path).parent, files, dict(where))
        return state

    def language_of(self, doc: Document) -> str | None:
        """The language detected in ``doc`` by the build that kept this state, if it is unchanged."""
        return self.languages.get(doc.id) if self.holds(doc) else None


_Layer = tuple[str, list[str], int]  # file, the documents written into it, its format (missing: 1)
_Head = tuple[int, CorpusOutcome, list[_Layer], dict[str, int]]


def _format(layer: tuple) -> int:
    return layer[2] if len(layer) > 2 else 1


def _read_head(path: Path) -> _Head | None:
    """The state file: (version, outcome, layers as (file, documents written, format), document -> its layer);
    None when it is missing, unreadable or of another version."""
    try:
        with open(path, "rb") as fh:
            head = pickle.load(fh)  # noqa: S301 (own build)
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError, AttributeError,
            ModuleNotFoundError):
        return None
    if not isinstance(head, tuple) or len(head) != 4 or head[0] != STATE_VERSION:
        return None
    return head


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the ``with`` (and back on after, if it was on).
    Unpickling a state creates millions of containers, none of them garbage, and the collector would walk
    the growing heap again and again while it does. The collector is per process, so other threads go
    without it for those seconds too."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
