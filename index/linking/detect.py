"""Mention detection: spaCy NER + a registry gazetteer (names, aliases, role titles), merged.

The gazetteer catches what the small spaCy model misses or mislabels (bare surnames, "U.S.", role titles
such as "the Russian foreign minister", which NER never tags). A document-level rescan then finds repeats
of names NER found once ("Paxar Corp" ... "Paxar products").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from index.errors import PersonaeError
from index.linking.candidates import CONNECTORS, ORG_SUFFIXES, generic_titles, nationality_keys
from index.linking.names import PARTICLES, Token, normalize_name, surname_words, tokenize
from index.linking.registry import Registry
from index.records import ORG, OTHER, PERSON, PLACE, Mention

# Bump when detection changes what the same text yields: cached mentions of older builds are then not reused.
DETECTOR_VERSION = "detect:4"

# NER windows per spaCy batch (at least; ``detect_many``'s ``batch_size`` counts texts). A window is about a
# sentence, so a document-sized count of them makes batches too small to amortise the model's per-batch
# steps; the mentions found do not depend on the batch size (benchmarks/README.md, "Build throughput").
WINDOW_BATCH = 128

# spaCy label -> coarse type; labels absent here (DATE, CARDINAL, MONEY, ...) are dropped.
LABEL_TYPES: dict[str, str] = {
    "PERSON": PERSON,
    "ORG": ORG,
    "GPE": PLACE,
    "LOC": PLACE,
    "FAC": PLACE,
    "NORP": OTHER,  # adjectival ("Russian"); the gazetteer re-types registry ones to their place
    "EVENT": OTHER,
    "WORK_OF_ART": OTHER,
    "LAW": OTHER,
    "PRODUCT": OTHER,
    "LANGUAGE": OTHER,
}
# NORP is left to the gazetteer: "Russian" is worth linking (to Russia) when the registry knows it, but an
# unregistered adjective ("Japanese") is not a name a journalist searches for, and gold sets don't tag it.
DEFAULT_LABELS = frozenset(LABEL_TYPES) - {"NORP"}

# Capitalised words that say nothing about a name nearby (sentence starts, pronouns): they do not open an NER
# window. Only their Title-case or single-letter forms are exempt; "IT" or "AND" in capitals still count.
_PLAIN_WORDS = frozenset(
    """a an the but and or so yet if it its he she they we i you this that these those there here in on at
    by for from with as to of after before when while since although though however meanwhile his her their
    our my your one some many most more all both each no not what which who why how where then also still
    even just only now instead until unless because despite during over under""".split()
)
_LEAD_RE = re.compile(r"(?:the|The|THE)\s+")
_TRAIL_RE = re.compile(r"(?:['’][sS]|['’])$")
_STRIP = " \t\n\r,;:\"“”‘’'()[]"


def spacy_pipeline(name: str, exclude: list[str], needs: str) -> Any:
    """``spacy.load(name, exclude=exclude)``, with one-line errors for a missing model or component."""
    try:
        import spacy
    except ImportError:  # pragma: no cover - spacy is a hard dependency
        raise PersonaeError("spaCy is not installed: pip install spacy") from None
    try:
        nlp = spacy.load(name, exclude=exclude)
    except OSError:
        raise PersonaeError(
            f"spaCy model {name!r} is not installed (set ner_model / PERSONAE_NER_MODEL, or pip install it)"
        ) from None
    if needs not in nlp.pipe_names:
        raise PersonaeError(f"spaCy model {name!r} has no {needs!r} component")
    return nlp


@lru_cache(maxsize=4)
def load_nlp(name: str) -> Any:
    """Load a spaCy pipeline once per process (the lemmatizer is never needed for NER)."""
    nlp = spacy_pipeline(name, ["lemmatizer"], "ner")
    # Only NER (and a shared tok2vec it listens to, if any) is needed: ~2.5x faster than the full pipeline.
    keep = ["ner"]
    if "tok2vec" in nlp.pipe_names and "ner" in getattr(nlp.get_pipe("tok2vec"), "listening_components", []):
        keep.insert(0, "tok2vec")
    nlp.select_pipes(enable=keep)
    return nlp


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop a leading "the", a trailing possessive and surrounding punctuation from ``text[start:end]``."""
    while start < end and text[start] in _STRIP:
        start += 1
    while end > start and text[end - 1] in _STRIP:
        end -= 1
    m = _LEAD_RE.match(text, start, end)
    if m and m.end() < end:
        start = m.end()
    m2 = _TRAIL_RE.search(text[start:end])
    if m2 and m2.start() > 0:
        end = start + m2.start()
    while end > start and text[end - 1] in _STRIP:
        end -= 1
    return start, end


