"""Which tables the report shows, laid out like the paper's Tables 1-4, and which task/metric fills each column."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

from transfer.report.aggregate import TaskAggregate
from core.results import TaskResult

# Published methods shown in the main table; the paper's other methods go to a secondary table.
MAIN_PUBLISHED_METHODS = ("Supervised", "Barlow Twins")
ENGINE_DESCRIPTIONS = {
    "detectron2": "detectron2 {model}",
    "torchvision": "torchvision {model} (not directly comparable with the paper's C4 numbers)",
}
DEFAULT_MODELS = {"detectron2": "R50-C4", "torchvision": "R50-FPN"}
PUBLISHED_ENGINE = "detectron2 R50-C4 (paper)"


@dataclasses.dataclass(frozen=True)
class Column:
    """One numeric column: the first of ``tasks`` that has ``metric`` fills it; ``published_metric`` for paper rows."""

    header: str
    tasks: tuple[str, ...]
    metric: str
    published_metric: str | None = None
    dataset: str | None = None  # only results on this dataset (kNN columns)
    optional: bool = False  # shown only when some backbone has it


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A report table: its columns, the published table its paper rows come from, and its row layout."""

    key: str
    title: str
    columns: tuple[Column, ...]
    published_table: str | None = None
    engine_rows: bool = False  # one row per (backbone, engine) with an "Engine" column
    always_shown: bool = False  # shown with "—" cells even when no backbone ran its tasks
    note: str = ""

    @property
    def tasks(self) -> set[str]:
        return {task for column in self.columns for task in column.tasks}


CLASSIFICATION = TableSpec(
    key="transfer_classification",
    title="Transfer: classification (frozen features; paper Table 3)",
    published_table="transfer_classification",
    always_shown=True,
    columns=(
        Column("Places205 top-1", ("places205_linear",), "top1", "places205_top1"),
        Column("VOC07 SVM mAP", ("voc07_svm",), "mAP", "voc07_svm_map"),
        Column("iNat18 top-1", ("inat18_linear",), "top1", "inat18_top1"),
        Column("Places365 top-1", ("places365_linear",), "top1", optional=True),
        Column("COCO14 SVM mAP", ("coco14_svm",), "mAP", optional=True),
    ),
)

_COCO_TASKS = ("coco_instance_segmentation", "coco_detection")
DETECTION = TableSpec(
    key="transfer_detection",
    title="Transfer: detection and instance segmentation (fine-tuned; paper Table 4)",
    published_table="transfer_detection",
    engine_rows=True,
    always_shown=True,
    note="VOC07+12: Faster R-CNN, AP on VOC2007 test; COCO: Mask R-CNN (box and mask AP on val2017).",
    columns=(
        Column("VOC07+12 AP", ("voc0712_detection",), "AP", "voc0712_AP"),
        Column("VOC07+12 AP50", ("voc0712_detection",), "AP50", "voc0712_AP50"),
        Column("VOC07+12 AP75", ("voc0712_detection",), "AP75", "voc0712_AP75"),
        Column("COCO box AP", _COCO_TASKS, "box_AP", "coco_box_AP"),
        Column("COCO box AP50", _COCO_TASKS, "box_AP50", "coco_box_AP50"),
        Column("COCO box AP75", _COCO_TASKS, "box_AP75", "coco_box_AP75"),
        Column("COCO mask AP", ("coco_instance_segmentation",), "mask_AP", "coco_mask_AP"),
        Column("COCO mask AP50", ("coco_instance_segmentation",), "mask_AP50", "coco_mask_AP50"),
        Column("COCO mask AP75", ("coco_instance_segmentation",), "mask_AP75", "coco_mask_AP75"),
    ),
)

IMAGENET_LINEAR = TableSpec(
    key="imagenet_linear",
    title="ImageNet linear evaluation (paper Table 1)",
    published_table="imagenet_linear",
    columns=(
        Column("top-1", ("imagenet_linear",), "top1", "top1"),
        Column("top-5", ("imagenet_linear",), "top5", "top5"),
    ),
)

