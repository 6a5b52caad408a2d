"""The entity registry: canonical entities plus curation decisions, in one human-editable JSONL file.

Each line is either an entity::

    {"id": "sergei-lavrov", "name": "Sergei Lavrov", "type": "person", "aliases": ["Sergey Lavrov"],
     "titles": ["Russian foreign minister"], "wikidata": null, "description": "..."}

or a curation decision, applied in file order on load so that it survives rebuilds::

    {"decision": "merge", "from": "local:person:s-lavrov", "into": "sergei-lavrov"}
    {"decision": "reject", "id": "local:org:getty-images"}
    {"decision": "reject", "surface": "Rules Out"}
    {"decision": "rename", "id": "sergei-lavrov", "name": "Sergey Lavrov"}
    {"decision": "split", "id": "sergei-lavrov", "alias": "Lavrov Jr", "new_id": "local:person:lavrov-jr"}

Decisions may name ids that are not registry entities (``local:`` clusters found at build time): those are
kept as redirects / rejections / renames that the linker applies to the clusters it creates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from index.errors import NotFound, PersonaeError
from index.linking.names import normalize_name, slugify
from index.records import ENTITY_TYPES, OTHER, Entity, Title

DECISIONS = ("merge", "reject", "rename", "split")

# ---------------------------------------------------------------- registry
class Registry:
    """Canonical entities and curation decisions. Construct with :meth:`load` (or empty: ``Registry()``)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._raw: list[dict[str, Any]] = []  # entity lines as written (before decisions)
        self._decisions: list[dict[str, Any]] = []
        self.entities: dict[str, Entity] = {}
        self.redirects: dict[str, str] = {}
        self.rejected_ids: set[str] = set()
        self.rejected_surfaces: set[str] = set()  # normalised
        self.renames: dict[str, str] = {}  # for ids that are not (yet) registry entities

    # ------------------------------------------------------------ io
    @classmethod
    def load(cls, path: str | Path) -> Registry:
        """Read and validate ``path``; a missing file is an empty registry (it is created on first edit)."""
        reg = cls(path)
        p = Path(path)
        if not p.exists():
            return reg
        seen_ids: dict[str, int] = {}
        for n, line in _numbered_lines(p):
            where = f"{p}:{n}"
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                raise PersonaeError(f"{where}: invalid JSON ({e.msg})") from None
            if not isinstance(data, dict):
                raise PersonaeError(f"{where}: expected a JSON object")
            if "decision" in data:
                reg._check_decision(data, where)
                reg._decisions.append(data)
                continue
            ent = _entity_from(data, where)
            if ent.id in seen_ids:
                raise PersonaeError(
                    f"{where}: duplicate entity id {ent.id!r} (first on line {seen_ids[ent.id]})"
                )
            seen_ids[ent.id] = n
            reg._raw.append(data)
        line_of = list(seen_ids.values())
        reg._rebuild(where_of=lambda i: f"{p}:{line_of[i]}")
        return reg

    def save(self, path: str | Path | None = None) -> Path:
        """Write entities (sorted by id) then decisions (in the order they were made)."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise PersonaeError("registry has no path to save to")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:  # line by line: no second copy of a large registry
            for r in sorted(self._raw, key=lambda r: r["id"]):
                f.write(json.dumps(_clean(r), ensure_ascii=False) + "\n")
            for d in self._decisions:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
        tmp.replace(target)
        return target

    def _rebuild(self, where_of: Any = None) -> None:
        self.entities = {}
        self.redirects, self.rejected_ids, self.rejected_surfaces, self.renames = {}, set(), set(), {}
        for i, r in enumerate(self._raw):
            self.entities[r["id"]] = _entity_from(r, where_of(i) if where_of else r["id"])
        for d in self._decisions:
            self._apply(d)
    @staticmethod
    def _check_decision(d: dict[str, Any], where: str) -> None:
        kind = d.get("decision")
        need = {"merge": ("from", "into"), "reject": (), "rename": ("id", "name"), "split": ("id", "alias")}
        if kind not in need:
            raise PersonaeError(f"{where}: unknown decision {kind!r}; expected one of {', '.join(DECISIONS)}")
        missing = [k for k in need[kind] if not d.get(k)]
        if kind == "reject" and not (d.get("id") or d.get("surface")):
            missing = ["id or surface"]
        if missing:
            raise PersonaeError(f"{where}: {kind} decision lacks {', '.join(missing)}")

    def _apply(self, d: dict[str, Any]) -> None:
        kind = d["decision"]
        if kind == "merge":
            src, dst = self.resolve(d["from"]), self.resolve(d["into"])
            if src == dst:
                return
            if src in self.entities and dst in self.entities:
                a, b = self.entities.pop(src), self.entities[dst]
                extra = [x for x in (a.name, *a.aliases) if x not in b.aliases and x != b.name]
                self.entities[dst] = replace(
                    b,
                    aliases=b.aliases + tuple(extra),
                    titles=b.titles + tuple(t for t in a.titles if t not in b.titles),
                )
            elif (
                src in self.entities
            ):  # merging a registry entity into a local cluster: keep the registry one
                self.entities.pop(src)
            self.redirects[src] = dst
            for k, v in list(self.redirects.items()):
                if v == src:
                    self.redirects[k] = dst
        elif kind == "reject":
            if d.get("id"):
                self.rejected_ids.add(d["id"])
                self.entities.pop(d["id"], None)
            if d.get("surface"):
                self.rejected_surfaces.add(normalize_name(d["surface"]))
        elif kind == "rename":
            eid = self.resolve(d["id"])
            if eid in self.entities:
                ent = self.entities[eid]
                aliases = ent.aliases if ent.name in ent.aliases else ent.aliases + (ent.name,)
                self.entities[eid] = replace(
                    ent, name=d["name"], aliases=tuple(a for a in aliases if a != d["name"])
                )
            else:
                self.renames[eid] = d["name"]
        elif kind == "split":
            eid = self.resolve(d["id"])
            if eid not in self.entities:
                raise PersonaeError(f"split: unknown entity {d['id']!r}")
            ent = self.entities[eid]
            alias = d["alias"]
            na = normalize_name(alias)
            kept = tuple(a for a in ent.aliases if normalize_name(a) != na)
            if len(kept) == len(ent.aliases):
                raise PersonaeError(f"split: {alias!r} is not an alias of {eid!r}")
            new_id = d.get("new_id") or f"local:{ent.type}:{slugify(alias)}"
            self.entities[eid] = replace(ent, aliases=kept)
            self.entities[new_id] = Entity(id=new_id, name=alias, type=ent.type)

    # ------------------------------------------------------------ lookups
    def resolve(self, eid: str) -> str:
        """Follow merge redirects (cycle-safe)."""
        seen = set()
        while eid in self.redirects and eid not in seen:
            seen.add(eid)
            eid = self.redirects[eid]
        return eid

    def __len__(self) -> int:
        return len(self.entities)

    def __contains__(self, eid: object) -> bool:
        return eid in self.entities

    def get(self, eid: str) -> Entity | None:
        return self.entities.get(self.resolve(eid))

    # ------------------------------------------------------------ curation (used by `personae entities ...`)
    def list(self, type: str | None = None) -> list[Entity]:
        return [e for _, e in sorted(self.entities.items()) if type is None or e.type == type]

    def show(self, eid: str) -> Entity:
        ent = self.get(eid)
        if ent is None:
            raise NotFound(f"unknown entity {eid!r}")
        return ent

    def add(self, entity: Entity) -> None:
        """Add a new entity line (validated like the file)."""
        if entity.id in self.entities or any(r["id"] == entity.id for r in self._raw):
            raise PersonaeError(f"duplicate entity id {entity.id!r}")
        self._raw.append(_clean(entity.to_dict()))
        try:
            self._rebuild()
        except PersonaeError:
            self._raw.pop()
            self._rebuild()
            raise
        self._persist()

    def merge(self, a: str, b: str) -> None:
        """Merge entity ``a`` into ``b`` (``b`` keeps its id; ``a``'s names become aliases)."""
        if self.get(b) is None and not b.startswith("local:"):
            raise NotFound(f"unknown merge target {b!r}: use a registry id or a local: id from the index")
        self._decide({"decision": "merge", "from": a, "into": b})

    def split(self, eid: str, alias: str, new_id: str | None = None) -> str:
        """Move ``alias`` off ``eid`` into a new entity; returns the new id."""
        d: dict[str, Any] = {"decision": "split", "id": eid, "alias": alias}
        if new_id:
            d["new_id"] = new_id
        else:
            ent = self.show(eid)
            d["new_id"] = f"local:{ent.type}:{slugify(alias)}"
        self._decide(d)
        return d["new_id"]

    def rename(self, eid: str, new_name: str) -> None:
        self._decide({"decision": "rename", "id": eid, "name": new_name})

    def reject(self, id_or_surface: str) -> None:
        """Reject an entity id (known or ``local:``) or, failing that, a surface string never to be linked."""
        if id_or_surface in self.entities or id_or_surface.startswith("local:"):
            self._decide({"decision": "reject", "id": id_or_surface})
        else:
            self._decide({"decision": "reject", "surface": id_or_surface})

    # ------------------------------------------------------------ bulk (knowledge-base and judgement imports)
    @property
    def decisions(self) -> list[dict[str, Any]]:
        """The curation decisions, in the order they were made (copies)."""
        return [dict(d) for d in self._decisions]

    def upsert(self, entities: Iterable[Entity]) -> Upserted:
        """Add entities, or merge each into the registry entity with its id (else its Wikidata id), in one
        write. Merging fills what is missing and unions aliases and titles; a value that differs is kept as
        it is and reported in ``Upserted.conflicts`` (an imported name that differs becomes an alias)."""
        out = Upserted()
        raw_before = list(self._raw)  # merged lines replace old ones, never mutate them: a shallow copy
        by_id = {r["id"]: i for i, r in enumerate(self._raw)}
        by_qid = {r["wikidata"]: r["id"] for r in self._raw if r.get("wikidata")}
        for ent in entities:
            target = ent.id if ent.id in by_id else by_qid.get(ent.wikidata or "")
            if target is None:
                by_id[ent.id] = len(self._raw)
                self._raw.append(_clean(ent.to_dict()))
                if ent.wikidata:
                    by_qid.setdefault(ent.wikidata, ent.id)
                out.added.append(ent.id)
                continue
            before = _clean(self._raw[by_id[target]])
            merged, conflicts = _merge_raw(before, ent)
            self._raw[by_id[target]] = merged
            (out.updated if merged != before else out.unchanged).append(target)
            out.conflicts.extend(conflicts)
        try:
            self._rebuild()
        except PersonaeError:
            self._raw = raw_before
            self._rebuild()
            raise
        if out.added or out.updated:
            self._persist()
        return out

    def add_decisions(self, decisions: Iterable[dict[str, Any]]) -> AddedDecisions:
        """Append decisions in one write. One already made (an identical line) is not repeated; one that
        does not apply to this registry (a split of an entity it lacks, a malformed one) is left out and
        reported, the rest still added."""
        out = AddedDecisions()
        seen = {json.dumps(d, sort_keys=True) for d in self._decisions}
        for d in decisions:
            key = json.dumps(d, sort_keys=True)
            if key in seen:
                out.present += 1
                continue
            try:
                self._check_decision(d, "decision")
                self._apply(dict(d))
            except PersonaeError as err:
                out.failed.append(str(err))
                self._rebuild()  # _apply may have changed state before it raised
                continue
            seen.add(key)
            self._decisions.append(dict(d))
            out.added += 1
        self._rebuild()
        if out.added:
            self._persist()
        return out

    def _decide(self, d: dict[str, Any]) -> None:
        self._check_decision(d, "decision")
        before = (list(self._decisions), dict(self.entities))
        self._decisions.append(d)
        try:
            self._rebuild()
        except PersonaeError:
            self._decisions = before[0]
            self._rebuild()
            raise
        self._persist(append=d)

    def _persist(self, append: dict[str, Any] | None = None) -> None:
        if self.path is None:
            return
        if append is not None and self.path.exists():
            with self.path.open("a", encoding="utf-8") as f:
                text = self.path.read_text(encoding="utf-8")
                if text and not text.endswith("\n"):
                    f.write("\n")
                f.write(json.dumps(append, ensure_ascii=False) + "\n")
        else:
            self.save()


@dataclass
class Upserted:
    """What :meth:`Registry.upsert` did, by entity id; ``conflicts`` are one-line messages."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


@dataclass
class AddedDecisions:
    """What :meth:`Registry.add_decisions` did; ``failed`` are one-line reasons."""

    added: int = 0
    present: int = 0
    failed: list[str] = field(default_factory=list)


def _merge_raw(old: dict[str, Any], new: Entity) -> tuple[dict[str, Any], list[str]]:
    """``old`` (a registry line) with what ``new`` adds; values that differ stay as they were, reported."""
    out, conflicts = dict(old), []
    eid = old["id"]
    if new.name != old["name"]:
        conflicts.append(f"{eid}: name: kept {old['name']!r}, {new.name!r} added as an alias")
    for key in ("type", "wikidata", "description"):
        value, have = getattr(new, key), old.get(key)
        if value in (None, "") or value == have:
            continue
        if have in (None, ""):
            out[key] = value
        else:
            conflicts.append(f"{eid}: {key}: kept {have!r}, file has {value!r}")
    aliases = list(old.get("aliases") or [])
    for a in (new.name, *new.aliases):
        if a != old["name"] and a not in aliases:
            aliases.append(a)
    if aliases or "aliases" in old:
        out["aliases"] = aliases
    titles = [_title_json(t) for t in old.get("titles") or []]
    have_titles = {json.dumps(t, sort_keys=True) for t in titles}
    for t in new.titles:
        if json.dumps(t.to_json(), sort_keys=True) not in have_titles:
            titles.append(t.to_json())
    if titles or "titles" in old:
        out["titles"] = titles
    return _clean(out), conflicts


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines of ``path`` one at a time (a registry imported from a knowledge base is large), split on
    newlines only: JSON strings may hold U+2028 and other characters ``str.splitlines`` would split on."""
    with path.open(encoding="utf-8", newline="") as f:
        for n, line in enumerate(f, 1):
            yield n, line.rstrip("\r\n")


def _clean(r: dict[str, Any]) -> dict[str, Any]:
    order = ("id", "name", "type", "aliases", "titles", "wikidata", "description")
    out = {k: (list(r[k]) if isinstance(r.get(k), tuple) else r.get(k)) for k in order if k in r}
    if out.get("titles"):
        out["titles"] = [_title_json(t) for t in out["titles"]]
    out.update({k: v for k, v in r.items() if k not in out})
    return out


def _title_json(t: Any) -> Any:
    if isinstance(t, Title):
        return t.to_json()
    if isinstance(t, dict) and "start" in t and "from" not in t:  # Title.to_dict() from Registry.add
        return Title(t["title"], t.get("start"), t.get("end")).to_json()
    return t


_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?")


def _entity_from(data: dict[str, Any], where: str) -> Entity:
    eid, name = data.get("id"), data.get("name")
    if not isinstance(eid, str) or not eid.strip():
        raise PersonaeError(f"{where}: entity lacks a string 'id'")
    if not isinstance(name, str) or not name.strip():
        raise PersonaeError(f"{where}: entity {eid!r} lacks a 'name'")
    etype = data.get("type", OTHER)
    if etype not in ENTITY_TYPES:
        raise PersonaeError(
            f"{where}: entity {eid!r} has type {etype!r}; expected one of {', '.join(ENTITY_TYPES)}"
        )
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(x, str) for x in aliases):
        raise PersonaeError(f"{where}: entity {eid!r}: 'aliases' must be a list of strings")
    return Entity(
        id=eid,
        name=name,
        type=etype,
        aliases=tuple(aliases),
        wikidata=data.get("wikidata"),
        description=data.get("description"),
        titles=_titles_from(data.get("titles", []), f"{where}: entity {eid!r}"),
    )


def _titles_from(raw: Any, where: str) -> tuple[Title, ...]:
    """Registry titles: plain strings (undated) or ``{"title", "from", "to"}`` with ISO dates or null."""
    if not isinstance(raw, list):
        raise PersonaeError(f"{where}: 'titles' must be a list")
    out = []
    for t in raw:
        if isinstance(t, str):
            out.append(Title(t))
            continue
        if not isinstance(t, dict) or not isinstance(t.get("title"), str) or not t["title"].strip():
            raise PersonaeError(f"{where}: a title is a string or {{\"title\", \"from\", \"to\"}}, got {t!r}")
        for k in ("from", "to"):
            v = t.get(k)
            if v is not None and not (isinstance(v, str) and _ISO_DATE.match(v)):
                raise PersonaeError(
                    f"{where}: title {t['title']!r}: {k!r} must be an ISO date or null, got {v!r}"
                )
        out.append(Title(t["title"], t.get("from"), t.get("to")))
    return tuple(out)


__all__ = ["AddedDecisions", "Registry", "DECISIONS", "Upserted"]
