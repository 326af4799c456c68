"""PASCAL VOC2007 detection AP with the definitions of detectron2's ``PascalVOCDetectionEvaluator``.

* per class, detections are sorted by score and greedily matched to the unmatched ground-truth box
  of highest IoU; a match needs IoU strictly above the threshold; a detection whose best box is
  "difficult" is neither a true nor a false positive, and difficult boxes do not count as positives;
* AP is the VOC2007 11-point interpolated average precision (mean over recall 0, 0.1, ..., 1 of the
  highest precision at recall >= r);
* the reported ``AP`` is the mean over IoU thresholds 0.50, 0.55, ..., 0.95 of the class-mean
  11-point AP, ``AP50``/``AP75`` the class means at 0.5/0.75 (percent).

detectron2 scores boxes in VOC's 1-based inclusive pixel convention with ``+1`` in widths; since its
loader maps ``(xmin, ymin, xmax, ymax)`` to ``(xmin - 1, ymin - 1, xmax, ymax)`` and back, that is the
same number as the plain continuous IoU computed here on the loader's boxes. Classes without any
non-difficult ground truth in the test set are left out of the means (detectron2 would divide by zero;
every class occurs in the real VOC2007 test set, so the numbers there are the same).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * step, 2) for step in range(10))


def voc07_11point_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Mean over recall levels 0, 0.1, ..., 1.0 of the maximum precision at recall >= level (0 if none)."""
    total = 0.0
    for level in np.linspace(0.0, 1.0, 11):
        reached = recall >= level
        total += float(precision[reached].max()) if reached.any() else 0.0
    return total / 11.0


def match_detections(scores: np.ndarray, det_image: np.ndarray, det_boxes: Sequence[np.ndarray],
                     gt_boxes: Sequence[np.ndarray], gt_difficult: Sequence[np.ndarray], iou_threshold: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """True/false-positive flags of one class's detections in decreasing score order.

    Detections are numbered image by image: ``det_image[k]`` is the image of detection ``k``, whose box
    is a row of ``det_boxes[det_image[k]]``; ``gt_boxes``/``gt_difficult`` are per image.
    """
    position_in_image = np.arange(len(det_image)) - np.searchsorted(det_image, det_image)
    order = np.argsort(-scores, kind="stable")
    true_positive = np.zeros(len(order))
    false_positive = np.zeros(len(order))
    taken = [np.zeros(len(boxes), dtype=bool) for boxes in gt_boxes]
    overlaps = [None] * len(gt_boxes)
    for rank, k in enumerate(order):
        image = det_image[k]
        if len(gt_boxes[image]) == 0:
            false_positive[rank] = 1
            continue
        if overlaps[image] is None:
            overlaps[image] = box_iou(torch.as_tensor(det_boxes[image], dtype=torch.float64).reshape(-1, 4),
                                      torch.as_tensor(gt_boxes[image], dtype=torch.float64)).numpy()
        row = overlaps[image][position_in_image[k]]
        best = int(row.argmax())
        if row[best] > iou_threshold:
            if gt_difficult[image][best]:
                continue
            if not taken[image][best]:
                true_positive[rank] = 1
                taken[image][best] = True
            else:
                false_positive[rank] = 1
        else:
            false_positive[rank] = 1
    return true_positive, false_positive


def class_ap(scores: np.ndarray, det_image: np.ndarray, det_boxes: Sequence[np.ndarray],
             gt_boxes: Sequence[np.ndarray], gt_difficult: Sequence[np.ndarray], iou_threshold: float) -> float | None:
    """11-point AP of one class at one IoU threshold; None when the class has no non-difficult box."""
    positives = sum(int((~difficult).sum()) for difficult in gt_difficult)
    if positives == 0:
        return None
    true_positive, false_positive = match_detections(scores, det_image, det_boxes, gt_boxes, gt_difficult, iou_threshold)
    true_positive, false_positive = np.cumsum(true_positive), np.cumsum(false_positive)
    recall = true_positive / positives
    precision = true_positive / np.maximum(true_positive + false_positive, np.finfo(np.float64).eps)
    return voc07_11point_ap(recall, precision)


def voc07_detection_ap(predictions: Sequence[dict], ground_truth: Sequence[dict], class_names: Sequence[str]
                       ) -> tuple[dict[str, float], dict[str, float]]:
    """(``{"AP", "AP50", "AP75"}``, per-class AP50), in percent.

    ``predictions[i]`` and ``ground_truth[i]`` describe the same image: ``boxes`` (N, 4) xyxy, ``labels``
    (1-based) and ``scores`` / ``difficult``.
    """
    per_threshold: dict[float, dict[str, float]] = {threshold: {} for threshold in IOU_THRESHOLDS}
    for label, name in enumerate(class_names, start=1):
        gt_boxes = [np.asarray(gt["boxes"])[np.asarray(gt["labels"]) == label] for gt in ground_truth]
        gt_difficult = [np.asarray(gt["difficult"], dtype=bool)[np.asarray(gt["labels"]) == label] for gt in ground_truth]
        det_boxes, det_scores, det_image = [], [], []
        for image, prediction in enumerate(predictions):
            keep = np.asarray(prediction["labels"]) == label
            det_boxes.append(np.asarray(prediction["boxes"]).reshape(-1, 4)[keep])
            det_scores.append(np.asarray(prediction["scores"])[keep])
            det_image.append(np.full(int(keep.sum()), image))
        scores, images = np.concatenate(det_scores), np.concatenate(det_image).astype(int)
        for threshold in IOU_THRESHOLDS:
            ap = class_ap(scores, images, det_boxes, gt_boxes, gt_difficult, threshold)
            if ap is not None:
                per_threshold[threshold][name] = 100.0 * ap
    if not per_threshold[0.5]:
        raise ValueError("VOC evaluation: the test set has no non-difficult ground-truth box")
    mean_ap = {threshold: float(np.mean(list(aps.values()))) for threshold, aps in per_threshold.items()}
    metrics = {"AP": float(np.mean(list(mean_ap.values()))), "AP50": mean_ap[0.5], "AP75": mean_ap[0.75]}
    return metrics, dict(per_threshold[0.5])
