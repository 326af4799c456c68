"""Which tables the report shows, built from the task registry: the paper's Tables 1-4 (columns from each task's
``PaperEntry``, in the published table's order), and one table per task that reports into no paper table (with
the number a peer library publishes for it, when the task cites one)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from core.results import TaskResult
from transfer.published import published_results
from transfer.registry import CitedResult, TaskSpec

# Published methods shown in the main table; the paper's other methods go to a secondary table.
MAIN_PUBLISHED_METHODS = ("Supervised", "Barlow Twins")
# The paper's tables in report order, with their titles and notes (the layout of the paper, not task data).
PAPER_TABLES: dict[str, tuple[str, str]] = {
    "transfer_classification": ("Transfer: classification (frozen features; paper Table 3)", ""),
    "transfer_detection": ("Transfer: detection and instance segmentation (fine-tuned; paper Table 4)",
                           "VOC07+12: Faster R-CNN, AP on VOC2007 test; COCO: Mask R-CNN (box and mask AP on "
                           "val2017)."),
    "imagenet_linear": ("ImageNet linear evaluation (paper Table 1)", ""),
    "imagenet_semi_supervised": ("ImageNet semi-supervised fine-tuning (paper Table 2)", ""),
}
ENGINE_MODELS = {"detectron2": "R50-C4", "torchvision": "R50-FPN"}
PUBLISHED_ENGINE = "detectron2 R50-C4 (paper)"


@dataclasses.dataclass(frozen=True)
class Column:
    """One numeric column: ``metric`` of ``task``; ``published_metric`` for the paper rows."""

    header: str
    task: str
    metric: str
    published_metric: str | None = None


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A report table: its columns, the published table its paper rows come from, and its row layout."""

    key: str
    title: str
    columns: tuple[Column, ...]
    published_table: str | None = None
    engine_rows: bool = False  # one row per (backbone, engine) with an "Engine" column
    note: str = ""
    cited: CitedResult | None = None  # a peer library's number shown (when comparable) as the reference row

    @property
    def tasks(self) -> set[str]:
        return {column.task for column in self.columns}


def paper_table_specs(tasks: Mapping[str, TaskSpec]) -> list[TableSpec]:
    """One spec per paper table that some registered task reports into; columns in the published order."""
    specs = []
    for table, (title, note) in PAPER_TABLES.items():
        entries = {column.published_metric: (spec, column) for spec in tasks.values() if spec.paper
                   and spec.paper.table == table for column in spec.paper.columns}
        columns = tuple(Column(entries[metric][1].header, entries[metric][0].name, entries[metric][1].metric, metric)
                        for metric in published_results()[table]["metric"] if metric in entries)
        if columns:
            detection = any(len(tasks[column.task].engines) > 1 for column in columns)
            specs.append(TableSpec(key=table, title=title, columns=columns, published_table=table,
                                   engine_rows=detection, note=note))
    return specs


def task_table_spec(spec: TaskSpec, metrics: Sequence[str]) -> TableSpec:
    """The table of a task that reports into no paper table: its metrics (those the results have) as columns."""
    columns = tuple(Column(metric, spec.name, metric, metric if spec.cited else None) for metric in metrics)
    return TableSpec(key=spec.name, title=f"{spec.name}: {spec.description}", columns=columns,
                     engine_rows=len(spec.engines) > 1, cited=spec.cited)


def detection_model(engine: str, results: Sequence[TaskResult]) -> str:
    """"R50-C4", "R18-FPN", ... from the protocol facts or the resolved config the results carry."""
    for result in results:
        model = result.protocol.get("model")
        if isinstance(model, str) and model:
            return model.split(" ")[-1]
    config = results[0].config if results else {}
    if engine == "detectron2" and isinstance(config.get("MODEL"), dict):
        depth = config["MODEL"].get("RESNETS", {}).get("DEPTH", 50)
        backbone = str(config["MODEL"].get("BACKBONE", {}).get("NAME", ""))
        return f"R{depth}-{'FPN' if 'fpn' in backbone.lower() else 'C4'}"
    if engine == "torchvision" and isinstance(config.get("model"), dict) and "arch" in config["model"]:
        return f"R{str(config['model']['arch']).removeprefix('resnet')}-FPN"
    return ENGINE_MODELS.get(engine, "")


def engine_description(engine: str | None, results: Sequence[TaskResult] = ()) -> str:
    """How a detection engine's results are labelled ("—" when the result names none)."""
    if not engine:
        return "—"
    model = detection_model(engine, results)
    return f"{engine} {model}".strip()
