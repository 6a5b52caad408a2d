"""FollowTheMoney entity streams (as Aleph exports and OpenSanctions publishes them) → registry entities.

Read through the ``followthemoney`` model, so schemata and property names are FtM's own and values are
cleaned by their FtM type (dates, names). Imported: Person (→ person), Organization, Company and PublicBody
(→ org). Position and Occupancy become dated titles: an Occupancy's ``holder`` gets the ``post``'s name and
aliases as titles from ``startDate`` to ``endDate``. Streams are not ordered, so occupancies are resolved
after the whole file is read; what is kept per entity is its names, description and dates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from followthemoney import model
from followthemoney.exc import InvalidData
from followthemoney.proxy import EntityProxy

from index.linking.kb.report import ImportReport
from index.linking.kb.source import json_lines
from index.records import ORG, PERSON, Entity, Title

SCHEMA_TYPES = {"Person": PERSON, "Organization": ORG, "Company": ORG, "PublicBody": ORG}
NAME_PROPS = ("name", "alias", "previousName")  # weakAlias is too weak to link text by
USED_PROPS = frozenset(
    (*NAME_PROPS, "description", "summary", "wikidataId", "holder", "post", "startDate", "endDate")
)


@dataclass(slots=True)
class _Occupancy:
    holder: str
    post: str
    start: str | None
    end: str | None
    where: str


def read_ftm(path: str | Path, report: ImportReport) -> Iterator[Entity]:
    """The entities of an FtM stream, each holder with its occupancies as dated titles."""
    entities: dict[str, Entity] = {}
    posts: dict[str, tuple[str, ...]] = {}  # Position id → its names
    occupancies: list[_Occupancy] = []
    for n, obj in json_lines(path):
        report.lines += 1
        if isinstance(obj, str):
            report.skip(f"malformed line: {obj}", f"line {n}")
            continue
        try:
            proxy = model.get_proxy(_used(obj), cleaned=False)
        except (InvalidData, TypeError, ValueError, AttributeError) as e:
            report.skip(f"not an FtM entity ({str(e).splitlines()[0][:60]})", f"line {n}")
            continue
        if not proxy.id:
            report.skip("FtM entity without an id", f"line {n}")
            continue
        schema = proxy.schema.name
        if schema == "Occupancy":
            occ = _occupancy(proxy, f"line {n}", report)
            if occ:
                occupancies.append(occ)
        elif schema == "Position":
            names = _names(proxy)
            if names:
                posts[proxy.id] = names
            else:
                report.skip("Position without a name", proxy.id)
        elif schema in SCHEMA_TYPES:
            ent = _entity(proxy)
            if ent is None:
                report.skip(f"{schema} without a name", proxy.id)
            else:
                entities[ent.id] = ent
        else:
            report.skip(f"schema {schema} is not imported", f"line {n}")
    return _with_titles(entities, posts, occupancies, report)


def _used(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with only the properties read here: FtM cleans each value by its type, and streams carry
    long ones (notes, addresses, source texts) that would cost most of the time."""
    props = obj.get("properties")
    if not isinstance(props, dict):
        return obj
    return {**obj, "properties": {k: v for k, v in props.items() if k in USED_PROPS}}


def _names(proxy: EntityProxy) -> tuple[str, ...]:
    names = [v.strip() for p in NAME_PROPS if p in proxy.schema.properties for v in proxy.get(p)]
    return tuple(dict.fromkeys(v for v in names if v))


def _entity(proxy: EntityProxy) -> Entity | None:
    names = _names(proxy)
    if not names:
        return None
    name = proxy.caption if proxy.caption in names else names[0]
    desc = next(iter(proxy.get("description") or proxy.get("summary")), None)
    qid = next(iter(proxy.get("wikidataId")), None)
    return Entity(id=proxy.id, name=name, type=SCHEMA_TYPES[proxy.schema.name],
                  aliases=tuple(n for n in names if n != name), wikidata=qid, description=desc)


def _occupancy(proxy: EntityProxy, where: str, report: ImportReport) -> _Occupancy | None:
    holder, post = proxy.first("holder"), proxy.first("post")
    if not holder or not post:
        report.skip("Occupancy without a holder or a post", where)
        return None
    starts, ends = sorted(proxy.get("startDate")), sorted(proxy.get("endDate"))
    start = starts[0][:10] if starts else None
    end = ends[-1][:10] if ends else None
    return _Occupancy(holder, post, start, end, where)


def _with_titles(
    entities: dict[str, Entity], posts: dict[str, tuple[str, ...]], occupancies: list[_Occupancy],
    report: ImportReport,
) -> Iterator[Entity]:
    """Entities with their occupancies as titles, each dropped as it is handed on."""
    titles: dict[str, list[Title]] = {}
    used: set[str] = set()
    for occ in occupancies:
        if occ.post not in posts:
            report.skip("Position missing from the file", f"{occ.post} ({occ.where})")
            continue
        if occ.holder not in entities:
            report.skip("Occupancy holder missing from the file", f"{occ.holder} ({occ.where})")
            continue
        used.add(occ.post)
        titles.setdefault(occ.holder, []).extend(Title(t, occ.start, occ.end) for t in posts[occ.post])
    occupancies.clear()
    report.positions = len(used)
    for eid in sorted(entities):
        ent = entities.pop(eid)
        held = tuple(dict.fromkeys(titles.pop(eid, ())))
        report.titles += len(held)
        yield replace(ent, titles=held) if held else ent
