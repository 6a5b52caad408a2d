"""Files shared between builds: a base layer and a few delta layers, hard-linked, compacted now and then.

The store (``store-<gen>.sqlite``), the detector output (``mentions-<gen>.jsonl``) and the linking state
(``linking-<gen>.pkl``) of a build are each a list of layer files. A layer is written once, by the build
that made it, and never changed afterwards; the next build hard-links the layers it still uses into its own
folder (same name, same inode, no bytes copied) and writes what changed into one new layer. Rows of a
shared layer that the new build no longer uses (a document changed or deleted) stay there, unread.

``keep_layers`` is the one compaction policy for all three: it bounds the dead rows a build carries, the
layers a read has to look into, and the share of rows outside the base.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

BASE_LIVE = 0.75  # share the base layer while at least this share of its rows is still used
MAX_DELTAS = 4  # delta layers kept at most after a build (a read looks into each one)
DELTA_SHARE = 0.25  # rows outside the base layer, as a share of all rows used, before a new base


def keep_layers(written: Sequence[int], live: Sequence[int], total: int) -> list[int]:
    """Which of the previous build's layers (0 = base) the new build shares: ``written`` rows each holds,
    ``live`` of them the new build still uses, ``total`` rows it uses in all (the rest go into its new
    layer). An empty list: write everything into a new base (there was none, the base is too dead, or too
    much lives outside it).

    The delta layers still in use are all kept while they are fewer than ``MAX_DELTAS`` (the new layer
    makes one more); else none is, and their live rows are written again into the new layer (a merge that
    costs the deltas' size, not the corpus').
    """
    if not written or live[0] < BASE_LIVE * written[0] or total - live[0] > DELTA_SHARE * total:
        return []
    deltas = [i for i in range(1, len(written)) if live[i]]
    return [0] + (deltas if len(deltas) < MAX_DELTAS else [])


def layer_name(stem: str, generation: int, suffix: str) -> str:
    return f"{stem}-{generation:06d}{suffix}"


def _layer_pattern(stem: str, suffix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(stem)}-(\d{{6}}){re.escape(suffix)}")


def layer_files(folder: Path, stem: str, suffix: str) -> list[Path]:
    """The ``stem`` layers in ``folder``, oldest generation first."""
    pattern = _layer_pattern(stem, suffix)
    found = [(int(m.group(1)), p) for p in Path(folder).glob(f"{stem}-*{suffix}")
             if (m := pattern.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def next_generation(names: Sequence[str], stem: str, suffix: str) -> int:
    """One more than the highest generation among the layer file ``names``."""
    pattern = _layer_pattern(stem, suffix)
    return 1 + max((int(m.group(1)) for n in names if (m := pattern.fullmatch(n))), default=0)


def match_base(base_ids: Sequence[str], base_keys: Sequence[str], ids: Sequence[str],
               keys: Sequence[str]) -> tuple[set[int], list[int]]:
    """A new build's rows (``ids`` with their content ``keys``) against a shared base's: the base rows it
    keeps as they are (same id, same key; each at most once), and the positions of its rows the base does
    not hold as they are now (to be written into the delta)."""
    at = {pid: row for row, pid in enumerate(base_ids)}
    kept: set[int] = set()
    fresh: list[int] = []
    for i, (pid, key) in enumerate(zip(ids, keys, strict=True)):
        row = at.get(pid, -1)
        if row >= 0 and row not in kept and base_keys[row] == key:
            kept.add(row)
        else:
            fresh.append(i)
    return kept, fresh


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (one inode: shared between builds, never written again); a copy
    where the file system has no hard links (the build is then correct, only bigger). Other errors (a full
    disk, a missing file) are raised."""
    try:
        os.link(source, target)
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        shutil.copy2(source, target)


def share(source: Path, folder: Path) -> Path:
    """Hard-link the layer ``source`` into ``folder`` under its own name (the new build's copy of it)."""
    target = Path(folder) / Path(source).name
    link_or_copy(source, target)
    return target
