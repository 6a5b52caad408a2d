"""What an import did: counts, and the reasons for every line or title it could not use."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from index.linking.registry import Upserted

EXAMPLES = 3  # kept per skip reason (counts are always complete)
CONFLICTS_SHOWN = 20


@dataclass
class ImportReport:
    """Counts of one knowledge-base import; ``skipped`` counts each reason, ``examples`` keeps the first
    few places it happened (line numbers, ids), so a large file's report stays small."""

    file: str
    format: str
    lines: int = 0
    types: Counter[str] = field(default_factory=Counter)
    titles: int = 0
    positions: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    conflict_count: int = 0

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES:
            shown.append(where)

    def record(self, up: Upserted) -> None:
        self.added, self.updated, self.unchanged = len(up.added), len(up.updated), len(up.unchanged)
        self.conflict_count = len(up.conflicts)
        self.conflicts = up.conflicts[:CONFLICTS_SHOWN]

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {t}" for t, n in sorted(self.types.items())) or "none"
        lines = [
            f"{self.file} ({self.format}): {self.lines} lines read; entities: {kinds}",
            f"  {self.added} added, {self.updated} updated, {self.unchanged} unchanged; "
            f"{self.titles} titles from {self.positions} positions",
        ]
        for reason, n in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  skipped {n}: {reason} (e.g. {', '.join(self.examples.get(reason, []))})")
        if self.conflict_count:
            lines.append(f"  {self.conflict_count} conflicts (registry values kept):")
            lines += [f"    {c}" for c in self.conflicts]
            if self.conflict_count > len(self.conflicts):
                lines.append(f"    … and {self.conflict_count - len(self.conflicts)} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file, "format": self.format, "lines": self.lines, "types": dict(self.types),
            "titles": self.titles, "positions": self.positions, "added": self.added,
            "updated": self.updated, "unchanged": self.unchanged, "skipped": dict(self.skipped),
            "examples": self.examples, "conflicts": self.conflicts, "conflict_count": self.conflict_count,
        }