# Words that never open or close a name: "Alan Milburn the" or "and Tony Blair" are cut back to the name.
EDGE_WORDS = _PLAIN_WORDS | frozenset(
    "vs v versus said says told after against beat beats won lost drew nor per via than".split()
)
_SCORE_RE = re.compile(r"^\d+(?:[-–:/.]\d+)*$")  # "2", "6-2", "37-10", "3:1" — a score or list number
_TICKER_RE = re.compile(r"^[A-Z]{1,5}\.[A-Z]{1,2}$")  # an exchange ticker glued to a company ("VOWG.F")
# Institutions a country's name prefixes as a description ("the U.K. Treasury" = the Treasury of the UK):
# the country keeps its own mention, the institution gets another.
INSTITUTION_HEADS = frozenset(
    """treasury army navy government parliament police embassy ministry military senate congress cabinet
    foreign office home office central bank supreme court air force coast guard customs intelligence
    defence defense department consulate""".split()
)
_WORD_RE = re.compile(r"\S+")


def clean_span(text: str, start: int, end: int, typ: str = OTHER) -> tuple[int, int]:
    """:func:`trim_span`, then drop what NER glues to a name's edges: function words ("Alan Milburn the"),
    scores and list numbers ("Rafael Nadal 6-2 6-7", "Arsenal 2-1", "Wasim Akram 2"), and a parenthesis
    ("World Health Organization (WHO" → the name; the acronym is found on its own).

    A bare number stays at the end of an organisation's name ("BBC Radio 4"), a score never does.
    """
    start, end = trim_span(text, start, end)
    for mark in "(<[":
        cut = text.find(mark, start, end)
        if cut > start:
            start, end = trim_span(text, start, cut)
    while start < end:
        words = list(_WORD_RE.finditer(text, start, end))
        if len(words) < 2:
            break
        first, last = words[0].group(), words[-1].group().rstrip(".,;:")
        if _SCORE_RE.match(last) and (typ in (PERSON, PLACE) or not last.isdigit() or len(last) > 2):
            end = words[-1].start()
        elif _TICKER_RE.match(words[-1].group().rstrip(",;:")):
            end = words[-1].start()
        elif last.casefold() in EDGE_WORDS and not last.isupper():
            end = words[-1].start()
        elif first.casefold() in EDGE_WORDS and first.casefold() != "the" and not first.isupper():
            start = words[1].start()
        else:
            break
        start, end = trim_span(text, start, end)
    return _clean_hyphen_edges(text, start, end)


_PART_RE = re.compile(r"[^\W_]+(?:['’.][^\W_]+)*")


def _clean_hyphen_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """Function words joined to a name by a hyphen ("under-19 World Cup", "Six Nations run-in")."""
    while start < end:
        parts = list(_PART_RE.finditer(text, start, end))
        if len(parts) < 2:
            break
        first, last = parts[0].group(), parts[-1].group()
        if first.casefold() in EDGE_WORDS and first.casefold() != "the" and not first.isupper():
            start = parts[1].start()  # "under-19 World Cup", "all-..."
        elif first.isdigit() and parts[0].start() > 0 and text[parts[0].start() - 1] == "-":
            start = parts[1].start()  # the "19" left of "under-19"; not "2003 Kids' Choice Awards"
        elif last.casefold() in EDGE_WORDS and not last.isupper():
            end = parts[-2].end()  # "Six Nations run-in"
        else:
            break
    return start, end


