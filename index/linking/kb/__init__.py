"""Knowledge bases into the registry: Wikidata JSON dumps and FollowTheMoney entity streams.

``import_file(path, registry)`` reads the file once, turns its items into :class:`~index.records.Entity`
records with dated titles, and merges them into the registry in one write (:meth:`Registry.upsert`: an
entity already there is merged by id or Wikidata id; differing values are kept and reported). Re-importing
the same file changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from index.errors import PersonaeError
from index.linking.kb.report import ImportReport
from index.linking.kb.source import first_object
from index.linking.registry import Registry
from index.records import ENTITY_TYPES, Entity

FORMATS = ("wikidata", "ftm")


def _reader(fmt: str) -> Callable[[Path, ImportReport], Iterator[Entity]]:
    if fmt == "wikidata":
        from index.linking.kb.wikidata import read_wikidata

        return read_wikidata
    from index.linking.kb.ftm import read_ftm  # followthemoney loads its model: only when needed

    return read_ftm


def detect_format(path: str | Path) -> str:
    """``ftm`` when the first object has a ``schema``, ``wikidata`` when it has ``claims`` or ``labels``."""
    obj = first_object(path)
    if obj is not None and "schema" in obj:
        return "ftm"
    if obj is not None and ("claims" in obj or "labels" in obj or obj.get("type") == "item"):
        return "wikidata"
    raise PersonaeError(
        f"{path}: cannot tell whether this is a Wikidata dump or an FtM stream; pass --format"
    )


def import_file(
    path: str | Path, registry: Registry, fmt: str | None = None, types: Iterable[str] | None = None
) -> ImportReport:
    """Import ``path`` (format ``wikidata`` or ``ftm``; detected when None) into ``registry``; with
    ``types``, only entities of those types (a full Wikidata dump is mostly "other": articles, taxa …)."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise PersonaeError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    wanted = set(types) if types else set(ENTITY_TYPES)
    if wanted - set(ENTITY_TYPES):
        raise PersonaeError(f"unknown entity type(s) {', '.join(sorted(wanted - set(ENTITY_TYPES)))}; "
                            f"expected {', '.join(ENTITY_TYPES)}")
    report = ImportReport(str(path), fmt)
    report.record(registry.upsert(_selected(_reader(fmt)(Path(path), report), wanted, report)))
    return report


def _selected(entities: Iterable[Entity], types: set[str], report: ImportReport) -> Iterator[Entity]:
    for ent in entities:
        if ent.type not in types:
            report.skip(f"type {ent.type} not selected", ent.id)
            continue
        report.types[ent.type] += 1
        yield ent


__all__ = ["FORMATS", "ImportReport", "detect_format", "import_file"]