SEMI_SUPERVISED = TableSpec(
    key="imagenet_semi_supervised",
    title="ImageNet semi-supervised fine-tuning (paper Table 2)",
    published_table="imagenet_semi_supervised",
    columns=(
        Column("1% top-1", ("imagenet_semisup_1pct",), "top1", "top1@1%"),
        Column("10% top-1", ("imagenet_semisup_10pct",), "top1", "top1@10%"),
        Column("1% top-5", ("imagenet_semisup_1pct",), "top5", "top5@1%"),
        Column("10% top-5", ("imagenet_semisup_10pct",), "top5", "top5@10%"),
    ),
)


def _knn_spec(aggregates: Sequence[TaskAggregate]) -> TableSpec:
    datasets = sorted({aggregate.dataset for aggregate in aggregates if aggregate.task == "knn"})
    columns = tuple(Column(f"kNN top-1 ({dataset})", ("knn",), "top1", dataset=dataset) for dataset in datasets)
    return TableSpec(key="knn", title="k-nearest-neighbour classification (frozen features)", columns=columns)


def _lowshot_k(metric: str) -> int | None:
    match = re.fullmatch(r"mAP@k?(\d+)", metric)
    return int(match.group(1)) if match else None


def _lowshot_spec(aggregates: Sequence[TaskAggregate]) -> TableSpec:
    metrics = {metric for aggregate in aggregates if aggregate.task == "voc07_lowshot_svm"
               for metric in aggregate.metrics if _lowshot_k(metric) is not None}
    columns = tuple(Column(f"k={_lowshot_k(metric)} mAP", ("voc07_lowshot_svm",), metric)
                    for metric in sorted(metrics, key=_lowshot_k))
    return TableSpec(key="voc07_lowshot_svm", title="Low-shot VOC07 SVM (mAP per k positive examples per class)",
                     note="Single runs show ± the spread over the sample draws reported by the task.",
                     columns=columns)


# Table builders in report order; each gets every backbone's aggregates (dynamic columns read them).
TABLE_BUILDERS: tuple[Callable[[Sequence[TaskAggregate]], TableSpec], ...] = (
    lambda aggregates: CLASSIFICATION,
    lambda aggregates: DETECTION,
    lambda aggregates: IMAGENET_LINEAR,
    lambda aggregates: SEMI_SUPERVISED,
    _knn_spec,
    _lowshot_spec,
)


def table_specs(aggregates: Sequence[TaskAggregate]) -> list[TableSpec]:
    """The table specs for these results, in report order."""
    return [builder(aggregates) for builder in TABLE_BUILDERS]


def detection_model(engine: str, results: Sequence[TaskResult]) -> str:
    """"R50-C4", "R18-FPN", ... from the resolved config the results carry (the engine's default otherwise)."""
    config = results[0].config if results else {}
    if engine == "detectron2" and isinstance(config.get("MODEL"), dict):
        depth = config["MODEL"].get("RESNETS", {}).get("DEPTH", 50)
        backbone = str(config["MODEL"].get("BACKBONE", {}).get("NAME", ""))
        return f"R{depth}-{'FPN' if 'fpn' in backbone.lower() else 'C4'}"
    if engine == "torchvision" and isinstance(config.get("model"), dict) and "arch" in config["model"]:
        return f"R{str(config['model']['arch']).removeprefix('resnet')}-FPN"
    return DEFAULT_MODELS.get(engine, "")


def engine_description(engine: str | None, results: Sequence[TaskResult] = ()) -> str:
    """How a detection engine's results are labelled ("—" when the result names none)."""
    if not engine:
        return "—"
    if engine not in ENGINE_DESCRIPTIONS:
        return engine
    return ENGINE_DESCRIPTIONS[engine].format(model=detection_model(engine, results))
