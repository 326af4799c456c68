"""Turns detectron2's evaluation output into the project's results JSON (``core.results.TaskResult``).

Pure data mapping (no detectron2 import): task names and metric keys follow the cross-stage contract,
e.g. VOC ``{"bbox": {"AP", "AP50", "AP75", "AP50-<class>"}}`` -> task ``voc0712_detection`` with metrics
``AP/AP50/AP75`` and ``per_class["ap50"]``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Mapping

from core.checkpoint import file_sha256
from core.results import TaskResult

logger = logging.getLogger(__name__)

ENGINE = "detectron2"
# task -> results JSON metric -> (detectron2 result group, detectron2 metric)
TASK_METRICS: dict[str, dict[str, tuple[str, str]]] = {
    "voc0712_detection": {"AP": ("bbox", "AP"), "AP50": ("bbox", "AP50"), "AP75": ("bbox", "AP75")},
    "coco_instance_segmentation": {
        **{f"box_{metric}": ("bbox", metric) for metric in ("AP", "AP50", "AP75")},
        **{f"mask_{metric}": ("segm", metric) for metric in ("AP", "AP50", "AP75")},
    },
    "coco_detection": {f"box_{metric}": ("bbox", metric) for metric in ("AP", "AP50", "AP75")},
}
# task -> per_class key -> (detectron2 result group, per-class metric prefix)
TASK_PER_CLASS: dict[str, dict[str, tuple[str, str]]] = {
    "voc0712_detection": {"ap50": ("bbox", "AP50-")},
    "coco_instance_segmentation": {"box_ap": ("bbox", "AP-"), "mask_ap": ("segm", "AP-")},
    "coco_detection": {"box_ap": ("bbox", "AP-")},
}
_BUILTIN_NAME = re.compile(r"(voc|coco)_(\d{4})_([a-z]+)")


def task_name(evaluator_type: str, mask_on: bool) -> str:
    """The results task of a test set evaluated by ``evaluator_type`` (``pascal_voc`` or ``coco``)."""
    if evaluator_type == "pascal_voc":
        return "voc0712_detection"
    if evaluator_type == "coco":
        return "coco_instance_segmentation" if mask_on else "coco_detection"
    raise ValueError(f"no results task for evaluator_type {evaluator_type!r}")


def dataset_and_split(dataset_name: str, split: str | None = None) -> tuple[str, str]:
    """``voc_2007_test`` -> (``voc2007``, ``test``), ``coco_2017_val`` -> (``coco2017``, ``val``).

    Other (user-registered) names are kept as the dataset, with ``split`` or ``test``.
    """
    match = _BUILTIN_NAME.fullmatch(dataset_name)
    if match:
        return f"{match.group(1)}{match.group(2)}", match.group(3)
    return dataset_name, split or "test"


def _finite(name: str, value: Any) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    logger.warning("detectron2 reported %s = %r (no detections?); left out of the results JSON", name, value)
    return None


def metrics_and_per_class(task: str, results: Mapping[str, Mapping[str, float]]
                          ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Headline metrics and per-class values of ``task`` from detectron2's ``{group: {metric: value}}``."""
    metrics = {}
    for key, (group, metric) in TASK_METRICS[task].items():
        if metric not in results.get(group, {}):
            raise ValueError(f"detectron2 results lack {group}/{metric} needed for {task}.{key}; "
                             f"got groups {sorted(results)}")
        value = _finite(key, results[group][metric])
        if value is not None:
            metrics[key] = value
    per_class = {}
    for key, (group, prefix) in TASK_PER_CLASS[task].items():
        values = {metric.removeprefix(prefix): _finite(f"{key}/{metric}", value)
                  for metric, value in results.get(group, {}).items() if metric.startswith(prefix)}
        if any(value is not None for value in values.values()):
            per_class[key] = {name: value for name, value in values.items() if value is not None}
    return metrics, per_class


def loss_curve(output_dir: str | Path) -> list[list[float]]:
    """``[[iteration, total_loss], ...]`` from detectron2's ``OUTPUT_DIR/metrics.json`` (one JSON object per line).

    detectron2 appends to that file, so a run that goes back in iterations (a rerun, or ``--resume`` from an
    earlier checkpoint) replaces the points it repeats.
    """
    path = Path(output_dir) / "metrics.json"
    if not path.is_file():
        return []
    curve = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interrupted run
        if "total_loss" in record and "iteration" in record:
            iteration = float(record["iteration"])
            while curve and curve[-1][0] >= iteration:
                curve.pop()
            curve.append([iteration, float(record["total_loss"])])
    return curve


def protocol_facts(config: Mapping[str, Any], processes: int, arch: str) -> dict[str, Any]:
    """The values a run trained with (``transfer.protocol``), from its config as run: detectron2 has already
    rescaled batch, learning rate and iterations from ``SOLVER.REFERENCE_WORLD_SIZE`` to ``processes``."""
    model, solver = config.get("MODEL", {}), config.get("SOLVER", {})
    detector = "Mask R-CNN" if model.get("MASK_ON") else "Faster R-CNN"
    neck = "FPN" if "fpn" in str(model.get("BACKBONE", {}).get("NAME", "")).lower() else "C4"
    depth = model.get("RESNETS", {}).get("DEPTH", 50)
    return {"arch": arch, "engine": ENGINE, "processes": processes, "model": f"{detector} R{depth}-{neck}",
            "norm": model.get("RESNETS", {}).get("NORM"), "total_batch": solver.get("IMS_PER_BATCH"),
            "iterations": solver.get("MAX_ITER"), "base_lr": solver.get("BASE_LR")}


def build_task_result(*, evaluator_type: str, mask_on: bool, dataset_name: str, split: str | None,
                      weights: str, results: Mapping[str, Mapping[str, float]], config: dict[str, Any],
                      seed: int | None, wall_time_s: float, output_dir: str | Path, processes: int = 1,
                      arch: str = "resnet50", baseline: bool = False) -> TaskResult:
    """The ``TaskResult`` of one detectron2 evaluation of ``dataset_name``."""
    task = task_name(evaluator_type, mask_on)
    metrics, per_class = metrics_and_per_class(task, results)
    dataset, split = dataset_and_split(dataset_name, split)
    weights_sha256 = file_sha256(weights) if weights and Path(weights).is_file() else None
    curve = loss_curve(output_dir)
    return TaskResult(task=task, dataset=dataset, split=split, weights=weights, weights_sha256=weights_sha256,
                      engine=ENGINE, metrics=metrics, per_class=per_class,
                      curves={"loss": curve} if curve else {}, config=config, seed=seed, wall_time_s=wall_time_s,
                      protocol=protocol_facts(config, processes, arch), baseline=baseline)
