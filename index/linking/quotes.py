"""Direct quotes: where they are, which reporting verb cues them, and who said them.

**Spans** (:func:`find_spans`). Double marks only: “curly” ones, and "straight" ones, whose direction comes
from their neighbours (after a space, bracket or dash and before a non-space: opening; else closing).
Single marks (‘…’, '…') nest inside a quote and are apostrophes elsewhere, so they never make a quote of
their own. An opening mark while a quote is still open is the *reopened-mark* convention of a quote that
runs on into the next paragraph (or into the next sentence of text whose paragraph breaks were lost): the
quote goes on as a new *segment*. A quote left open at a paragraph end that the next paragraph does not
reopen ends there. Segments of one quote share a ``quote_id``; the build cuts them again at its own
paragraph boundaries.

**Attribution** (:func:`extract_quotes`). Each sentence that holds a quote is parsed with spaCy's
dependency parser, with every quote's content replaced by a short clause placeholder: the parse then costs
a few tokens a quote rather than the quote's length, and the parser sees the same simple shape
(“It is so,” X said) whatever was quoted. In that parse:

* the **cue** is the reporting verb (lemma in :data:`CUE_VERBS`, or a phrasal one: "went on") that
  governs the placeholder, else the nearest one with no other quote in between, or "according to";
* the **speaker phrase** is the cue's subject (either order: "X said", "said X"), the object of
  "according to" or of "quoted X as saying", or, for a verb joined to another ("X stood up and said",
  "…, saying"), that verb's subject;
* the phrase's head gives the speaker: a linked name on it (``explicit``); a person named in apposition to
  it ("the mayor, Sadiq Khan, promised" → ``apposition``); a pronoun (he, she) → the subject of the nearest
  sentence that names a person if that subject is a person (a he/she subject is followed back in turn),
  else the nearest person before it, with no gender guessed (``pronoun``); a *definite* person role ("the
  foreign ministry spokeswoman") → the person who is the subject just before, found the same way but
  never by mere nearness (``role``); otherwise an **unnamed source** ("a company spokeswoman",
  "officials", "her spokesman"): speaker ``None``, the phrase kept as ``descriptor`` (``unnamed``). Names
  after a preposition ("a spokeswoman *for* X") are never the speaker.

A quote with no cue in its sentence (``continuation``) takes the speaker of reported speech in the
sentence just before ("Smith insisted he would win. “…”"), else the previous quote's speaker (named or
unnamed) when it follows in the same or the next paragraph and no other person is named after that
quote's sentence, else the person who is the subject of the sentence just before. What is left is kept
*unattributed*: speaker ``None``, ``how`` and ``descriptor`` empty.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from index.records import ORG, PERSON, Link, Quote

# Reporting verbs, as lemmas (the parse lemmatises "says", "told", "insisting").
CUE_VERBS = frozenset(
    """say tell add write state explain note argue insist continue reply warn declare claim stress recall
    post tweet respond remark observe admit conclude announce suggest joke quip emphasize emphasise
    acknowledge ask answer promise predict confirm deny complain comment urge vow pledge boast concede
    maintain contend assert caution counter shout whisper reveal testify plead retort laugh muse describe
    call agree report reckon believe think accept accuse criticise criticize brand label dismiss condemn
    hail praise demand""".split()
)
# Phrasal reporting verbs: (lemma, particle).
CUE_PHRASES = frozenset({("go", "on"), ("hit", "back"), ("fire", "back"), ("point", "out"), ("spell", "out")})
# Head nouns of a phrase that names a person by role: a definite one ("the spokeswoman") may refer back to
# the person just named; any of them without a name stays an unnamed source.
PERSON_ROLES = frozenset(
    """spokesman spokeswoman spokesperson minister secretary president chairman chairwoman chair chief
    executive director manager coach mayor governor senator judge official officer leader head boss chancellor
    ambassador general commander analyst economist lawyer attorney prosecutor founder captain player
    striker midfielder defender goalkeeper author singer actor actress star producer presenter editor
    reporter correspondent professor researcher scientist doctor surgeon expert adviser advisor aide envoy
    diplomat king queen prince princess premier deputy member mp candidate campaigner activist organiser
    organizer owner investor trader consultant partner representative negotiator inspector commissioner
    superintendent detective sergeant constable witness victim mother father son daughter wife husband
    brother sister man woman teenager boy girl lawmaker legislator politician strategist champion holder
    winner veteran runner athlete sprinter swimmer boxer golfer rider driver batsman bowler winger
    international rapper musician novelist writer designer youngster pensioner pupil student teacher nurse
    patient fan rival opponent colleague friend""".split()
)
_PERSON_ROLE_SUFFIXES = ("man", "woman", "person", "ist", "ian")
_DEFINITE = frozenset({"the", "this", "that"})
_PERSON_PRONOUNS = frozenset({"he", "she"})
_RELATIVE = frozenset({"who", "that"})
_SUBJ = frozenset({"nsubj", "nsubjpass"})
# Dependencies followed from a speaker phrase's head to the name it stands for: never into a preposition.
_NAME_DEPS = frozenset({"appos", "compound", "flat", "npadvmod"})

CONFIDENCE = {"explicit": 0.95, "apposition": 0.9, "unnamed": 0.9, "pronoun": 0.75, "role": 0.7,
              "continuation": 0.6, "": 0.0}
MIN_WORDS = 3  # shorter quoted passages are mostly titles, nicknames and scare quotes

_OPEN_CURLY, _CLOSE_CURLY = "“", "”"
_MARKS_RE = re.compile(r"[“”\"]")
_BLANK_RE = re.compile(r"\n[ \t]*\n")
_WORDS_RE = re.compile(r"\w+")
_OPENER_BEFORE = " \t\n([{—–-/"
# A sentence ends at . ! ? (closing marks may follow) before a space and an upper-case letter, digit or mark;
# not after a title or an initial ("Mr. Smith", "J. Smith", "U.S. officials"), nor at a quoted question or
# exclamation, which the attribution usually follows ("“Why now?” Lavrov asked").
_SENT_END_RE = re.compile(r"(?:[.!?][’')\]]*|\.[”\"’')\]]+)\s+(?=[A-Z0-9“\"‘(])")
_NO_BREAK_BEFORE_RE = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Gen|Sen|Rep|Gov|Lt|Col|Capt|Sgt|Jr|Sr|No|vs|Inc|Corp|Co|Ltd|Jan|Feb|Mar|"
    r"Apr|Aug|Sept?|Oct|Nov|Dec)|\b[A-Z]|\b(?:[A-Z]\.)+[A-Z])$"
)


# ------------------------------------------------------------------ spans
@dataclass
class QuoteSpan:
    """One quote: its segments' contents ``[(start, end)]`` (marks excluded), one per reopened mark."""

    segments: list[tuple[int, int]] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.segments[0][0]

    @property
    def end(self) -> int:
        return self.segments[-1][1]


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in _BLANK_RE.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _is_opening(text: str, i: int) -> bool | None:
    """Whether the mark at ``i`` opens (True), closes (False) or cannot be told (None, e.g. ``a " b``)."""
    c = text[i]
    if c == _OPEN_CURLY:
        return True
    if c == _CLOSE_CURLY:
        return False
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    if before in _OPENER_BEFORE or before in "“‘":
        return None if after.isspace() else True
    return False


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    """A segment's content without surrounding spaces or the comma before the closing mark."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and (text[e - 1].isspace() or text[e - 1] == ","):
        e -= 1
    return s, e


def find_spans(text: str) -> list[QuoteSpan]:
    """Every quote of ``text`` with its segments, in text order (see the module docstring)."""
    out: list[QuoteSpan] = []
    paras = _paragraphs(text)
    cur: QuoteSpan | None = None
    seg_start: int | None = None
    for n, (ps, pe) in enumerate(paras):
        if cur is not None and not (_MARKS_RE.match(text, ps) and _is_opening(text, ps)):
            out.append(cur)  # left open at the previous paragraph's end and not reopened here
            cur = None
        for m in _MARKS_RE.finditer(text, ps, pe):
            i = m.start()
            opening = _is_opening(text, i)
            if opening is None:  # spaces on both sides: a closing mark typed apart, if a quote is open
                if cur is None or seg_start is None:
                    continue
                opening = False
            if opening:
                if cur is not None and seg_start is not None:
                    cur.segments.append(_trim(text, seg_start, i))
                cur = cur or QuoteSpan()
                seg_start = i + 1
            elif cur is not None and seg_start is not None:
                cur.segments.append(_trim(text, seg_start, i))
                out.append(cur)
                cur, seg_start = None, None
        if cur is not None and seg_start is not None:
            cur.segments.append(_trim(text, seg_start, pe))
            seg_start = None
            if n + 1 == len(paras):
                out.append(cur)
                cur = None
    for q in out:
        q.segments = [(s, e) for s, e in q.segments if e > s]
    return [q for q in out if q.segments]


def find_quotes(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every quote segment's content, curly or straight marks (marks excluded)."""
    return [seg for q in find_spans(text) for seg in q.segments]


