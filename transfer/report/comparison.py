"""Pretrained backbones against the random-init baseline on the classification tasks (the pipeline's sanity check)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transfer.report.aggregate import TaskAggregate
from transfer.report.tables import Table

# Headline metric (higher is better) of each frozen-feature classification task.
CLASSIFICATION_METRICS = {
    "voc07_svm": "mAP",
    "coco14_svm": "mAP",
    "places205_linear": "top1",
    "places365_linear": "top1",
    "inat18_linear": "top1",
    "imagenet_linear": "top1",
    "imagenet_semisup_1pct": "top1",
    "imagenet_semisup_10pct": "top1",
    "knn": "top1",
}


def random_init_label(labels: Sequence[str]) -> str | None:
    """The baseline's label: the first one mentioning "random" (e.g. "random init"), else None."""
    return next((label for label in labels if "random" in label.lower()), None)


def _headline(aggregates: Sequence[TaskAggregate]) -> dict[tuple[str, str], float]:
    values = {}
    for aggregate in aggregates:
        metric = CLASSIFICATION_METRICS.get(aggregate.task)
        if metric in aggregate.metrics:
            values.setdefault((aggregate.task, aggregate.dataset), aggregate.metrics[metric].mean)
    return values


def compare_with_random_init(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> list[dict[str, Any]]:
    """One entry per (backbone, task, dataset) both it and the random-init baseline ran: values, difference, beats."""
    baseline_label = random_init_label(list(aggregates_by_label))
    if baseline_label is None:
        return []
    baseline = _headline(aggregates_by_label[baseline_label])
    entries = []
    for label, aggregates in aggregates_by_label.items():
        if label == baseline_label:
            continue
        for (task, dataset), value in sorted(_headline(aggregates).items()):
            if (task, dataset) not in baseline:
                continue
            reference = baseline[(task, dataset)]
            entries.append({"backbone": label, "baseline": baseline_label, "task": task, "dataset": dataset,
                            "metric": CLASSIFICATION_METRICS[task], "value": value, "baseline_value": reference,
                            "difference": value - reference, "beats_baseline": value > reference})
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
