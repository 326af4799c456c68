"""The ``stats.jsonl`` training log: one JSON object per line, written by pretraining, read by the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATS_FILE = "stats.jsonl"


class StatsError(ValueError):
    """A stats line is not a JSON object; the message names the file and the line."""


def numbered_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of every non-blank line of a ``stats.jsonl`` file (an absent file has none)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise StatsError(f"{path}:{line_number}: not valid JSON: {error}") from error
        if not isinstance(record, dict):
            raise StatsError(f"{path}:{line_number}: each line must be a JSON object")
        records.append((line_number, record))
    return records


def read_stats(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``stats.jsonl`` file, in order."""
    return [record for _, record in numbered_records(path)]