# ------------------------------------------------------------------ the parse
@lru_cache(maxsize=4)
def load_parser(name: str) -> Any:
    """The spaCy pipeline ``name`` without NER (tagger, parser, lemmatizer): a second instance beside the
    detector's NER-only one, run only on the sentences that hold a quote."""
    from index.linking.detect import spacy_pipeline

    return spacy_pipeline(name, ["ner"], "parser")


@dataclass
class _Piece:
    """A stretch of the parse text: ``orig`` is its offset in the document, or ``quote`` its quote's index."""

    start: int
    end: int
    orig: int | None = None
    quote: int | None = None


@dataclass
class _Sentence:
    text: str
    pieces: list[_Piece]
    para: int
    quotes: list[int]  # indices of the quotes whose placeholders it holds
    doc: Any = None  # the parse, made when first needed

    def orig_span(self, tok: Any) -> tuple[int, int] | None:
        for p in self.pieces:
            if p.orig is not None and p.start <= tok.idx < p.end:
                s = p.orig + tok.idx - p.start
                return s, s + len(tok.text)
        return None

    def quote_of(self, tok: Any) -> int | None:
        for p in self.pieces:
            if p.start <= tok.idx < p.end:
                return p.quote
        return None


def _placeholder(content: str) -> str:
    """A short clause standing for a quote in the parse; keeps the content's case and final punctuation."""
    word = "It is so" if content[:1].isupper() or not content[:1].isalpha() else "it is so"
    tail = content.rstrip()[-1:]
    return word + (tail if tail in ".!?" else "")


