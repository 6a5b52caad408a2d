"""Metonymy in sports reports: a country or city named for its team ("Australia won by five wickets",
"Miami beat Dallas 27-10"). Such a mention is the team, never the place: it takes the team the document
names in full ("Miami Dolphins"), else it is a team entity of its own, apart from the country.

The test reads only the sentence around the mention: a result verb right after the name, or one right
before it, with a word of sport or a score in the sentence; the name's squad or staff ("Australia's
captain"); or a score beside it ("Wales 13-12 France").
"""

from __future__ import annotations

import re

_RESULT_VERBS = (
    r"beat|beats|beaten|defeated|defeat|defeats|thrashed|thrash|edged|edge|hammered|crushed|routed|"
    r"won|win|wins|lost|lose|loses|drew|draw|draws|trailed|trail|trails|led|leads|scored|score|scores|"
    r"conceded|clinched|retained|reached|advanced|eliminated|knocked|held|overcame|squeezed|stunned|"
    r"outplayed|whitewashed|swept|levelled|leveled|equalised|equalized|bowled|batted|declared"
)
_AFTER_RE = re.compile(r"^\s+(?:have\s+|has\s+|had\s+|were\s+|was\s+)?(?:" + _RESULT_VERBS + r")\b", re.I)
_BEFORE_RE = re.compile(
    r"\b(?:beat|beats|defeated|defeat|thrashed|edged|against|versus|vs\.?|v\.?|"
    r"(?:lost|loss|losses|defeat|defeats|beaten|losing)\s+to|(?:victory|victories|win|wins|triumph)\s+over)\s+$",
    re.I,
)
_PLAYER_RE = re.compile(r"^['’]s\s+[A-Z]")  # "Sweden's Thomas Enqvist": a player's country, not a team
_SQUAD_RE = re.compile(
    r"^['’]s?\s+(?:coach|captain|manager|squad|team|striker|strikers|goalkeeper|keeper|batsmen|batsman|"
    r"bowlers|bowler|innings|midfield|quarterback|pitcher|winger|scrum|lineout|skipper|selectors|"
    r"first\s+innings|second\s+innings)\b",
    re.I,
)
_SCORE_AFTER_RE = re.compile(r"^\s+\d{1,3}\s*[-–]\s*\d{1,3}\b")
_SCORE_BEFORE_RE = re.compile(r"\b\d{1,3}\s*[-–]\s*\d{1,3}\s+$")
_SCORE_RE = re.compile(r"\b\d{1,3}\s*[-–]\s*\d{1,3}\b")
_SPORT_WORDS = frozenset(
    """match matches goal goals wicket wickets innings tries league cup championship championships final
    finals semi-final quarter-final semi-finals quarter-finals tournament touchdown touchdowns inning playoff
    playoffs fixture fixtures half-time kick-off penalty penalties squad stadium coach captain striker
    quarterback pitcher overs bowled batting medal medals olympics relegation promotion""".split()
)
_SENTENCE_END_RE = re.compile(r"[.!?]\s+(?=[A-Z“\"])")


def _sentence(text: str, start: int, end: int) -> str:
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(text, max(0, start - 400), start)]
    s = ends[-1] if ends else max(0, start - 400)
    m = _SENTENCE_END_RE.search(text, end)
    return text[s : m.start() + 1 if m else min(len(text), end + 400)]


def sports_sense(text: str, start: int, end: int) -> bool:
    """Whether the name at ``text[start:end]`` stands for a team in its sentence."""
    after, before = text[end : end + 40], text[max(0, start - 24) : start]
    if _PLAYER_RE.match(after):
        return False
    if _SQUAD_RE.match(after) or _SCORE_AFTER_RE.match(after) or _SCORE_BEFORE_RE.search(before):
        return True
    if not (_AFTER_RE.match(after) or _BEFORE_RE.search(before)):
        return False
    sentence = _sentence(text, start, end)
    words = {w.lower() for w in re.findall(r"[\w-]+", sentence)}
    return bool(words & _SPORT_WORDS) or bool(_SCORE_RE.search(sentence))
