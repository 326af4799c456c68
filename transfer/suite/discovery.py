"""Which datasets exist under a data root, in the on-disk layouts the registered tasks declare.

Each dataset is found by the files its loader needs (not just a folder name), so a half-copied dataset is
reported as missing with the first entry that is absent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from transfer.registry import DatasetLayout


@dataclasses.dataclass(frozen=True)
class Discovery:
    """Outcome of looking for every dataset: the roots found and, for the others, why not."""

    found: dict[str, Path]
    missing: dict[str, str]


def find_dataset(data_root: Path, layout: DatasetLayout) -> tuple[Path | None, str]:
    """Returns ``(root, "")`` for a complete dataset, else ``(None, reason naming the absent path)``."""
    reasons = []
    for folder in layout.folders:
        candidate = data_root / folder
        if not candidate.is_dir():
            continue
        absent = [entry for entry in layout.required if not (candidate / entry).exists()]
        if not absent:
            return candidate, ""
        reasons.append(f"{candidate / absent[0]} is missing")
    if not reasons:
        tried = ", ".join(str(data_root / folder) for folder in layout.folders)
        reasons.append(f"none of {tried} exists")
    return None, "; ".join(reasons)


def discover(data_root: str | Path, layouts: Iterable[DatasetLayout]) -> Discovery:
    """Looks for every dataset of ``layouts`` (each name once) under ``data_root``."""
    data_root = Path(data_root)
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for layout in {layout.name: layout for layout in layouts}.values():
        root, reason = find_dataset(data_root, layout)
        if root is None:
            missing[layout.name] = reason
        else:
            found[layout.name] = root
    return Discovery(found=found, missing=missing)