def _sentences(text: str, spans: list[QuoteSpan]) -> tuple[list[_Sentence], dict[int, list[int]]]:
    """The document as sentences of parse text (quotes replaced), and each quote's sentence indices."""
    segs = sorted((s, e, qi) for qi, q in enumerate(spans) for s, e in q.segments)
    out: list[_Sentence] = []
    where: dict[int, list[int]] = {}
    for pn, (ps, pe) in enumerate(_paragraphs(text)):
        stretches: list[tuple[str, int | None, int | None]] = []  # (parse text, document offset, quote)
        pos = ps
        for s, e, qi in segs:
            if ps <= s < pe:
                stretches += [(text[pos:s], pos, None), (_placeholder(text[s:e]), None, qi)]
                pos = e
        stretches.append((text[pos:pe], pos, None))
        pieces: list[_Piece] = []
        clen = 0
        for chunk, orig, quote in stretches:
            pieces.append(_Piece(clen, clen + len(chunk), orig, quote))
            clen += len(chunk)
        ptext = "".join(chunk for chunk, _, _ in stretches)
        bounds = [0]
        for m in _SENT_END_RE.finditer(ptext):
            if not _NO_BREAK_BEFORE_RE.search(ptext, 0, m.start()) and not _in_placeholder(pieces, m.start()):
                bounds.append(m.end())
        bounds.append(len(ptext))
        for a, b in zip(bounds, bounds[1:], strict=False):
            if b <= a:
                continue
            sp = [_Piece(max(p.start, a) - a, min(p.end, b) - a,
                         None if p.orig is None else p.orig + max(p.start, a) - p.start, p.quote)
                  for p in pieces if p.start < b and p.end > a]
            qs = sorted({p.quote for p in sp if p.quote is not None})
            for qi in qs:
                where.setdefault(qi, []).append(len(out))
            out.append(_Sentence(ptext[a:b], sp, pn, qs))
    return out, where


