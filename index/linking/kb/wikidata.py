"""Wikidata JSON dumps (one entity object per line) → registry entities with dated titles.

Per item: the English label (else the language-neutral ``mul`` label Wikidata now gives many names), the
English aliases, the English description, a type from the item's P31 (*instance of*) values through
:data:`P31_TYPES` (no P279 subclass walk: that needs the network), and for places their English demonyms
(P1549: "Russian" for Russia, so that "Russian foreign minister" reads as a nationality plus a title).

P39 (*position held*) statements become dated titles: the position's English label and aliases, from P580
(start time) to P582 (end time) at the precision Wikidata gives (a year, a month or a day). The position's
label comes from the same file; a position item missing from it is reported, and items used as positions
are not imported as entities themselves (they are how people are referred to, not things mentioned).

The file is read once, line by line; what is kept per item is its few English strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.linking.kb.report import ImportReport
from index.linking.kb.source import json_lines
from index.records import ORG, OTHER, PERSON, PLACE, Entity, Title

# P31 classes → entity type. The first of an item's P31 values found here decides (preferred rank first).
P31_TYPES: dict[str, str] = {
    "Q5": PERSON,  # human
    # places
    "Q6256": PLACE,  # country
    "Q3624078": PLACE,  # sovereign state
    "Q7275": PLACE,  # state
    "Q107390": PLACE,  # federated state
    "Q35657": PLACE,  # U.S. state
    "Q3336843": PLACE,  # country of the United Kingdom
    "Q10864048": PLACE,  # first-level administrative country subdivision
    "Q34876": PLACE,  # province
    "Q56061": PLACE,  # administrative territorial entity
    "Q82794": PLACE,  # geographic region
    "Q5107": PLACE,  # continent
    "Q515": PLACE,  # city
    "Q1549591": PLACE,  # big city
    "Q1637706": PLACE,  # city with millions of inhabitants
    "Q5119": PLACE,  # capital
    "Q15284": PLACE,  # municipality
    "Q3957": PLACE,  # town
    "Q532": PLACE,  # village
    "Q486972": PLACE,  # human settlement
    # organisations
    "Q43229": ORG,  # organization
    "Q4830453": ORG,  # business
    "Q783794": ORG,  # company
    "Q891723": ORG,  # public company
    "Q6881511": ORG,  # enterprise
    "Q1331793": ORG,  # media company
    "Q2085381": ORG,  # publisher
    "Q11032": ORG,  # newspaper
    "Q192283": ORG,  # news agency
    "Q1616075": ORG,  # television station
    "Q14350": ORG,  # radio station
    "Q7278": ORG,  # political party
    "Q7210356": ORG,  # political organization
    "Q327333": ORG,  # government agency
    "Q2659904": ORG,  # government organization
    "Q192350": ORG,  # ministry
    "Q484652": ORG,  # international organization
    "Q245065": ORG,  # intergovernmental organization
    "Q163740": ORG,  # nonprofit organization
    "Q48204": ORG,  # voluntary association
    "Q3918": ORG,  # university
    "Q31855": ORG,  # research institute
    "Q12973014": ORG,  # sports team
    "Q847017": ORG,  # sports club
    "Q476028": ORG,  # association football club
}

_RANK_ORDER = {"preferred": 0, "normal": 1}


@dataclass(slots=True)
class _Item:
    qid: str
    name: str
    type: str
    aliases: tuple[str, ...]
    description: str | None
    held: tuple[tuple[str, str | None, str | None], ...]  # (position qid, from, to)


def read_wikidata(path: str | Path, report: ImportReport) -> Iterator[Entity]:
    """The entities of a Wikidata dump, each with its P39 positions as dated titles."""
    items: dict[str, _Item] = {}
    for n, obj in json_lines(path):
        report.lines += 1
        if isinstance(obj, str):
            report.skip(f"malformed line: {obj}", f"line {n}")
            continue
        item = _item(obj, n, report)
        if item is not None:
            items[item.qid] = item
    return _entities(items, report)


def _item(obj: dict[str, Any], n: int, report: ImportReport) -> _Item | None:
    qid = obj.get("id")
    if obj.get("type") != "item" or not isinstance(qid, str) or not qid.startswith("Q"):
        report.skip("not a Wikidata item (property, lexeme or no id)", f"line {n}")
        return None
    name = _text(obj.get("labels"), "en") or _text(obj.get("labels"), "mul")
    if not name:
        report.skip("no English label", qid)
        return None
    claims = obj.get("claims") or {}
    etype = _type(claims)
    aliases = [a for a in _texts(obj.get("aliases"), "en") if a != name]
    if etype == PLACE:
        aliases += [d for d in _monolingual(claims.get("P1549"), "en") if d != name and d not in aliases]
    held = tuple(
        (pos, _time(_qualifier(st, "P580")), _time(_qualifier(st, "P582")))
        for st in _statements(claims.get("P39"))
        if (pos := _item_id(st.get("mainsnak"))) is not None
    )
    return _Item(qid, name, etype, tuple(dict.fromkeys(aliases)), _text(obj.get("descriptions"), "en"), held)


def _entities(items: dict[str, _Item], report: ImportReport) -> Iterator[Entity]:
    """Entities with their titles, each item dropped as it is handed on (the registry keeps its own copy)."""
    held = {pos for it in items.values() for pos, _, _ in it.held}
    posts = {p: (items[p].name, *items[p].aliases) for p in held if p in items}
    report.positions = len(posts)
    for qid in sorted(items):
        it = items.pop(qid)
        if qid in held and it.type != PERSON:
            continue
        titles: list[Title] = []
        for pos, start, end in it.held:
            if pos not in posts:
                report.skip("position item missing from the file", f"{pos} (held by {qid})")
                continue
            titles += [Title(t, start, end) for t in posts[pos]]
        report.titles += len(titles)
        yield Entity(id=qid, name=it.name, type=it.type, aliases=it.aliases, wikidata=qid,
                     description=it.description, titles=tuple(dict.fromkeys(titles)))


# ---------------------------------------------------------------- the dump's shapes
def _text(values: Any, lang: str) -> str | None:
    v = values.get(lang) if isinstance(values, dict) else None
    text = v.get("value") if isinstance(v, dict) else None
    return text.strip() or None if isinstance(text, str) else None


def _texts(values: Any, lang: str) -> list[str]:
    vs = values.get(lang) if isinstance(values, dict) else None
    if not isinstance(vs, list):
        return []
    return [v["value"].strip() for v in vs if isinstance(v, dict) and isinstance(v.get("value"), str)
            and v["value"].strip()]


def _statements(claims: Any) -> list[dict[str, Any]]:
    """Statements of one property, deprecated ones dropped, preferred first."""
    if not isinstance(claims, list):
        return []
    kept = [c for c in claims if isinstance(c, dict) and c.get("rank", "normal") in _RANK_ORDER]
    return sorted(kept, key=lambda c: _RANK_ORDER[c.get("rank", "normal")])


def _value(snak: Any) -> Any:
    if not isinstance(snak, dict) or snak.get("snaktype", "value") != "value":
        return None  # "somevalue" / "novalue": unknown, treated as absent
    dv = snak.get("datavalue")
    return dv.get("value") if isinstance(dv, dict) else None


def _item_id(snak: Any) -> str | None:
    v = _value(snak)
    qid = v.get("id") if isinstance(v, dict) else None
    if qid is None and isinstance(v, dict) and isinstance(v.get("numeric-id"), int):
        qid = f"Q{v['numeric-id']}"
    return qid if isinstance(qid, str) and qid.startswith("Q") else None


def _type(claims: dict[str, Any]) -> str:
    for st in _statements(claims.get("P31")):
        t = P31_TYPES.get(_item_id(st.get("mainsnak")) or "")
        if t:
            return t
    return OTHER


def _monolingual(claims: Any, lang: str) -> list[str]:
    out = []
    for st in _statements(claims):
        v = _value(st.get("mainsnak"))
        if isinstance(v, dict) and v.get("language") == lang and isinstance(v.get("text"), str):
            out.append(v["text"].strip())
    return [x for x in out if x]


def _qualifier(statement: dict[str, Any], prop: str) -> Any:
    quals = statement.get("qualifiers")
    snaks = quals.get(prop) if isinstance(quals, dict) else None
    return snaks[0] if isinstance(snaks, list) and snaks else None


def _time(snak: Any) -> str | None:
    """A Wikidata time ("+2004-03-09T00:00:00Z", precision 9/10/11) as an ISO date at that precision."""
    v = _value(snak)
    if not isinstance(v, dict) or not isinstance(v.get("time"), str):
        return None
    t, precision = v["time"], v.get("precision", 11)
    if not t.startswith("+") or not isinstance(precision, int) or precision < 9:
        return None  # BCE dates, decades and centuries: too vague to date a title
    year, month, day = t[1:].split("T")[0].split("-")[:3]
    if len(year) > 4 and year.lstrip("0") and len(year.lstrip("0")) <= 4:
        year = year.lstrip("0").rjust(4, "0")
    if len(year) != 4 or not year.isdigit():
        return None
    if precision == 9 or month == "00":
        return year
    if precision == 10 or day == "00":
        return f"{year}-{month}"
    return f"{year}-{month}-{day}"
