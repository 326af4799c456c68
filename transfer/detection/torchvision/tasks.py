"""Python entry point of the detection transfer tasks, for the evaluation suite.

A task name picks a protocol config from ``configs/torchvision_detection/``; the caller supplies the
backbone weights, the dataset root (``VOCdevkit`` for VOC, the ``coco`` directory for COCO) and the
output directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from core.config import resolve_config_file, shipped_config_dir
from transfer.detection import UnsupportedBackboneError  # noqa: F401  (raised by both engines; the suite skips)
from transfer.detection.torchvision.config import load_detection_config
from transfer.detection.torchvision.train import train_and_evaluate
from core.results import TaskResult

CONFIG_DIR = shipped_config_dir(__file__)

# task -> (protocol config, overrides that specialise it)
TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "voc0712_detection": ("voc0712_faster_rcnn_R50_FPN.yaml", ()),
    "coco_instance_segmentation": ("coco_mask_rcnn_R50_FPN_1x.yaml", ()),
    "coco_detection": ("coco_mask_rcnn_R50_FPN_1x.yaml", ("task=coco_detection", "model.meta_arch=faster_rcnn")),
}


def run_detection(task: str, weights: str | None, data_root: str, output_dir: str, random_init: bool = False,
                  overrides: Sequence[str] = (), seed: int = 0, config_file: str | None = None,
                  arch: str | None = None, baseline: bool = False) -> TaskResult:
    """Fine-tunes ``weights`` on ``task`` and returns (and writes ``output_dir/results.json``) its result.

    ``overrides`` are config overrides applied last: ``key=value`` for torchvision (e.g.
    ``solver.max_iter=100``), detectron2 ``KEY VALUE`` items for detectron2 (``SOLVER.MAX_ITER``, ``100``).
    ``config_file`` replaces the task's protocol config; ``arch`` is the torchvision ResNet of ``weights``
    (``None``: the config's for torchvision, resnet50 for detectron2). detectron2 runs in this process
    (``transfer.detection.detectron2.train_net.run_detection``).
    """
    if task not in TASKS:
        raise ValueError(f"unknown detection task '{task}'; known: {', '.join(TASKS)}")
    config_name, task_overrides = TASKS[task]
    config = load_detection_config(resolve_config_file(config_file, CONFIG_DIR) if config_file is not None else CONFIG_DIR / config_name, [
        *task_overrides, f"data.root={json.dumps(str(data_root))}", f"output_dir={json.dumps(str(output_dir))}",
        f"seed={seed}", f"model.random_init={str(random_init).lower()}", f"baseline={str(baseline).lower()}",
        *([f"model.weights={json.dumps(str(weights))}"] if weights is not None else []),
        *([f"model.arch={arch}"] if arch is not None else []), *overrides])
    result = train_and_evaluate(config)
    if result is None:
        raise RuntimeError("run_detection returns results on the main process only; launch it without torchrun "
                           "or read OUTPUT_DIR/results.json")
    return result