def _in_placeholder(pieces: list[_Piece], pos: int) -> bool:
    return any(p.quote is not None and p.start <= pos < p.end - 1 for p in pieces)


# ------------------------------------------------------------------ attribution
@dataclass
class _Who:
    speaker: str | None = None
    how: str = ""
    descriptor: str = ""
    cue: str = ""


class _Attributor:
    """Attributes the quotes of one document over its sentences, links and (lazily made) parses."""

    def __init__(self, text: str, links: list[Link], spans: list[QuoteSpan], nlp: Any):
        self.text = text
        self.spans = spans
        self.nlp = nlp
        inside = [seg for q in spans for seg in q.segments]
        self.links = [lk for lk in links if not any(s <= lk.start < e for s, e in inside)]
        self.persons = [lk for lk in self.links if lk.type == PERSON]
        self.sents, self.where = _sentences(text, spans)

    def parsed(self, i: int) -> Any:
        """Sentence ``i``'s parse; ``_Unparsed`` when it has none yet (``extract_quotes_many`` parses it in a
        batch with the others found missing, then attributes the document again)."""
        if self.sents[i].doc is None:
            raise _Unparsed(i)
        return self.sents[i].doc

    # -------------------------------------------------- one quote
    def attribute(self, qi: int) -> _Who | None:
        """The speaker of quote ``qi`` from a cue in a sentence it is in; None if no sentence holds a cue."""
        for si in self.where.get(qi, []):
            who = self._in_sentence(qi, si)
            if who is not None:
                return who
        return None

    def lead_in(self, qi: int) -> _Who | None:
        """A quote standing alone after reported speech ("Smith insisted he would win. “…”"): the speaker
        of the sentence before, if that sentence holds no quote, its main verb is a cue and it names one."""
        idx = self.where.get(qi)
        if not idx or idx[0] == 0:
            return None
        sent, prev = self.sents[idx[0]], self.sents[idx[0] - 1]
        if not self._starts_sentence(qi, idx[0]) or prev.quotes or prev.para < sent.para - 1:
            return None
        doc = self.parsed(idx[0] - 1)
        for root in (t for t in doc if t.dep_ == "ROOT" and self._is_cue(prev, t)):
            for head in self._subjects(prev, root):
                who = self._who(prev, idx[0] - 1, head)
                if who.speaker:
                    return replace(who, how="continuation", cue="")
        return None

    def _in_sentence(self, qi: int, si: int) -> _Who | None:
        sent = self.sents[si]
        doc = self.parsed(si)
        toks = [t for t in doc if sent.quote_of(t) == qi]
        if not toks:
            return None
        cue = self._cue(sent, doc, toks, qi)
        if cue is None:
            return None
        if cue.lower_ == "according":
            heads = [c for t in cue.children if t.lower_ == "to" for c in t.children if c.dep_ == "pobj"]
            word = "according to"
        else:
            heads = self._subjects(sent, cue)
            word = " ".join([cue.lower_, *(c.lower_ for c in cue.children if c.dep_ == "prt")])
        whos = [self._who(sent, si, h) for h in heads]
        who = next((w for w in whos if w.speaker), whos[0] if whos else _Who())
        who.cue = word
        return who

    def _cue(self, sent: _Sentence, doc: Any, toks: list[Any], qi: int) -> Any:
        """The reporting verb governing the quote's placeholder, else the nearest one (or "according")
        with no other quote between."""
        ids = {t.i for t in toks}
        root = next((t for t in toks if t.head.i not in ids or t.head.i == t.i), toks[0])
        t = root
        for _ in range(6):
            if t.head.i == t.i:
                break
            t = t.head
            if self._is_cue(sent, t):
                return t
        cands = [t for t in doc if sent.quote_of(t) is None and (self._is_cue(sent, t) or self._according(t))]
        lo, hi = min(ids), max(ids)
        best = None
        for c in cands:
            a, b = (c.i, lo) if c.i < lo else (hi, c.i)
            between = {sent.quote_of(x) for x in doc[a:b]} - {None, qi}
            if between:
                continue
            d = abs(c.i - lo) if c.i < lo else abs(c.i - hi)
            if best is None or d < best[0]:
                best = (d, c)
        return best[1] if best else None

    @staticmethod
    def _is_cue(sent: _Sentence, t: Any) -> bool:
        if t.pos_ not in ("VERB", "AUX") or sent.quote_of(t) is not None:
            return False
        lemma = t.lemma_.lower()
        prts = (c.lower_ for c in t.children if c.dep_ == "prt")
        return lemma in CUE_VERBS or any((lemma, prt) in CUE_PHRASES for prt in prts)

    @staticmethod
    def _according(t: Any) -> bool:
        return t.lower_ == "according" and any(c.lower_ == "to" for c in t.children)

    def _subjects(self, sent: _Sentence, verb: Any) -> list[Any]:
        """The cue's subjects; for a verb joined to another ("stood up and said", "…, saying") that one's."""
        if verb.dep_ == "pcomp" and verb.head.lower_ == "as" and verb.head.head.pos_ == "VERB":
            frame = verb.head.head  # "Apcom quoted Y as saying", "Y is reported as saying"
            objs = [c for c in frame.children if c.dep_ in ("dobj", "nsubjpass")]
            if objs:
                return objs
        v = verb
        for _ in range(3):
            subs = [c for c in v.children if c.dep_ in _SUBJ and sent.quote_of(c) is None]
            if subs:
                return subs
            joined = v.dep_ in ("conj", "xcomp") or (v.dep_ == "advcl" and v.tag_ in ("VBG", "VBN"))
            if not joined or v.head.i == v.i:
                break
            v = v.head
        # "…,” said X" parsed with X as object: only a name after the verb.
        return [c for c in verb.children if c.dep_ in ("dobj", "attr") and c.i > verb.i
                and sent.quote_of(c) is None and c.pos_ == "PROPN"]

    def _link_at(self, sent: _Sentence, tok: Any) -> Link | None:
        span = sent.orig_span(tok)
        if span is None:
            return None
        s, e = span
        hits = [lk for lk in self.links if lk.start < e and s < lk.end]
        return hits[0] if hits else None

    def _name_tokens(self, sent: _Sentence, head: Any) -> list[Any]:
        """Tokens a speaker phrase's head stands for: itself, its appositions and their name parts. A person
        apposed to a *named non-person* after a preposition is the head's apposition misattached by the
        parser ("the chief economist of Barclays, Jane Doe"); one apposed to a role is not ("a spokeswoman
        for the mayor, Jane Doe")."""
        out, todo = [], [head]
        if head.dep_ == "appos":
            todo.append(head.head)
        for prep in (c for c in head.children if c.dep_ == "prep"):
            for obj in (c for c in prep.children if c.dep_ == "pobj"):
                lk = self._link_at(sent, obj)
                if lk is not None and lk.type != PERSON:
                    todo.extend(c for c in obj.children if c.dep_ == "appos")
        while todo:
            t = todo.pop(0)
            if t in out:
                continue
            out.append(t)
            todo.extend(c for c in t.children if c.dep_ in _NAME_DEPS)
        return out

    def _who(self, sent: _Sentence, si: int, head: Any, role: bool = True) -> _Who:
        if head.lower_ in _RELATIVE and head.head.dep_ == "relcl":
            head = head.head.head  # "Smith, who said …"
        if head.lower_ in _PERSON_PRONOUNS:
            span = sent.orig_span(head)
            lk = self._pronoun(si, span[0] if span else None)
            return _Who(lk.entity_id, "pronoun") if lk else _Who()
        if head.lower_ == "it" and role:
            lk = self._organisation_before(si)
            return _Who(lk.entity_id, "pronoun") if lk else _Who()
        if head.pos_ == "PRON":
            return _Who()
        at = self._link_at(sent, head)
        if at is not None and at.type == PERSON:
            return _Who(at.entity_id, "explicit")
        for t in self._name_tokens(sent, head)[1:]:
            lk = self._link_at(sent, t)
            if lk is not None and lk.type == PERSON:
                return _Who(lk.entity_id, "apposition")
        if at is not None:
            return _Who(at.entity_id, "explicit")
        if head.pos_ == "PROPN":  # a name nobody linked here: a person named before with that last word
            span = sent.orig_span(head)
            same = [lk for lk in self.persons if span and lk.end <= span[0]
                    and lk.text.split()[-1].casefold() == head.text.casefold()]
            return _Who(same[-1].entity_id, "explicit") if same else _Who()
        desc = self._descriptor(head)
        definite = any(c.dep_ == "det" and c.lower_ in _DEFINITE for c in head.children)
        if role and definite and _person_role(head):
            span = sent.orig_span(head)
            lk = self._pronoun(si, span[0] if span else None, nearest=False)
            if lk is not None:
                return _Who(lk.entity_id, "role")
        return _Who(None, "unnamed", desc)

    @staticmethod
    def _descriptor(head: Any) -> str:
        skip = {"appos", "relcl", "acl", "punct", "advcl"}
        toks = [head]
        todo = [c for c in head.children if c.dep_ not in skip]
        while todo:
            t = todo.pop()
            toks.append(t)
            todo.extend(c for c in t.children if c.dep_ not in skip)
        toks.sort(key=lambda t: t.i)
        while toks and toks[0].dep_ == "det" and toks[0].head == head:
            toks = toks[1:]
        return " ".join(t.text for t in toks)

    def _subject_person(self, si: int, depth: int = 0) -> Link | None:
        """The person who is the subject of sentence ``si``'s main verb (directly, through apposition, or as
        a he/she resolved in turn); failing that, the person a he/she subject of another verb stands for
        ("The problem, he believed, was …")."""
        sent = self.sents[si]
        doc = self.parsed(si)
        subs = [c for root in doc if root.dep_ == "ROOT" for c in root.children if c.dep_ in _SUBJ]
        for sub in subs:
            for t in self._name_tokens(sent, sub):
                lk = self._link_at(sent, t)
                if lk is not None and lk.type == PERSON:
                    return lk
        if depth >= 3:
            return None
        pronouns = [t for t in subs if t.lower_ in _PERSON_PRONOUNS]
        pronouns += [t for t in doc if t.dep_ in _SUBJ and t.lower_ in _PERSON_PRONOUNS and t not in pronouns]
        for t in pronouns:
            span = sent.orig_span(t)
            lk = self._pronoun(si, span[0] if span else None, depth + 1)
            if lk is not None:
                return lk
        return None

    def _pronoun(self, si: int, pos: int | None, depth: int = 0, nearest: bool = True) -> Link | None:
        """He/she at ``pos`` in sentence ``si``: the subject of the nearest sentence before it that names a
        person, if a person, else (with ``nearest``) the nearest person named before it."""
        if pos is None:
            return None
        before = [lk for lk in self.persons if lk.end <= pos]
        if not before:
            return None
        last = before[-1] if nearest else None
        for j in range(si, -1, -1):
            named = [lk for lk in before if self._in_sent(j, lk)]
            if named and j == si:  # its own sentence: only a person subject before it ("Smith said he …")
                subj = self._subject_before(j, pos)
                if subj is not None:
                    return subj
            elif named:
                subj = self._subject_person(j, depth)
                if subj is not None and subj.end <= pos:
                    return subj
                return last
        return last

    def _organisation_before(self, si: int) -> Link | None:
        """What "it said" stands for: the organisation that is the subject of the nearest sentence before
        (same or previous paragraph) whose subject is a name; nothing when that name is not an organisation
        ("The report …. “…,” it said" stays unattributed)."""
        for j in range(si - 1, max(-1, si - 4), -1):
            if self.sents[j].para < self.sents[si].para - 1:
                break
            sent, doc = self.sents[j], self.parsed(j)
            subs = [c for root in doc if root.dep_ == "ROOT" for c in root.children if c.dep_ in _SUBJ]
            named = [lk for sub in subs for t in self._name_tokens(sent, sub)
                     if (lk := self._link_at(sent, t)) is not None]
            if named:
                return named[0] if named[0].type == ORG else None
        return None

    def _subject_before(self, si: int, pos: int) -> Link | None:
        """In the pronoun's own sentence, only a person subject before it counts ("Smith said he …")."""
        sent = self.sents[si]
        for t in self.parsed(si):
            span = sent.orig_span(t)
            if t.dep_ in _SUBJ and span and span[1] <= pos:
                for n in self._name_tokens(sent, t):
                    lk = self._link_at(sent, n)
                    if lk is not None and lk.type == PERSON:
                        return lk
        return None

    def subject_lead_in(self, qi: int) -> _Who | None:
        """A quote standing alone after a sentence whose subject is a person ("Double try scorer Martyn
        Williams was keen not to talk about it. “…”"): that person, when that sentence holds no quote."""
        idx = self.where.get(qi)
        if not idx or idx[0] == 0 or not self._starts_sentence(qi, idx[0]):
            return None
        prev = self.sents[idx[0] - 1]
        if prev.quotes or prev.para < self.sents[idx[0]].para - 1:
            return None
        lk = self._subject_person(idx[0] - 1)
        return _Who(lk.entity_id, "continuation") if lk is not None else None

    def _starts_sentence(self, qi: int, si: int) -> bool:
        sent = self.sents[si]
        first = next((p for p in sent.pieces if sent.text[p.start : p.end].strip(" \t\n“”\"")), None)
        return first is not None and first.quote == qi

    def _in_sent(self, si: int, lk: Link) -> bool:
        return any(p.orig is not None and p.orig <= lk.start < p.orig + (p.end - p.start)
                   for p in self.sents[si].pieces)


