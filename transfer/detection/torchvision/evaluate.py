"""Inference over a test set (sharded over processes) and its COCO / VOC metrics.

Metric keys follow the results contract: VOC gives ``AP``/``AP50``/``AP75`` as detectron2's
``PascalVOCDetectionEvaluator`` defines them (see ``tv_voc_eval``) plus the pycocotools numbers of the
same detections as ``coco_AP``/``coco_AP50``/``coco_AP75``; COCO gives ``box_*`` (and ``mask_*`` for
Mask R-CNN) from pycocotools.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from transfer.detection.torchvision.coco_eval import coco_ap, coco_from_ground_truth, coco_results, encode_masks
from transfer.detection.torchvision.datasets import DetectionDataset
from core.distributed import DistributedContext, gather_to_all
from transfer.detection.torchvision.voc_eval import voc07_detection_ap

METRIC_DEFINITIONS = {
    "voc": "AP/AP50/AP75: detectron2 PascalVOCDetectionEvaluator (VOC2007 11-point AP, class mean, AP = mean "
           "over IoU 0.50:0.05:0.95, difficult ignored); coco_AP*: pycocotools on the same detections "
           "(difficult as crowd)",
    "coco": "box_AP*/mask_AP*: pycocotools COCOeval AP@[.50:.95], AP50, AP75",
}


def _single_image_batch(batch: list) -> tuple:
    return batch[0]


@torch.no_grad()
def predict(model: nn.Module, dataset: DetectionDataset, context: DistributedContext, amp: bool = False,
            num_workers: int = 0) -> list[dict]:
    """Detections of every test image (one image per forward pass), gathered on every process, in dataset order."""
    was_training = model.training
    model.eval()
    indices = list(range(context.rank, len(dataset), context.world_size))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=1,
                                         num_workers=num_workers, collate_fn=_single_image_batch)
    predictions = []
    progress = tqdm(zip(indices, loader), total=len(indices), desc="evaluate", disable=not context.is_main,
                    dynamic_ncols=True)
    for index, (image, _) in progress:
        with torch.autocast(context.device.type, enabled=amp and context.device.type == "cuda"):
            output = model([image.to(context.device)])[0]
        prediction = {"index": index, "image_id": dataset.records[index].image_id,
                      "boxes": output["boxes"].float().cpu().numpy(), "scores": output["scores"].float().cpu().numpy(),
                      "labels": output["labels"].cpu().numpy()}
        if "masks" in output:
            prediction["masks"] = encode_masks(output["masks"].float().cpu().numpy())
        predictions.append(prediction)
    model.train(was_training)
    return sorted(gather_to_all(context, predictions), key=lambda prediction: prediction["index"])


def _ground_truth(dataset: DetectionDataset) -> list[dict]:
    return [{"image_id": record.image_id, "width": record.width, "height": record.height, "boxes": record.boxes,
             "labels": record.labels, "difficult": record.difficult} for record in dataset.records]


def evaluate_voc(dataset: DetectionDataset, predictions: list[dict]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """detectron2-style VOC07 AP plus pycocotools AP of the same detections."""
    ground_truth = _ground_truth(dataset)
    metrics, ap50_per_class = voc07_detection_ap(predictions, ground_truth, dataset.class_names)
    coco_metrics = coco_ap(coco_from_ground_truth(ground_truth, dataset.class_names),
                           coco_results(predictions, dataset.category_ids), "bbox")
    metrics.update({f"coco_{key}": value for key, value in coco_metrics.items()})
    return metrics, {"ap50": ap50_per_class}


def evaluate_coco(dataset: DetectionDataset, predictions: list[dict]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """pycocotools box AP, and mask AP when the predictions carry masks."""
    if not any(len(record.labels) for record in dataset.records):
        raise ValueError("COCO evaluation: the test set has no annotated object")
    results = coco_results(predictions, dataset.category_ids)
    metrics = {f"box_{key}": value for key, value in coco_ap(dataset.coco_api, results, "bbox").items()}
    if any("masks" in prediction for prediction in predictions):
        metrics.update({f"mask_{key}": value for key, value in coco_ap(dataset.coco_api, results, "segm").items()})
    return metrics, {}


EVALUATORS: dict[str, Callable[[DetectionDataset, list[dict]], tuple[dict, dict]]] = {
    "voc": evaluate_voc,
    "coco": evaluate_coco,
}


def evaluate(model: nn.Module, dataset: DetectionDataset, data_format: str, context: DistributedContext,
             amp: bool = False, num_workers: int = 0) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Metrics and per-class values (percent) of ``model`` on ``dataset``, computed on the main process
    (the others return empty dicts)."""
    predictions = predict(model, dataset, context, amp, num_workers)
    if not context.is_main:
        return {}, {}
    metrics, per_class = EVALUATORS[data_format](dataset, predictions)
    return {key: float(np.round(value, 4)) for key, value in metrics.items()}, per_class
