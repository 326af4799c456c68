"""Backbones against the baseline column (random init, or a backbone named as the baseline) on the tasks whose
spec asks for it (the classification tasks): the pipeline's sanity check. The baseline is found by the explicit
``baseline`` field of its results, never by its label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transfer.registry import TaskSpec, all_tasks
from transfer.report.aggregate import TaskAggregate
from transfer.report.tables import Table

def baseline_label(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> str | None:
    """The first backbone whose results are all marked as a baseline (``TaskResult.baseline``), else None."""
    return next((label for label, aggregates in aggregates_by_label.items()
                 if aggregates and all(aggregate.baseline for aggregate in aggregates)), None)


def _headline(aggregates: Sequence[TaskAggregate], tasks: Mapping[str, TaskSpec]) -> dict[tuple[str, str], float]:
    values = {}
    for aggregate in aggregates:
        spec = tasks.get(aggregate.task)
        if spec is not None and spec.compared_with_baseline and spec.headline_metric in aggregate.metrics:
            values.setdefault((aggregate.task, aggregate.dataset), aggregate.metrics[spec.headline_metric].mean)
    return values


def compare_with_random_init(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> list[dict[str, Any]]:
    """One entry per (backbone, task, dataset) both it and the random-init baseline ran: values, difference, beats."""
    reference = baseline_label(aggregates_by_label)
    if reference is None:
        return []
    tasks = all_tasks()
    baseline = _headline(aggregates_by_label[reference], tasks)
    entries = []
    for label, aggregates in aggregates_by_label.items():
        if label == reference or all(aggregate.baseline for aggregate in aggregates):
            continue
        for (task, dataset), value in sorted(_headline(aggregates, tasks).items()):
            if (task, dataset) not in baseline:
                continue
            baseline_value = baseline[(task, dataset)]
            entries.append({"backbone": label, "baseline": reference, "task": task, "dataset": dataset,
                            "metric": tasks[task].headline_metric, "value": value, "baseline_value": baseline_value,
                            "difference": value - baseline_value, "beats_baseline": value > baseline_value})
    return entries


def comparison_table(entries: Sequence[Mapping[str, Any]]) -> Table | None:
    """The comparison as a report table (None when there is no baseline or nothing to compare)."""
    if not entries:
        return None
    rows = [[entry["backbone"], f"{entry['task']} ({entry['dataset']})", entry["metric"], f"{entry['value']:.1f}",
             f"{entry['baseline_value']:.1f}", f"{entry['difference']:+.1f}",
             "yes" if entry["beats_baseline"] else "NO"] for entry in entries]
    baseline = entries[0]["baseline"]
    return Table(key="random_init_comparison", title=f"Pretrained vs {baseline} (classification tasks)",
                 headers=["Backbone", "Task", "Metric", "Backbone value", f"{baseline} value", "Difference",
                          "Beats baseline"], rows=rows,
                 notes=["Means over trials; a pretrained backbone is expected to beat the random-init baseline."])