def _is_name(surface: str) -> bool:
    """A name has a word that starts with a capital ("Under 21s" cut to "21s" has none), and is not a lone
    function word ("The"; "WHO" and "IT" in capitals are names)."""
    if surface.casefold() in EDGE_WORDS and not surface.isupper():
        return False
    return any(p[0].isupper() for p in _PART_RE.findall(surface))


def _split_places(text: str, typ: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """"Murdochville, Quebec" (one NER place) → the town and the province."""
    if typ != PLACE:
        return spans
    out = []
    for s, e in spans:
        at = s
        for m in re.finditer(r",\s+(?=[A-Z])", text[s:e]):
            out.append((at, s + m.start()))
            at = s + m.end()
        out.append((at, e))
    return out


_BREAK_RE = re.compile(r"\n\s*\n")


def split_at_scores(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """"Newcastle 2-1 Bolton" (one NER span around a result) → "Newcastle", "Bolton"; a paragraph break
    inside a span ends one name and starts another."""
    cuts = [m for m in _WORD_RE.finditer(text, start, end) if _SCORE_RE.match(m.group().strip(".,;:"))
            and not m.group().isdigit()]
    cuts += list(_BREAK_RE.finditer(text, start, end))
    cuts.sort(key=lambda m: m.start())
    if not cuts:
        return [(start, end)]
    out, at = [], start
    for m in cuts:
        out.append((at, m.start()))
        at = m.end()
    out.append((at, end))
    return [(s, e) for s, e in (trim_span(text, s, e) for s, e in out) if e > s]


# ---------------------------------------------------------------- gazetteer
@dataclass(frozen=True)
class GazEntry:
    entity_id: str
    type: str
    source: str  # "gazetteer" | "title"
    acronym: bool = False
    generic: bool = False  # a title stripped of its nationality ("foreign minister"): needs "the" before it


def _is_acronym(s: str) -> bool:
    letters = [c for c in s if c.isalpha()]
    return 1 < len(letters) <= 6 and all(c.isupper() for c in letters)


class Gazetteer:
    """Longest-match, non-overlapping dictionary matcher over normalised token n-grams."""

    def __init__(self) -> None:
        self.table: dict[str, list[GazEntry]] = {}
        self.max_len = 1
        self._firsts: set[str] = set()  # first words of the keys: most tokens start no key at all

    def add(self, surface: str, entry: GazEntry) -> None:
        key = normalize_name(surface)
        if key.startswith("the ") and entry.source != "title":
            key = key[
                4:
            ]  # "The Telegraph" is matched as "Telegraph": a leading "the" is never part of a mention
        if not key:
            return
        bucket = self.table.setdefault(key, [])
        if entry not in bucket:
            bucket.append(entry)
            bucket.sort(key=lambda e: (e.generic, e.source != "gazetteer", e.entity_id))
        self.max_len = max(self.max_len, len(key.split()))
        self._firsts.add(key.split(" ")[0])

    @classmethod
    def from_registry(cls, reg: Registry) -> Gazetteer:
        gaz = cls()
        nat = nationality_keys(reg)
        surnames: dict[str, set[tuple[str, str]]] = {}
        for eid in sorted(reg.entities):
            ent = reg.entities[eid]
            for s in (ent.name, *ent.aliases):
                gaz.add(s, GazEntry(eid, ent.type, "gazetteer", acronym=_is_acronym(s)))
            if ent.type == PERSON:  # bare surname of a registry person ("Merkel"), if no one else claims it
                last = tokenize(ent.name)[-1].text if tokenize(ent.name) else ""
                if len(last) > 2 and last[0].isupper() and last != ent.name:
                    surnames.setdefault(normalize_name(last), set()).add((last, eid))
            for t in ent.title_names:
                gaz.add(t, GazEntry(eid, PERSON if ent.type == PERSON else ent.type, "title"))
                for g in generic_titles(t, nat):
                    gaz.add(
                        g, GazEntry(eid, PERSON if ent.type == PERSON else ent.type, "title", generic=True)
                    )
        for key, owners in sorted(surnames.items()):
            if len({eid for _, eid in owners}) == 1 and key not in gaz.table:
                surface, eid = sorted(owners)[0]
                gaz.add(surface, GazEntry(eid, PERSON, "gazetteer"))
        return gaz

    def type_of(self, surface: str, entry: GazEntry) -> str:
        """The entry's type, or OTHER (unknown) when the name belongs to entities of several types."""
        if entry.source == "title":
            return entry.type
        types = {e.type for e in self.table.get(normalize_name(surface), []) if e.source != "title"}
        return entry.type if len(types) <= 1 else OTHER

    def lookup(self, surface: str) -> list[GazEntry]:
        return self.table.get(normalize_name(surface), [])

    def _accept(
        self, text: str, toks: Sequence[Token], i: int, j: int, entries: list[GazEntry]
    ) -> GazEntry | None:
        surface = text[toks[i].start : toks[j - 1].end]
        for e in entries:
            if e.source == "title":
                if e.generic:
                    before = text[max(0, toks[i].start - 4) : toks[i].start]
                    if before.lower() != "the ":
                        continue
                return e
            if e.acronym:
                if any(c.islower() for c in surface):
                    continue
                return e
            words = [t.text for t in toks[i:j]]
            if not words[0][:1].isupper():
                continue
            if any(not (w[:1].isupper() or w[:1].isdigit() or w.lower() in CONNECTORS) for w in words):
                continue
            return e
        return None

    def match(self, text: str, toks: Sequence[Token] | None = None) -> list[tuple[int, int, GazEntry]]:
        toks = tokenize(text) if toks is None else toks
        found: list[tuple[int, int, GazEntry]] = []
        if not self.table:
            return found
        norms = [t.norm for t in toks]
        for i in range(len(toks)):
            if norms[i] not in self._firsts:
                continue
            for n in range(min(self.max_len, len(toks) - i), 0, -1):
                entries = self.table.get(" ".join(norms[i : i + n]))
                if not entries:
                    continue
                e = self._accept(text, toks, i, i + n, entries)
                if e is not None:
                    found.append((toks[i].start, toks[i + n - 1].end, e))
        return _select_longest([(s, e, g) for s, e, g in found])


def _select_longest(cands: list[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    chosen: list[tuple[int, int, Any]] = []
    for c in sorted(cands, key=lambda c: (-(c[1] - c[0]), c[0])):
        if all(c[1] <= o[0] or c[0] >= o[1] for o in chosen):
            chosen.append(c)
    return sorted(chosen, key=lambda c: c[0])


# ---------------------------------------------------------------- NER windows
def _opens_window(tok: Token) -> bool:
    t = tok.text
    if not any(c.isupper() for c in t):
        return False
    plain_case = len(t) == 1 or (t[0].isupper() and t[1:].islower())
    return not (plain_case and t.lower() in _PLAIN_WORDS)


def ner_windows(text: str, window: int, toks: Sequence[Token] | None = None) -> list[tuple[int, int]]:
    """Character spans of ``text`` that NER needs to see: ``window`` tokens either side of every word with a
    capital letter (other than a capitalised "The", "But", "He", ...), merged, widened to whitespace.

    Detection keeps only mentions with a capital letter, so text far from any capital cannot hold one; with
    ``window`` >= 4 each such word keeps the whole receptive field of en_core_web_sm's tok2vec (4 CNN
    layers of window 1). ``window`` <= 0 returns the whole text.
    """
    if window <= 0:
        return [(0, len(text))] if text else []
    toks = tokenize(text) if toks is None else toks
    runs: list[list[int]] = []
    for i, tok in enumerate(toks):
        if not _opens_window(tok):
            continue
        a, b = max(0, i - window), min(len(toks) - 1, i + window)
        if runs and a <= runs[-1][1] + 1:
            runs[-1][1] = b
        else:
            runs.append([a, b])
    spans: list[tuple[int, int]] = []
    for a, b in runs:
        start, end = toks[a].start, toks[b].end
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


# ---------------------------------------------------------------- detector
class Detector:
    """Finds mentions: spaCy NER, registry gazetteer, and a per-document rescan of names already found.

    ``detect`` and ``detect_many`` return the same mentions for the same text. spaCy sees only the
    :func:`ner_windows` of a text (``window`` tokens around capitalised words; 0: all of it).
    """

    def __init__(
        self,
        registry: Registry | None = None,
        model: str | None = None,
        use_ner: bool = True,
        rescan: bool = True,
        labels: Iterable[str] = DEFAULT_LABELS,
        window: int | None = None,
    ):
        if model is None or window is None:
            from index.settings import Settings

            defaults = Settings.load()
            model = defaults.ner_model if model is None else model
            window = defaults.ner_window if window is None else window
        self.model = model
        self.window = window
        self.use_ner = use_ner
        self.rescan = rescan
        self.labels = frozenset(labels)
        self.registry = registry if registry is not None else Registry()
        self.gazetteer = Gazetteer.from_registry(self.registry)

    @property
    def nlp(self) -> Any:
        return load_nlp(self.model)

    def detect(self, text: str) -> list[Mention]:
        return self.detect_many([text])[0]

    def detect_many(
        self, texts: Iterable[str], batch_size: int = 64, n_process: int = 1
    ) -> list[list[Mention]]:
        texts = list(texts)
        if not self.use_ner:
            return [self._combine(t, []) for t in texts]
        toks = [tokenize(t) for t in texts]
        pieces = [(i, s, e) for i, t in enumerate(texts) for s, e in ner_windows(t, self.window, toks[i])]
        if self.window > 0:
            batch_size = max(batch_size, WINDOW_BATCH)
        docs = self.nlp.pipe(
            (texts[i][s:e] for i, s, e in pieces), batch_size=batch_size, n_process=n_process
        )
        found: list[list[Mention]] = [[] for _ in texts]
        for (i, offset, _), doc in zip(pieces, docs, strict=True):
            found[i].extend(self._ner_mentions(texts[i], doc, offset))
        return [self._combine(t, ner, tk) for t, ner, tk in zip(texts, found, toks, strict=True)]

    def detect_gazetteer(self, text: str) -> list[Mention]:
        """Gazetteer only (fast path for short queries)."""
        return self._combine(text, [])

    # ------------------------------------------------------------ internals
    def _ner_mentions(self, text: str, doc: Any, offset: int = 0) -> list[Mention]:
        """Mentions from a spaCy ``doc`` of ``text[offset:...]``, in ``text``'s offsets."""
        out = []
        for ent in doc.ents:
            if ent.label_ not in self.labels:
                continue
            typ = LABEL_TYPES[ent.label_]
            start, end = ent.start_char + offset, ent.end_char + offset
            for a, b in _split_places(text, typ, split_at_scores(text, start, end)):
                s, e = clean_span(text, a, b, typ)
                if not _is_name(text[s:e]):
                    continue
                words = text[s:e].split()
                if typ == PERSON and len(words) > 1 and words[-1].lower().rstrip(".") in ORG_SUFFIXES:
                    typ = ORG  # the small model often calls "Paxar Corp" a person
                out.append(Mention(s, e, text[s:e], typ, "ner"))
        return out

    def _combine(self, text: str, ner: list[Mention], toks: list[Token] | None = None) -> list[Mention]:
        toks = tokenize(text) if toks is None else toks
        gaz = [Mention(s, e, text[s:e], self.gazetteer.type_of(text[s:e], g), g.source)
               for s, e, g in self.gazetteer.match(text, toks)]
        gaz = [m for m in gaz if normalize_name(m.text) not in self.registry.rejected_surfaces]
        ner = _cut_title_prefixes(text, ner, [m for m in gaz if m.source == "title"])
        ner = _join_particles(text, ner)
        ner = _join_legal_forms(text, ner)
        ner, gaz = _split_institutions(text, ner, gaz)
        merged = merge_mentions(ner, gaz)
        merged = _honorific_names(text, merged)
        merged = _acronym_definitions(text, merged)
        if self.rescan:
            merged = self._rescan(text, toks, merged)
        merged = _restore_clipped_heads(text, merged)
        return [m for m in merged if normalize_name(m.text) not in self.registry.rejected_surfaces]

    def _rescan(self, text: str, toks: list[Token], mentions: list[Mention]) -> list[Mention]:
        """Find later/earlier repeats of names NER found once, and their short forms (surname, "Paxar")."""
        forms: dict[tuple[str, ...], str] = {}
        for m in mentions:
            if m.source not in ("ner", "honorific"):
                continue
            words = [t.text for t in tokenize(m.text)]
            if not words or not all(w[:1].isupper() or w.lower() in CONNECTORS for w in words):
                continue
            forms.setdefault(tuple(words), m.type)
            surname = surname_words(words)
            if m.type == PERSON and len(words) >= 2 and words[-1][:1].isupper() and len(words[-1]) > 2:
                forms.setdefault(tuple(surname), PERSON)
            if m.type == ORG and len(words) >= 2 and words[-1].lower().rstrip(".") in ORG_SUFFIXES:
                forms.setdefault(tuple(words[:-1]), ORG)
        if not forms:
            return mentions
        max_n = max(len(f) for f in forms)
        words = [t.text for t in toks]
        extra = []
        for i in range(len(toks)):
            for n in range(min(max_n, len(toks) - i), 0, -1):
                typ = forms.get(tuple(words[i : i + n]))
                if typ is not None:
                    s, e = toks[i].start, toks[i + n - 1].end
                    extra.append(Mention(s, e, text[s:e], typ, "rescan"))
                    break
        taken = [(m.start, m.end) for m in mentions]
        add = [m for m in extra if all(m.end <= s or m.start >= e for s, e in taken)]
        return sorted(mentions + _dedupe(add), key=lambda m: (m.start, m.end))


_HEAD_BEFORE_RE = re.compile(r"(?:^|(?<=\s))([A-Z][\w&'-]*[\w]) $")


def _restore_clipped_heads(text: str, mentions: list[Mention]) -> list[Mention]:
    """NER sometimes leaves the first word out of an organisation's name ("Acme [Metalworks]") while the
    document uses that word alone as a name elsewhere ("... said Acme."): the word joins the name it stands
    right before (one space), when it is capitalised, no function word, not a country, region or known city
    ("the U.K. [Treasury]" stays apart), and in no other mention but one of itself."""
    from index.linking.territories import is_known_place

    alone = {m.text for m in mentions if " " not in m.text and m.type != PERSON}
    if not alone:
        return mentions
    out: list[Mention] = []
    for m in mentions:
        hit = _HEAD_BEFORE_RE.search(text, max(0, m.start - 40), m.start) if m.type == ORG else None
        if hit is not None and hit.end() == m.start:
            word, ws = hit.group(1), hit.start(1)
            itself = bool(out) and (out[-1].start, out[-1].end) == (ws, m.start - 1)
            free = itself or not out or out[-1].end <= ws
            if (free and word in alone and word.casefold() not in EDGE_WORDS and not word.isupper()
                    and not is_known_place(word)):
                if itself:
                    out.pop()
                m = Mention(ws, m.end, text[ws : m.end], ORG, m.source)
        out.append(m)
    return out


def _dedupe(ms: list[Mention]) -> list[Mention]:
    return [c[2] for c in _select_longest([(m.start, m.end, m) for m in ms])]


def _join_particles(text: str, ner: list[Mention]) -> list[Mention]:
    """Name particles belong to the name: "[Ursula von der] [Leyen]" → one person; "von der [Leyen]" → the
    particles join the name after them (lowercase particles NER leaves out)."""
    out: list[Mention] = []
    for m in sorted(ner, key=lambda m: m.start):
        words = m.text.split()
        if out and words:
            prev = out[-1]
            gap = text[prev.end : m.start]
            if prev.text.split()[-1].casefold() in PARTICLES and gap.isspace() and len(gap) <= 2:
                out[-1] = Mention(prev.start, m.end, text[prev.start : m.end], PERSON, prev.source)
                continue
        if words and words[-1].casefold() in PARTICLES and len(words) > 1:
            nxt = re.match(r"\s{1,2}([^\W\d_][\w'’-]*)", text[m.end :])
            if nxt and nxt.group(1)[:1].isupper():
                e = m.end + nxt.end(1)
                m = Mention(m.start, e, text[m.start : e], PERSON, m.source)
        else:
            back = re.search(r"(?:^|[^\w\s’'])\s*((?:(?:" + "|".join(sorted(PARTICLES)) + r")\s){1,3})$",
                             text[max(0, m.start - 24) : m.start])
            if back and words and words[0][:1].isupper():
                s = m.start - len(back.group(1))
                m = Mention(s, m.end, text[s : m.end], PERSON if m.type == PLACE else m.type, m.source)
        if out and m.start < out[-1].end:  # swallowed by the name before it, extended over its particles
            continue
        out.append(m)
    return out


def _join_legal_forms(text: str, ner: list[Mention]) -> list[Mention]:
    """A span of legal forms only ("Co Inc") is the tail of the company before it ("[Merck] and [Co Inc]" →
    "Merck and Co Inc"); with no company before it, it is no name."""
    out: list[Mention] = []
    for m in sorted(ner, key=lambda m: m.start):
        words = [w.lower().rstrip(".,") for w in m.text.split()]
        if words and all(w in ORG_SUFFIXES for w in words):
            if out and re.fullmatch(r"(?:\s+(?:and|&)\s+|,\s*)", text[out[-1].end : m.start]):
                prev = out[-1]
                out[-1] = Mention(prev.start, m.end, text[prev.start : m.end], ORG, prev.source)
            continue
        out.append(m)
    return _join_partnerships(text, out)


_PARTNERSHIP_RE = re.compile(r"[A-Z][\w'’-]+\s+(?:and|&)\s+Co\b")


def _join_partnerships(text: str, ner: list[Mention]) -> list[Mention]:
    """A partnership's name lists its partners before "and Co": "[Stifel], [Nicolaus and Co Inc]" →
    one firm. Only one-word partners, so a list of firms ("Merrill Lynch, Goldman Sachs and Co") stays
    apart."""
    out: list[Mention] = []
    for m in ner:
        if out and _PARTNERSHIP_RE.match(m.text) and len(out[-1].text.split()) == 1:
            prev = out[-1]
            if re.fullmatch(r",\s?", text[prev.end : m.start]) and prev.text[:1].isupper():
                out[-1] = Mention(prev.start, m.end, text[prev.start : m.end], ORG, prev.source)
                continue
        out.append(m)
    return out


def _split_institutions(
    text: str, ner: list[Mention], gaz: list[Mention]
) -> tuple[list[Mention], list[Mention]]:
    """"[the U.K. Treasury]" (one NER span) → the country ("U.K.", from the gazetteer) and "Treasury"."""
    places = {m.start: m for m in gaz if m.type == PLACE and m.source == "gazetteer"}
    out = []
    for m in ner:
        place = places.get(m.start)
        if place is not None and m.type != PERSON and place.end < m.end:
            rest_s, rest_e = trim_span(text, place.end, m.end)
            if normalize_name(text[rest_s:rest_e]) in INSTITUTION_HEADS:
                out.append(Mention(rest_s, rest_e, text[rest_s:rest_e], ORG, m.source))
                continue
        out.append(m)
    return out, gaz


_NAME_WORD = r"[A-Z][^\W\d_]*(?:[-'’][A-Z][^\W\d_]*)?"
_HONORIFIC_RE = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Dr|Sir|Dame|Lord|Lady|Prof)\.?[ \t]+"
    r"(" + _NAME_WORD + r"(?:[ \t]+" + _NAME_WORD + r"){0,2})"
)


# Offices addressed with an honorific ("Mr Speaker", "Madam President"): no name follows.
_ADDRESSED = frozenset(
    "speaker president chairman chairwoman chair justice secretary deputy mayor ambassador".split()
)


def _honorific_names(text: str, mentions: list[Mention]) -> list[Mention]:
    """A name after an honorific ("Lord Browne", "Mr Glazer") is a person: found where NER missed it (source
    ``honorific``), re-typed where NER called it something else."""
    out = list(mentions)
    changed = False
    for hit in _HONORIFIC_RE.finditer(text):
        s, e = hit.span(1)
        first = text[s:e].split()[0].casefold()
        if first in EDGE_WORDS or first in _ADDRESSED:  # "Dr No", "Lord Of The Rings", "Mr Speaker"
            continue
        over = [i for i, m in enumerate(out) if m.start < e and s < m.end]
        if not over:
            out.append(Mention(s, e, text[s:e], PERSON, "honorific"))
            changed = True
        for i in over:
            m = out[i]
            if m.type != PERSON and hit.start() <= m.start <= s and m.source != "title":
                out[i] = replace(m, type=PERSON)
                changed = True
    return sorted(out, key=lambda m: (m.start, m.end)) if changed else mentions


_ACRONYM_AFTER_RE = re.compile(r"\s*\(\s*([A-Z][A-Za-z&.]{1,9})\s*\)")


def _acronym_definitions(text: str, mentions: list[Mention]) -> list[Mention]:
    """"World Health Organization (WHO)": the acronym in parentheses after a name becomes a mention of its own
    (source ``acronym``), which the resolver gives the name's entity."""
    taken = {(m.start, m.end): m for m in mentions}
    defined: dict[tuple[int, int], Mention] = {}
    for m in mentions:
        if len(m.text.split()) < 2:
            continue
        hit = _ACRONYM_AFTER_RE.match(text, m.end)
        if hit and sum(c.isupper() for c in hit.group(1)) >= 2:
            s, e = hit.span(1)
            if (s, e) in taken or all(e <= a or s >= b for a, b in taken):  # NER may have found it alone
                defined[(s, e)] = Mention(s, e, text[s:e], m.type, "acronym")
    if not defined:
        return mentions
    kept = [m for m in mentions if (m.start, m.end) not in defined]
    return sorted(kept + list(defined.values()), key=lambda m: (m.start, m.end))


def _cut_title_prefixes(text: str, ner: list[Mention], titles: list[Mention]) -> list[Mention]:
    """``[Russian Foreign Minister Sergei Lavrov]`` (one NER span) → keep only ``Sergei Lavrov``."""
    out = []
    for m in ner:
        for t in titles:
            if t.start <= m.start < t.end < m.end:
                s, e = trim_span(text, t.end, m.end)
                m = Mention(s, e, text[s:e], m.type, m.source) if e > s else m
        out.append(m)
    return out


def merge_mentions(ner: list[Mention], gaz: list[Mention]) -> list[Mention]:
    """Gazetteer mentions win an overlap when at least as long as the NER one; NER wins otherwise. A gazetteer
    name of unknown type (it names entities of several types) takes the type NER gave the same span."""
    same_span = {(m.start, m.end): m.type for m in ner}
    gaz = [Mention(g.start, g.end, g.text, same_span.get((g.start, g.end), OTHER), g.source)
           if g.type == OTHER and g.source == "gazetteer" else g for g in gaz]
    keep_ner = []
    for m in ner:
        rivals = [g for g in gaz if g.start < m.end and m.start < g.end]
        if any((g.end - g.start) >= (m.end - m.start) for g in rivals):
            continue
        keep_ner.append(m)
    kept_gaz = [g for g in gaz if all(not (m.start < g.end and g.start < m.end) for m in keep_ner)]
    return sorted(keep_ner + kept_gaz, key=lambda m: (m.start, m.end))
