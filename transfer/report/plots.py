"""The report's PNG plots (matplotlib, no pyplot state): per-class AP bars, pretraining and training curves."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from transfer.registry import all_tasks
from transfer.report.aggregate import TaskAggregate
from transfer.report.errors import ReportError
from transfer.report.pretrain_stats import PretrainCurves

CURVE_TITLES = {"loss": "training loss"}
DPI = 100


@dataclasses.dataclass(frozen=True)
class Plot:
    """A written PNG and the title it is shown under."""

    title: str
    path: Path


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    # No "Software" entry: the same inputs give byte-identical files.
    figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def per_class_chart(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]], task: str, key: str, title: str,
                    path: Path) -> Plot | None:
    """Grouped bars (one colour per backbone) of ``per_class[key]`` of ``task``, averaged over trials."""
    series: dict[str, dict[str, float]] = {}
    for label, aggregates in aggregates_by_label.items():
        for aggregate in aggregates:
            if aggregate.task == task and (values := aggregate.mean_per_class(key)):
                series.setdefault(label, values)
    if not series:
        return None
    classes = list(dict.fromkeys(name for values in series.values() for name in values))
    figure = Figure(figsize=(max(6.0, 0.45 * len(classes) * max(1, len(series) / 2)), 4.0))
    axes = figure.subplots()
    width = 0.8 / len(series)
    for index, (label, values) in enumerate(series.items()):
        positions = [position + (index - (len(series) - 1) / 2) * width for position in range(len(classes))]
        axes.bar(positions, [values.get(name, math.nan) for name in classes], width=width, label=label)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_ylabel(f"{key.upper()} (%)")
    axes.set_title(title)
    axes.legend(fontsize="small")
    return Plot(title=title, path=_save(figure, path))


def _line_plot(series: Mapping[str, Sequence[tuple[float, float]]], title: str, x_label: str, y_label: str,
               path: Path) -> Plot:
    figure = Figure(figsize=(7.0, 4.0))
    axes = figure.subplots()
    for name, points in series.items():
        axes.plot([x for x, _ in points], [y for _, y in points], label=name,
                  marker="o" if len(points) < 20 else None)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return Plot(title=title, path=_save(figure, path))


def pretraining_plots(curves_by_label: Mapping[str, PretrainCurves], plots_dir: Path) -> list[Plot]:
    """Pretraining loss vs step, and kNN and online-probe top-1 (one plot) where the stats have them."""
    plots = []
    losses = {label: curves.loss for label, curves in curves_by_label.items() if curves.loss}
    if losses:
        plots.append(_line_plot(losses, "Pretraining loss", "step", "Barlow Twins loss",
                                plots_dir / "pretrain_loss.png"))
    monitors = {f"{label} {name}" if curves.probe_top1 else label: points
                 for label, curves in curves_by_label.items()
                 for name, points in (("kNN", curves.knn_top1), ("linear probe", curves.probe_top1)) if points}
    if monitors:
        axes = sorted({curves.knn_axis for curves in curves_by_label.values() if curves.knn_top1 or curves.probe_top1})
        title = "Pretraining kNN top-1" + (" and online linear probe" if any(
            curves.probe_top1 for curves in curves_by_label.values()) else "")
        plots.append(_line_plot(monitors, title, " / ".join(axes), "top-1 (%)", plots_dir / "pretrain_knn.png"))
    return plots


def _points(points: Sequence[Sequence[float]], where: str) -> list[tuple[float, float]]:
    try:
        return [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError) as error:
        raise ReportError(f"curve {where}: points must be [x, y] number pairs ({error})") from error


def training_curve_plots(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]], plots_dir: Path) -> list[Plot]:
    """One plot per (task, curve) over every backbone, engine and trial that logged it (e.g. detection loss)."""
    series: dict[tuple[str, str], dict[str, list[tuple[float, float]]]] = {}
    for label, aggregates in aggregates_by_label.items():
        for aggregate in aggregates:
            for result in aggregate.results:
                for curve, points in sorted(result.curves.items()):
                    name = label + (f" [{aggregate.engine}]" if aggregate.engine else "")
                    name += f" seed {result.seed}" if len(aggregate.results) > 1 else ""
                    where = f"{label}/{aggregate.task}/{curve}"
                    series.setdefault((aggregate.task, curve), {})[name] = _points(points, where)
    plots = []
    for (task, curve), lines in sorted(series.items()):
        title = f"{task}: {CURVE_TITLES.get(curve, curve)}"
        plots.append(_line_plot(lines, title, "iteration", curve, plots_dir / f"curves_{_safe_name(task)}_"
                                                                            f"{_safe_name(curve)}.png"))
    return plots


def make_plots(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]],
               curves_by_label: Mapping[str, PretrainCurves], plots_dir: Path) -> list[Plot]:
    """Every plot of the report, written under ``plots_dir``."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    per_class_charts = {(task, key): title for task, spec in all_tasks().items() for key, title in spec.per_class.items()}
    for (task, key), title in per_class_charts.items():
        path = plots_dir / f"per_class_{_safe_name(task)}_{_safe_name(key)}.png"
        if (plot := per_class_chart(aggregates_by_label, task, key, title, path)) is not None:
            plots.append(plot)
    plots += pretraining_plots(curves_by_label, plots_dir)
    plots += training_curve_plots(aggregates_by_label, plots_dir)
    return plots