def _person_role(head: Any) -> bool:
    """Whether a phrase's head noun names a person by role ("spokeswoman", "economist", "30-year-old")."""
    lemma = head.lemma_.lower()
    if lemma in PERSON_ROLES or (lemma.endswith(_PERSON_ROLE_SUFFIXES) and len(lemma) > 4):
        return True
    return lemma == "old" and any(c.lower_ == "year" for c in head.subtree)


def extract_quotes(text: str, links: list[Link], *, model: str | None = None, nlp: Any = None) -> list[Quote]:
    """Every direct quote of ``text`` (at least :data:`MIN_WORDS` words) with its speaker from ``links``
    (final entity ids), one :class:`Quote` per segment; ``nlp`` (or the spaCy pipeline ``model``, default
    the ``ner_model`` setting) parses the sentences that hold quotes."""
    return extract_quotes_many([(text, links)], model=model, nlp=nlp)[0]


def extract_quotes_many(
    docs: Sequence[tuple[str, list[Link]]], *, model: str | None = None, nlp: Any = None
) -> list[list[Quote]]:
    """:func:`extract_quotes` over many documents, the sentences that hold quotes parsed in one
    ``nlp.pipe`` for all of them (a call per document costs more than its parse)."""
    atts: list[_Attributor | None] = []
    for text, links in docs:
        spans = [q for q in find_spans(text) if sum(len(_WORDS_RE.findall(text[s:e])) for s, e in q.segments)
                 >= MIN_WORDS]
        if spans and nlp is None:
            if model is None:
                from index.settings import Settings

                model = Settings.load().ner_model
            nlp = load_parser(model)
        atts.append(_Attributor(text, sorted(links, key=lambda lk: (lk.start, lk.end)), spans, nlp)
                    if spans else None)
    _parse(nlp, [(att, si) for att in atts if att is not None
                 for si in sorted({si for idx in att.where.values() for si in idx})])
    # Attribution also reads some sentences next to a quote (a lead-in, a subject before): rather than parse
    # each alone as it is reached, the documents that reach one are attributed again once every such sentence
    # is parsed in one batch. Attribution depends only on the parses, so the quotes are the same.
    out: dict[int, list[Quote]] = {}
    pending = [k for k, att in enumerate(atts) if att is not None]
    while pending:
        missing: list[tuple[_Attributor, int]] = []
        for k in pending:
            try:
                out[k] = _attribute_all(atts[k])  # type: ignore[arg-type]
            except _Unparsed as err:
                missing.append((atts[k], err.sentence))  # type: ignore[arg-type]
        _parse(nlp, missing)
        pending = [k for k in pending if k not in out]
    return [out.get(k, []) for k in range(len(atts))]


