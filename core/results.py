"""The one results-JSON schema written by every evaluation task and read by the report.

One file per task run (``<output>/<task>/results.json`` by convention). ``metrics`` holds the
headline numbers (percent for AP/accuracy), ``per_class`` optional per-class values keyed by metric
(e.g. ``{"ap": {"aeroplane": 87.1, ...}}``), ``curves`` optional logged series for plots
(e.g. ``{"loss": [[iteration, value], ...]}``), ``protocol`` the values the run actually used after any rescaling
(processes, total batch, iterations, learning rate, feature dimension, image size, epochs, model: the vocabulary
of ``transfer.protocol.PROTOCOL_KEYS``), which the report compares with the task's protocol, and ``baseline``
whether the backbone is a reference column (random init, or a backbone named as the baseline).

Version 1 files (without ``protocol`` and ``baseline``) are still read; their numbers count as off-protocol.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from core.atomic import atomic_write_json

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


class ResultsError(ValueError):
    """A results file is missing, is not JSON, or does not follow the schema."""


@dataclasses.dataclass
class TaskResult:
    """Outcome of one evaluation task on one backbone."""

    task: str
    dataset: str
    split: str
    weights: str
    metrics: dict[str, float]
    weights_sha256: str | None = None
    engine: str | None = None
    layer: str | None = None
    per_class: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    curves: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    wall_time_s: float | None = None
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
    baseline: bool = False
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("task", "dataset", "split", "weights"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ResultsError(f"results field '{name}' must be a non-empty string")
        if not isinstance(self.metrics, dict) or not self.metrics:
            raise ResultsError(f"results of task '{self.task}' need at least one metric")
        for name, value in self.metrics.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ResultsError(f"metric '{name}' of task '{self.task}' must be a finite number, got {value!r}")
        if not isinstance(self.protocol, dict):
            raise ResultsError(f"results field 'protocol' of task '{self.task}' must be a mapping")
        if not isinstance(self.baseline, bool):
            raise ResultsError(f"results field 'baseline' of task '{self.task}' must be true or false")


def write_result(result: TaskResult, path: str | Path) -> None:
    """Writes ``result`` as JSON atomically."""
    atomic_write_json(path, dataclasses.asdict(result))


def read_result(path: str | Path) -> TaskResult:
    """Reads and validates a results file, naming the file and the field on error."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"results file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ResultsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ResultsError(f"{path} must hold a JSON object")
    if data.get("schema_version") not in READABLE_VERSIONS:
        raise ResultsError(f"{path}: schema_version {data.get('schema_version')!r}, expected one of "
                           f"{', '.join(map(str, READABLE_VERSIONS))}")
    known = {field.name for field in dataclasses.fields(TaskResult)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ResultsError(f"{path}: unknown field(s) {', '.join(unknown)}")
    try:
        return TaskResult(**data)
    except TypeError as error:
        raise ResultsError(f"{path}: {error}") from error
    except ResultsError as error:
        raise ResultsError(f"{path}: {error}") from error
