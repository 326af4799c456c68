"""The machine-readable ``summary.json``: per backbone and task, mean/std/n of each metric and the run's provenance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transfer.published import published_results
from transfer.report.aggregate import TaskAggregate
from transfer.report.document import ReportDocument

SUMMARY_VERSION = 2


def task_key(aggregate: TaskAggregate, same_task: Sequence[TaskAggregate]) -> str:
    """The task name, qualified by dataset/split/engine/layer only when the backbone ran the task several ways."""
    parts = [f"{name}={getattr(aggregate, name) or ''}" for name in ("dataset", "split", "engine", "layer")
             if len({getattr(other, name) for other in same_task}) > 1]
    return aggregate.task + (f"[{','.join(parts)}]" if parts else "")


def _aggregate_summary(aggregate: TaskAggregate) -> dict[str, Any]:
    return {
        "task": aggregate.task, "dataset": aggregate.dataset, "split": aggregate.split,
        "engine": aggregate.engine, "layer": aggregate.layer, "n_trials": len(aggregate.results),
        "seeds": aggregate.seeds, "weights": aggregate.weights, "weights_sha256": aggregate.weights_sha256,
        "protocol_values": aggregate.protocol_facts,
        "paper_protocol": aggregate.gap == "", "differs_from_protocol": aggregate.gap or None,
        "baseline": aggregate.baseline,
        "metrics": {name: {"mean": stat.mean, "std": stat.std, "n": stat.n, "within_run_std": stat.within_run_std}
                    for name, stat in aggregate.metrics.items()},
    }


def build_summary(document: ReportDocument, aggregates_by_label: Mapping[str, Sequence[TaskAggregate]],
                  comparison: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary document (JSON-serialisable, deterministic apart from ``generated_at``)."""
    backbones = {}
    for label, aggregates in aggregates_by_label.items():
        tasks = {}
        for aggregate in aggregates:
            same_task = [other for other in aggregates if other.task == aggregate.task]
            tasks[task_key(aggregate, same_task)] = _aggregate_summary(aggregate)
        backbones[label] = {"tasks": tasks}
    published = {}
    for table in document.tables:
        if table.published_table:
            section = published_results()[table.published_table]
            published[table.key] = {"protocol": section.get("protocol"), "rows": table.published}
    return {
        "summary_version": SUMMARY_VERSION,
        "title": document.title,
        "generated_at": document.generated_at,
        "std": "sample standard deviation (ddof=1) over trials with different seeds; null for a single trial",
        "backbones": backbones,
        "published": {"source": document.published_source, "tables": published},
        "random_init_comparison": list(comparison),
        "skipped": dict(document.skipped),
        "plots": [document.plot_reference(plot) for plot in document.plots],
    }