class _Unparsed(Exception):
    def __init__(self, sentence: int):
        super().__init__(sentence)
        self.sentence = sentence


def _parse(nlp: Any, todo: Sequence[tuple[_Attributor, int]]) -> None:
    """Parse the sentences ``todo`` (attributor, sentence index) not parsed yet, in one ``nlp.pipe``."""
    todo = [(att, si) for att, si in todo if att.sents[si].doc is None]
    if todo:
        for (att, si), doc in zip(todo, nlp.pipe([att.sents[si].text for att, si in todo]), strict=True):
            att.sents[si].doc = doc


def _attribute_all(att: _Attributor) -> list[Quote]:
    whos: list[_Who] = []
    for qi in range(len(att.spans)):
        who = att.attribute(qi)
        if who is None:
            who = att.lead_in(qi) or _continuation(att, qi, whos) or att.subject_lead_in(qi) or _Who()
        whos.append(who)
    out = []
    text = att.text
    for qi, (q, who) in enumerate(zip(att.spans, whos, strict=True)):
        conf = CONFIDENCE[who.how] if who.speaker is not None or who.how == "unnamed" else 0.0
        if who.how == "continuation" and who.speaker is None:
            conf = CONFIDENCE["continuation"]
        for s, e in q.segments:
            out.append(Quote(s, e, text[s:e], who.speaker, conf, who.cue, who.how, who.descriptor, f"q{qi}"))
    return out


