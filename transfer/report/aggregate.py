"""Groups one backbone's task results into trials of the same evaluation and computes mean/std/n per metric.

Several results of one task with the same dataset, split, engine, layer and protocol values are trials (different
seeds) of one evaluation; the report shows their mean ± sample standard deviation (ddof=1), as detection transfer
is reported in the field (MoCo, Barlow Twins: mean over several trials).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from core.results import TaskResult
from transfer.protocol import describe_differences, protocol_differences
from transfer.registry import all_tasks
from transfer.report.errors import ReportError

# A metric "<name>_std" next to "<name>" is the spread the task itself measured (e.g. low-shot SVMs over draws).
WITHIN_RUN_STD_SUFFIX = "_std"
@dataclasses.dataclass(frozen=True)
class MetricStat:
    """One metric over the trials: mean, sample std (None for a single trial), count, and the task's own spread."""

    mean: float
    std: float | None
    n: int
    within_run_std: float | None = None


@dataclasses.dataclass(frozen=True)
class TaskAggregate:
    """All trials of one evaluation (task, dataset, split, engine, layer, protocol values) of one backbone."""

    label: str
    task: str
    dataset: str
    split: str
    engine: str | None
    layer: str | None
    results: tuple[TaskResult, ...]
    metrics: dict[str, MetricStat]
    # "" when the trials used their task's protocol, else the differing values; None for an unregistered task
    gap: str | None = None

    @property
    def baseline(self) -> bool:
        """A reference column's results (random init, or a backbone named as the baseline)."""
        return any(result.baseline for result in self.results)

    @property
    def protocol_facts(self) -> dict[str, Any]:
        """The protocol values the trials used (trials are grouped by them, so they agree)."""
        return dict(self.results[0].protocol)

    @property
    def seeds(self) -> list[int | None]:
        return [result.seed for result in self.results]

    @property
    def weights(self) -> list[str]:
        return sorted({result.weights for result in self.results})

    @property
    def weights_sha256(self) -> list[str]:
        return sorted({result.weights_sha256 for result in self.results if result.weights_sha256})

    def mean_per_class(self, key: str) -> dict[str, float]:
        """Per-class values of ``key`` (e.g. "ap") averaged over the trials that report them."""
        values: dict[str, list[float]] = {}
        for result in self.results:
            for class_name, value in result.per_class.get(key, {}).items():
                values.setdefault(class_name, []).append(float(value))
        return {class_name: statistics.fmean(class_values) for class_name, class_values in values.items()}


def metric_stat(values: Sequence[float], within_run_stds: Sequence[float] = ()) -> MetricStat:
    """Mean, sample std (ddof=1; None for one value) and count of ``values``."""
    std = statistics.stdev(values) if len(values) > 1 else None
    within = statistics.fmean(within_run_stds) if within_run_stds else None
    return MetricStat(mean=statistics.fmean(values), std=std, n=len(values), within_run_std=within)


def _metric_stats(results: Sequence[TaskResult]) -> dict[str, MetricStat]:
    names = sorted({name for result in results for name in result.metrics})
    spreads = {name for name in names if name.endswith(WITHIN_RUN_STD_SUFFIX)
               and name[: -len(WITHIN_RUN_STD_SUFFIX)] in names}
    stats = {}
    for name in names:
        if name in spreads:
            continue
        values = [float(result.metrics[name]) for result in results if name in result.metrics]
        spread_name = name + WITHIN_RUN_STD_SUFFIX
        within = [float(result.metrics[spread_name]) for result in results if spread_name in result.metrics]
        stats[name] = metric_stat(values, within if spread_name in spreads else ())
    return stats


def _group_key(result: TaskResult) -> tuple[str, ...]:
    # Runs that used other protocol values (e.g. another number of GPUs) are separate evaluations, not trials.
    return (result.task, result.dataset, result.split, result.engine or "", result.layer or "",
            json.dumps(result.protocol, sort_keys=True, default=str))


def protocol_gap(result: TaskResult) -> str | None:
    """"" when ``result`` used its task's protocol, else the differing values; None for an unregistered task."""
    spec = all_tasks().get(result.task)
    if spec is None:
        return None
    return describe_differences(protocol_differences(result.protocol, spec.protocol))


def aggregate_results(label: str, results: Sequence[TaskResult]) -> list[TaskAggregate]:
    """The trials of ``label``'s results grouped per evaluation, sorted by task/dataset/split/engine/layer."""
    groups: dict[tuple[str, ...], list[TaskResult]] = {}
    for result in results:
        if not isinstance(result, TaskResult):
            raise ReportError(f"results of '{label}' must be TaskResult objects, got {type(result).__name__}")
        groups.setdefault(_group_key(result), []).append(result)
    aggregates = []
    for key in sorted(groups):
        trials = sorted(groups[key], key=lambda result: (result.seed is None, result.seed or 0))
        first = trials[0]
        aggregates.append(TaskAggregate(label=label, task=first.task, dataset=first.dataset, split=first.split,
                                        engine=first.engine, layer=first.layer, results=tuple(trials),
                                        metrics=_metric_stats(trials), gap=protocol_gap(first)))
    return aggregates


def aggregate_runs(runs: Mapping[str, Sequence[TaskResult]]) -> dict[str, list[TaskAggregate]]:
    """``aggregate_results`` for every backbone label, in the given label order."""
    if not runs:
        raise ReportError("no backbone results to report: 'runs' is empty")
    for label in runs:
        if not isinstance(label, str) or not label.strip():
            raise ReportError(f"backbone labels must be non-empty strings, got {label!r}")
    return {label: aggregate_results(label, results) for label, results in runs.items()}
