"""Direct-quote extraction and speaker attribution over linked text.

Patterns, in order of confidence:

* explicit after the quote: ``“…,” Lavrov told reporters`` / ``“…?” Lavrov then asked`` /
  ``“…,” said Lavrov``;
* explicit before the quote: ``Lavrov said: “…”``;
* pronoun after or before: ``“…,” he asked`` → the first person named in the last sentence (outside quotes)
  that names a person before the quote, i.e. the subject rather than whoever was mentioned last;
* continuation: an unattributed quote right after an attributed one (same or next paragraph, nobody else
  named in between) keeps that speaker.
"""

from __future__ import annotations

import re

from index.records import PERSON, Link, Quote

VERBS = (
    r"said|says|say|told|tells|asked|asks|added|adds|wrote|writes|stated|states|explained|explains|noted|notes|"
    r"argued|argues|insisted|insists|continued|continues|replied|replies|warned|warns|declared|declares|"
    r"claimed|claims|stressed|stresses|recalled|recalls|posted|posts|tweeted|tweets|responded|responds|"
    r"remarked|remarks|observed|observes|admitted|admits|concluded|concludes|announced|announces|"
    r"suggested|suggests|joked|jokes|quipped|quips|emphasized|emphasised|acknowledged|acknowledges"
)
_ADV = r"(?:\s+(?:\w+ly|then|also|later|again|once|had|has|have|was|would|will))?"
_QUOTE_RES = (re.compile(r"“([^“”]+)”"), re.compile(r'"([^"\n]+)"'))
_AFTER_RE = re.compile(rf"^[ \t,]*(?P<who>[^.!?;:“”\"\n]{{1,80}}?){_ADV}\s+(?:{VERBS})\b")
_AFTER_VERB_FIRST_RE = re.compile(rf"^[ \t,]*(?:{VERBS})\s+(?P<who>[^.!?;:“”\"\n]{{1,80}})")
_BEFORE_RE = re.compile(rf"(?P<who>[^.!?“”\"\n]{{1,80}}?){_ADV}\s+(?:{VERBS})\b[^.!?“”\"\n]{{0,80}}?[:,]\s*$")
_PRONOUN_RE = re.compile(r"^(?:the\s+)?(?:he|she)$", re.I)
_SENT_BREAK_RE = re.compile(r"[.!?][\"”’)]*\s+|\n")
_WORDS_RE = re.compile(r"\w+")

EXPLICIT, PRONOUN, CONTINUATION = 0.95, 0.75, 0.6


def find_quotes(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every quoted passage's content (quote marks excluded), curly or straight."""
    spans: list[tuple[int, int]] = []
    for rx in _QUOTE_RES:
        for m in rx.finditer(text):
            s, e = m.span(1)
            if all(e <= a or s >= b for a, b in spans):
                spans.append((s, e))
    return sorted(spans)


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(a - 1 <= pos < b + 1 for a, b in spans)


def _speaker_ending_at(links: list[Link], start: int, end: int) -> Link | None:
    """The link that ends where ``who`` ends (after trimming "the"/"'s" it may end slightly earlier)."""
    cands = [lk for lk in links if start <= lk.start and lk.end <= end and end - lk.end <= 3]
    return max(cands, key=lambda lk: lk.end) if cands else None


def _speaker_starting_at(links: list[Link], start: int, end: int) -> Link | None:
    cands = [lk for lk in links if start <= lk.start < end and lk.start - start <= 4]
    return min(cands, key=lambda lk: lk.start) if cands else None


def _subject_before(text: str, pos: int, persons: list[Link], quotes: list[tuple[int, int]]) -> Link | None:
    """First person named in the last sentence before ``pos`` that names a person (quotes skipped)."""
    before = [lk for lk in persons if lk.end <= pos and not _inside(lk.start, quotes)]
    if not before:
        return None
    last = before[-1]
    sent_start = 0
    for m in _SENT_BREAK_RE.finditer(text, 0, last.start):
        if not _inside(m.start(), quotes):
            sent_start = m.end()
    same = [lk for lk in before if lk.start >= sent_start]
    return same[0] if same else last


def extract_quotes(text: str, links: list[Link]) -> list[Quote]:
    """Attribute every direct quote in ``text`` that has a findable speaker (an entity id from ``links``)."""
    links = sorted(links, key=lambda lk: (lk.start, lk.end))
    persons = [lk for lk in links if lk.type == PERSON]
    spans = find_quotes(text)
    out: list[Quote] = []
    prev: tuple[int, Quote] | None = None  # (end of previous attributed quote incl. mark, quote)
    for s, e in spans:
        content_end = e
        while content_end > s and text[content_end - 1] in " ,":
            content_end -= 1
        body = text[s:content_end]
        if len(_WORDS_RE.findall(body)) < 3:
            continue
        speaker, conf = _attribute(text, s, e, links, persons, spans)
        if speaker is None and prev is not None:
            gap = text[prev[0] : s - 1]
            others = [lk for lk in persons if prev[0] <= lk.start < s - 1 and lk.entity_id != prev[1].speaker]
            if not others and gap.count("\n\n") <= 1 and len(gap) < 400:
                speaker, conf = prev[1].speaker, CONTINUATION
        if speaker is None:
            continue
        q = Quote(s, content_end, body, speaker, conf)
        out.append(q)
        prev = (e + 1, q)
    return out


def _attribute(
    text: str, s: int, e: int, links: list[Link], persons: list[Link], spans: list[tuple[int, int]]
) -> tuple[str | None, float]:
    after = e + 1  # past the closing mark
    window = text[after : after + 120]
    m = _AFTER_RE.match(window)
    if m:
        who = m.group("who").strip()
        ws, we = after + m.start("who"), after + m.end("who")
        if _PRONOUN_RE.match(who):
            subj = _subject_before(text, s, persons, spans)
            if subj is not None:
                return subj.entity_id, PRONOUN
        else:
            lk = _speaker_ending_at(links, ws, we)
            if lk is not None:
                return lk.entity_id, EXPLICIT
    m = _AFTER_VERB_FIRST_RE.match(window)
    if m:
        ws = after + m.start("who")
        lk = _speaker_starting_at(links, ws, after + m.end("who"))
        if lk is not None:
            return lk.entity_id, EXPLICIT
    line_start = text.rfind("\n", 0, s - 1) + 1
    head = text[line_start : s - 1]
    # A match ends in [:,] + spaces and holds none of .!?“”" — so only the head's tail after the last of
    # them can match: searching just that gives the same match, without the regex's quadratic scan.
    m = None
    if head.rstrip()[-1:] in (":", ","):
        cut = max(head.rfind(c) for c in '.!?“”"') + 1
        line_start += cut
        head = head[cut:]
        m = _BEFORE_RE.search(head)
    if m:
        who = m.group("who").strip()
        ws, we = line_start + m.start("who"), line_start + m.end("who")
        tail_word = who.split()[-1] if who.split() else ""
        if _PRONOUN_RE.match(tail_word):
            subj = _subject_before(text, ws, persons, spans)
            if subj is not None:
                return subj.entity_id, PRONOUN
        lk = _speaker_ending_at(links, ws, we)
        if lk is not None:
            return lk.entity_id, EXPLICIT
    return None, 0.0
