"""Turns detectron2's evaluation output into the project's results JSON (``core.results.TaskResult``).

Pure data mapping (no detectron2 import). The task is the registered one (``transfer.registry``) whose detectron2
runner evaluates that kind of test set with or without masks; its metric names come from its spec: ``box_X`` and
plain ``X`` are detectron2's ``bbox/X``, ``mask_X`` its ``segm/X``; its runner's ``per_class`` names the per-class
groups, e.g. VOC ``{"bbox": {"AP", "AP50", "AP75", "AP50-<class>"}}`` -> task ``voc0712_detection`` with metrics
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
from transfer.registry import TaskSpec, all_tasks

logger = logging.getLogger(__name__)

ENGINE = "detectron2"
# results metric prefix -> detectron2 result group
METRIC_GROUPS = {"box_": "bbox", "mask_": "segm", "": "bbox"}
_BUILTIN_NAME = re.compile(r"(voc|coco)_(\d{4})_([a-z]+)")


def task_for(evaluator_type: str, mask_on: bool) -> TaskSpec:
    """The registered task whose detectron2 runner evaluates ``evaluator_type`` (``pascal_voc``, ``coco``) test
    sets with masks on or off."""
    matches = [spec for spec in all_tasks().values() if ENGINE in spec.runners
               and (spec.runners[ENGINE].evaluator, spec.runners[ENGINE].mask_on) == (evaluator_type, mask_on)]
    if len(matches) != 1:
        raise ValueError(f"{len(matches)} registered tasks evaluate {evaluator_type!r} test sets with MODEL.MASK_ON "
                         f"{mask_on}; pass the task by name (--task)")
    return matches[0]


def detectron2_metric(name: str) -> tuple[str, str]:
    """``(group, metric)`` of detectron2's results holding the results metric ``name`` (``mask_AP`` -> segm/AP)."""
    prefix = next(prefix for prefix in METRIC_GROUPS if name.startswith(prefix))
    return METRIC_GROUPS[prefix], name.removeprefix(prefix)


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


def metrics_and_per_class(spec: TaskSpec, results: Mapping[str, Mapping[str, float]]
                          ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Headline metrics and per-class values of ``spec``'s task from detectron2's ``{group: {metric: value}}``."""
    metrics = {}
    for key in spec.metrics:
        group, metric = detectron2_metric(key)
        if metric not in results.get(group, {}):
            raise ValueError(f"detectron2 results lack {group}/{metric} needed for {spec.name}.{key}; "
                             f"got groups {sorted(results)}")
        value = _finite(key, results[group][metric])
        if value is not None:
            metrics[key] = value
    per_class = {}
    for key, group, prefix in spec.runners[ENGINE].per_class:
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


def build_task_result(*, spec: TaskSpec, dataset_name: str, split: str | None,
                      weights: str, results: Mapping[str, Mapping[str, float]], config: dict[str, Any],
                      seed: int | None, wall_time_s: float, output_dir: str | Path, processes: int = 1,
                      arch: str = "resnet50", baseline: bool = False) -> TaskResult:
    """The ``TaskResult`` of one detectron2 evaluation of ``dataset_name`` for ``spec``'s task."""
    metrics, per_class = metrics_and_per_class(spec, results)
    dataset, split = dataset_and_split(dataset_name, split)
    weights_sha256 = file_sha256(weights) if weights and Path(weights).is_file() else None
    curve = loss_curve(output_dir)
    return TaskResult(task=spec.name, dataset=dataset, split=split, weights=weights, weights_sha256=weights_sha256,
                      engine=ENGINE, metrics=metrics, per_class=per_class,
                      curves={"loss": curve} if curve else {}, config=config, seed=seed, wall_time_s=wall_time_s,
                      protocol=protocol_facts(config, processes, arch), baseline=baseline)
