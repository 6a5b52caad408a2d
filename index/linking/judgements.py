"""Curation decisions as nomenklatura judgements, so a newsroom can exchange them with that stack.

nomenklatura's resolver (``Resolver.dump`` / ``Resolver.load``) keeps one judgement per line, a JSON array
``[target, source, judgement, score, user, created_at]`` (an optional seventh element is ``deleted_at``),
where ``judgement`` is ``positive`` / ``negative`` / ``unsure`` / ``no_judgement`` and ``target`` is the
larger id of the pair by nomenklatura's order (a Wikidata QID over an ``NK-`` id over any other id, then by
text). Registry decisions map onto it as:

=========================  ==========================================================================
merge A into B             positive (A, B)
split alias off E into N   negative (E, N)
reject id X                negative (X, ``personae:rejected``)
reject surface S           negative (``personae:surface:S``, ``personae:rejected``)
rename E to "name"         unsure (E, ``personae:renamed``)
=========================  ==========================================================================

Each exported line carries the decision itself as an eighth element ``{"personae": {...}}`` (after a null
``deleted_at``): nomenklatura reads only the first seven, and Personae gets back exactly what was decided
(which side of a merge keeps its id, the alias a split moved, the new name). Lines without it, such as
nomenklatura's own files, are read by their judgement: positive pairs are grouped into clusters and each
cluster merged into one id (a registry entity if it has one, else the largest id by nomenklatura's order;
nomenklatura's own ``NK-`` ids only join clusters); a negative pair the registry keeps apart already is
satisfied, one it merges is reported as a conflict; unsure and no_judgement lines change nothing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.errors import PersonaeError
from index.groups import connected_groups
from index.linking.names import slugify
from index.linking.registry import Registry

JUDGEMENTS = ("positive", "negative", "unsure", "no_judgement")
REJECTED, RENAMED, SURFACE = "personae:rejected", "personae:renamed", "personae:surface:"
_QID = re.compile(r"^Q[1-9]\d*$")


def _weight(eid: str) -> int:
    """nomenklatura's ``Identifier.weight``: which id of a pair is the canonical ``target``."""
    return 3 if _QID.match(eid) else 2 if eid.startswith("NK-") else 1


def pair(a: str, b: str) -> tuple[str, str]:
    """``(target, source)`` as nomenklatura orders a pair."""
    if a == b:
        raise PersonaeError(f"a judgement needs two different ids, got {a!r} twice")
    return max((a, b), key=lambda x: (_weight(x), x)), min((a, b), key=lambda x: (_weight(x), x))


# ---------------------------------------------------------------- export
def judgement_of(d: dict[str, Any], registry: Registry) -> tuple[str, str, str]:
    """``(left id, right id, judgement)`` for one registry decision."""
    kind = d["decision"]
    if kind == "merge":
        return d["from"], d["into"], "positive"
    if kind == "split":
        ent = registry.get(d["id"])
        new_id = d.get("new_id") or f"local:{ent.type if ent else 'other'}:{slugify(d['alias'])}"
        return d["id"], new_id, "negative"
    if kind == "reject":
        return (d["id"] if d.get("id") else SURFACE + d["surface"]), REJECTED, "negative"
    return d["id"], RENAMED, "unsure"  # rename


def export_judgements(registry: Registry, path: str | Path, user: str = "personae") -> int:
    """Write the registry's decisions to ``path`` in nomenklatura's line format; returns how many."""
    created = datetime.now(UTC).isoformat()[:28]
    lines = []
    for d in registry.decisions:
        left, right, judgement = judgement_of(d, registry)
        target, source = pair(left, right)
        lines.append(json.dumps([target, source, judgement, None, user, created, None, {"personae": d}],
                                ensure_ascii=False))
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


# ---------------------------------------------------------------- import
@dataclass
class JudgementReport:
    lines: int = 0
    decisions: int = 0  # new decisions written to the registry
    present: int = 0  # decisions the registry already had
    satisfied: int = 0  # negative judgements the registry already keeps apart
    skipped: Counter[str] = field(default_factory=Counter)
    conflicts: list[str] = field(default_factory=list)

    def summary(self, path: str | Path) -> str:
        out = [f"{path}: {self.lines} judgements read; {self.decisions} decisions added, {self.present} "
               f"already in the registry, {self.satisfied} negative judgements already kept apart"]
        out += [f"  skipped {n}: {why}" for why, n in sorted(self.skipped.items())]
        out += [f"  conflict: {c}" for c in self.conflicts]
        return "\n".join(out)


def import_judgements(registry: Registry, path: str | Path) -> JudgementReport:
    """Read a judgement file into ``registry``'s decisions (one write; identical decisions not repeated)."""
    report = JudgementReport()
    decisions: list[dict[str, Any]] = []
    positives: list[tuple[str, str]] = []
    negatives: list[tuple[str, str]] = []
    p = Path(path)
    if not p.is_file():
        raise PersonaeError(f"{p}: no such file")
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            report.lines += 1
            row = _row(line, n, report)
            if row is None:
                continue
            target, source, judgement, extra = row
            if extra is not None:
                decisions.append(extra)
            elif judgement == "positive":
                positives.append((target, source))
            elif judgement == "negative":
                negatives.append((target, source))
            else:
                report.skipped[f"{judgement} judgement: nothing to apply"] += 1
    decisions += _merges(positives, registry)
    added = registry.add_decisions(decisions)
    report.decisions, report.present = added.added, added.present
    for why in added.failed:
        report.skipped[f"decision does not apply to this registry ({why})"] += 1
    for a, b in negatives:
        if registry.resolve(a) == registry.resolve(b):
            report.conflicts.append(f"negative judgement between {a} and {b}, but the registry merges them "
                                    "(the merge is kept; split or undo it by hand)")
        else:
            report.satisfied += 1
    return report


def _row(line: str, n: int, report: JudgementReport) -> tuple[str, str, str, dict[str, Any] | None] | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        report.skipped["malformed line (not JSON)"] += 1
        return None
    if (not isinstance(data, list) or len(data) < 3 or not all(isinstance(x, str) and x for x in data[:2])
            or data[2] not in JUDGEMENTS):
        report.skipped["malformed line (not [target, source, judgement, …])"] += 1
        return None
    if len(data) > 6 and data[6]:
        report.skipped["deleted judgement"] += 1
        return None
    extra = data[7].get("personae") if len(data) > 7 and isinstance(data[7], dict) else None
    if extra is not None:
        try:
            Registry._check_decision(extra, f"line {n}")
        except PersonaeError as e:
            report.skipped[f"bad Personae decision ({e})"] += 1
            return None
    elif data[0].startswith("personae:") or data[1].startswith("personae:"):
        report.skipped["Personae pseudo-id without its decision"] += 1
        return None
    return data[0], data[1], data[2], extra


def _merges(positives: list[tuple[str, str]], registry: Registry) -> list[dict[str, Any]]:
    """Positive pairs → clusters (union-find) → one merge per member into the cluster's kept id."""
    out = []
    for members in connected_groups(positives):
        ids = [m for m in members if not m.startswith("NK-")]
        if len(ids) < 2:
            continue
        keep = max(ids, key=lambda m: (m in registry.entities, _weight(m), m))
        out += [{"decision": "merge", "from": m, "into": keep} for m in ids if m != keep]
    return out


__all__ = ["export_judgements", "import_judgements", "JudgementReport", "pair"]
