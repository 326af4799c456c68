"""Reads a pretraining ``stats.jsonl`` into the loss, kNN and online-probe curves the report plots."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from core.stats import StatsError, numbered_records
from transfer.report.errors import ReportError


@dataclasses.dataclass(frozen=True)
class PretrainCurves:
    """Loss per optimizer step, and kNN / online-probe top-1 per epoch (or per step where records carry no epoch)."""

    loss: list[tuple[float, float]]
    knn_top1: list[tuple[float, float]]
    knn_axis: str
    probe_top1: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # on knn_axis


def _number(record: dict[str, Any], key: str, where: str) -> float:
    value = record[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ReportError(f"{where}: '{key}' must be a number, got {value!r}")
    return float(value)


def read_pretrain_stats(path: str | Path) -> PretrainCurves:
    """Parses every JSON line of ``path``; errors name the file, the line and the key."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"pretraining stats file not found: {path}")
    try:
        records = [(f"{path}:{number}", record) for number, record in numbered_records(path)]
    except StatsError as error:
        raise ReportError(str(error)) from error
    loss = [(_number(record, "step", where), _number(record, "loss", where))
            for where, record in records if "loss" in record and "step" in record]
    monitor_records = [(where, record) for where, record in records
                       if record.get("knn_top1") is not None or record.get("probe_top1") is not None]
    knn_axis = "epoch" if monitor_records and all("epoch" in record for _, record in monitor_records) else "step"
    knn, probe = ([(_number(record, knn_axis, where), _number(record, key, where))
                   for where, record in monitor_records if knn_axis in record and record.get(key) is not None]
                  for key in ("knn_top1", "probe_top1"))
    return PretrainCurves(loss=loss, knn_top1=knn, knn_axis=knn_axis, probe_top1=probe)
