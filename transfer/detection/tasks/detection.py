"""VOC07+12 detection and COCO detection / instance segmentation, fine-tuned end to end (paper Table 4).

The paper's protocol (App. C.2, following MoCo): detectron2 R50-C4 with SyncBN, batch 16 over 8 GPUs;
VOC07+12 Faster R-CNN for 24k iterations at LR 0.1; COCO Mask R-CNN on the 1x schedule (90k iterations) at
LR 0.03. The torchvision engine (R50-FPN) runs the same tasks where detectron2 is not installed; its numbers
are reported apart, as not the paper's protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from transfer.catalog import COCO2017, VOC2007, VOC2012
from transfer.detection.detectron2.runner import Detectron2Runner
from transfer.detection.detectron2.tasks import COCO_ROOT, VOC_ROOT, coco2017_datasets, voc0712_datasets
from transfer.detection.engines import DETECTRON2, TORCHVISION
from transfer.detection.torchvision.runner import TorchvisionRunner
from transfer.protocol import Protocol
from transfer.registry import PaperColumn, PaperEntry, TaskSpec, register_task

_C4_SOURCE = "paper App. C.2 (following MoCo's detectron2 setup), Table 4"
_VOC_PER_CLASS = (("ap50", "bbox", "AP50-"),)
_COCO_BOX_PER_CLASS = (("box_ap", "bbox", "AP-"),)
_COCO_CONFIG = "coco_mask_rcnn_R_50_C4_1x.yaml"
_COCO_TORCHVISION_CONFIG = "coco_mask_rcnn_R50_FPN_1x.yaml"


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
    runners={DETECTRON2: Detectron2Runner("voc0712_faster_rcnn_R_50_C4_24k.yaml", mask_on=False,
                                          datasets=voc0712_datasets, data_root=VOC_ROOT, evaluator="pascal_voc",
                                          per_class=_VOC_PER_CLASS),
             TORCHVISION: TorchvisionRunner("voc0712_faster_rcnn_R50_FPN.yaml")},
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
    runners={DETECTRON2: Detectron2Runner(_COCO_CONFIG, mask_on=True, datasets=coco2017_datasets, data_root=COCO_ROOT,
                                          evaluator="coco",
                                          per_class=(*_COCO_BOX_PER_CLASS, ("mask_ap", "segm", "AP-"))),
             TORCHVISION: TorchvisionRunner(_COCO_TORCHVISION_CONFIG)},
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
    runners={DETECTRON2: Detectron2Runner(_COCO_CONFIG, mask_on=False, datasets=coco2017_datasets,
                                          data_root=COCO_ROOT, evaluator="coco", per_class=_COCO_BOX_PER_CLASS),
             TORCHVISION: TorchvisionRunner(_COCO_TORCHVISION_CONFIG, overrides=("model.meta_arch=faster_rcnn",))},
    protocol=Protocol({"arch": "resnet50", "model": "Faster R-CNN R50-C4", "norm": "SyncBN", "total_batch": 16,
                       "iterations": 90000, "base_lr": 0.03}, "the COCO 1x protocol of the paper without masks"),
    stochastic=True,
    default=False,
))
