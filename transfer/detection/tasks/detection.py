"""VOC07+12 detection and COCO detection / instance segmentation, fine-tuned end to end (paper Table 4).

The paper's protocol (App. C.2, following MoCo): detectron2 R50-C4 with SyncBN, batch 16 over 8 GPUs;
VOC07+12 Faster R-CNN for 24k iterations at LR 0.1; COCO Mask R-CNN on the 1x schedule (90k iterations) at
LR 0.03. The torchvision engine (R50-FPN) runs the same tasks where detectron2 is not installed; its numbers
are reported apart, as not the paper's protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from core.results import TaskResult
from transfer.catalog import COCO2017, VOC2007, VOC2012
from transfer.detection.engines import DETECTRON2, TORCHVISION
from transfer.protocol import Protocol
from transfer.registry import PaperColumn, PaperEntry, TaskRun, TaskSpec, register_task

_C4_SOURCE = "paper App. C.2 (following MoCo's detectron2 setup), Table 4"


def run_with_detectron2(spec: TaskSpec, run: TaskRun) -> TaskResult:
    """detectron2 in this process (``transfer.detection.detectron2.train_net.run_detection``)."""
    from transfer.detection.detectron2.train_net import run_detection

    return run_detection(spec.name, run.weights, str(run.data_root), str(run.output_dir),
                         random_init=run.weights is None, overrides=run.overrides, seed=run.seed or 0,
                         config_file=run.config_file, arch=run.arch, baseline=run.baseline)


def run_with_torchvision(spec: TaskSpec, run: TaskRun) -> TaskResult:
    """The torchvision engine in this process (``transfer.detection.torchvision.tasks.run_detection``)."""
    from transfer.detection.torchvision.tasks import run_detection

    return run_detection(spec.name, run.weights, str(run.data_root), str(run.output_dir),
                         random_init=run.weights is None, overrides=run.overrides, seed=run.seed or 0,
                         config_file=run.config_file, arch=run.arch, baseline=run.baseline)


RUNNERS = {DETECTRON2: run_with_detectron2, TORCHVISION: run_with_torchvision}


def _voc_devkit(found: Mapping[str, Path]) -> Path:
    return found["voc2007"].parent


def _same_devkit(found: Mapping[str, Path]) -> str | None:
    if found["voc2007"].parent != found["voc2012"].parent:
        return (f"VOC2007 ({found['voc2007']}) and VOC2012 ({found['voc2012']}) must sit in the same VOCdevkit "
                "folder")
    return None


register_task(TaskSpec(
    name="voc0712_detection",
    description="VOC07+12 Faster R-CNN: train on VOC2007+2012 trainval, AP on VOC2007 test",
    datasets=(VOC2007, VOC2012),
    metrics=("AP", "AP50", "AP75"),
    runners=RUNNERS,
    protocol=Protocol({"arch": "resnet50", "model": "Faster R-CNN R50-C4", "norm": "SyncBN", "total_batch": 16,
                       "iterations": 24000, "base_lr": 0.1}, _C4_SOURCE),
    paper=PaperEntry("transfer_detection", tuple(PaperColumn(f"VOC07+12 {metric}", metric, f"voc0712_{metric}")
                                                 for metric in ("AP", "AP50", "AP75"))),
    per_class={"ap50": "VOC07+12 detection: AP50 per class"},
    stochastic=True,
    data_root=_voc_devkit,
    check_data=_same_devkit,
))

_COCO_BOX = tuple(PaperColumn(f"COCO box {metric}", f"box_{metric}", f"coco_box_{metric}")
                  for metric in ("AP", "AP50", "AP75"))
register_task(TaskSpec(
    name="coco_instance_segmentation",
    description="COCO Mask R-CNN 1x: train on train2017, box and mask AP on val2017",
    datasets=(COCO2017,),
    metrics=("box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75"),
    runners=RUNNERS,
    protocol=Protocol({"arch": "resnet50", "model": "Mask R-CNN R50-C4", "norm": "SyncBN", "total_batch": 16,
                       "iterations": 90000, "base_lr": 0.03}, _C4_SOURCE),
    paper=PaperEntry("transfer_detection", (*_COCO_BOX, *(
        PaperColumn(f"COCO mask {metric}", f"mask_{metric}", f"coco_mask_{metric}")
        for metric in ("AP", "AP50", "AP75")))),
    stochastic=True,
))

# Box AP of Faster R-CNN (no masks) differs from the paper's Mask R-CNN box AP: no paper column, its own table.
register_task(TaskSpec(
    name="coco_detection",
    description="COCO Faster R-CNN 1x (no masks): box AP on val2017; not a paper number",
    datasets=(COCO2017,),
    metrics=("box_AP", "box_AP50", "box_AP75"),
    runners=RUNNERS,
    protocol=Protocol({"arch": "resnet50", "model": "Faster R-CNN R50-C4", "norm": "SyncBN", "total_batch": 16,
                       "iterations": 90000, "base_lr": 0.03}, "the COCO 1x protocol of the paper without masks"),
    stochastic=True,
    default=False,
))