@dataclass(frozen=True)
class QuoteCounts:
    """Quotes (one per quote id) by outcome: a named speaker, an unnamed source, or nobody found."""

    found: int = 0
    named: int = 0
    unnamed: int = 0
    unattributed: int = 0

    def __add__(self, other: QuoteCounts) -> QuoteCounts:
        return QuoteCounts(self.found + other.found, self.named + other.named, self.unnamed + other.unnamed,
                           self.unattributed + other.unattributed)


def count_quotes(quotes: Sequence[Quote | dict[str, Any]]) -> QuoteCounts:
    """Counts of one document's ``quotes`` (records or their dicts); segments of a quote count once."""
    seen: dict[str, tuple[Any, Any]] = {}
    for n, q in enumerate(quotes):
        d = q if isinstance(q, dict) else q.to_dict()
        seen.setdefault(d.get("quote_id") or f"#{n}", (d.get("speaker"), d.get("descriptor")))
    named = sum(1 for sp, _ in seen.values() if sp)
    unnamed = sum(1 for sp, desc in seen.values() if not sp and desc)
    return QuoteCounts(len(seen), named, unnamed, len(seen) - named - unnamed)


def _continuation(att: _Attributor, qi: int, whos: list[_Who]) -> _Who | None:
    """The previous quote's speaker for a quote with no cue of its own, when it follows in the same or the
    next paragraph and nobody else is named between the end of the previous quote's sentence and it."""
    if qi == 0:
        return None
    prev = whos[qi - 1]
    if prev.speaker is None and not prev.descriptor:
        return None
    gap_start, gap_end = att.spans[qi - 1].end, att.spans[qi].start
    gap = att.text[gap_start:gap_end]
    if len(_BLANK_RE.findall(gap)) > 1 or len(gap) > 600:
        return None
    sents = att.where.get(qi - 1)
    if sents:
        last = att.sents[sents[-1]]
        ends = [p.orig + p.end - p.start for p in last.pieces if p.orig is not None]
        gap_start = max([gap_start, *ends])
    if any(gap_start <= lk.start < gap_end and lk.entity_id != prev.speaker for lk in att.persons):
        return None
    return replace(prev, how="continuation", cue="")


__all__ = ["CUE_VERBS", "PERSON_ROLES", "QuoteCounts", "QuoteSpan", "count_quotes", "extract_quotes",
           "find_quotes", "find_spans", "load_parser"]
