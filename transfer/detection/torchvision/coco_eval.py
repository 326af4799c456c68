"""COCO-style AP (IoU 0.50:0.95) with pycocotools, for COCO and for VOC converted to COCO form.

In the VOC conversion a "difficult" object becomes ``iscrowd=1``: COCOeval then neither rewards nor
penalises detections that match it, which is how VOC ignores difficult objects (COCO's crowd
matching lets several detections share one such box and measures their overlap against the
detection's own area, a small difference from VOC's rule).
"""

from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np


def coco_from_ground_truth(ground_truth: Sequence[dict], class_names: Sequence[str]):
    """A pycocotools ``COCO`` index of per-image ground truth (``boxes`` xyxy, 1-based ``labels``, ``difficult``)."""
    from pycocotools.coco import COCO

    images, annotations = [], []
    for gt in ground_truth:
        images.append({"id": int(gt["image_id"]), "width": int(gt["width"]), "height": int(gt["height"])})
        for box, label, difficult in zip(np.asarray(gt["boxes"]).reshape(-1, 4), gt["labels"], gt["difficult"]):
            width, height = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({
                "id": len(annotations) + 1, "image_id": int(gt["image_id"]), "category_id": int(label),
                "bbox": [float(box[0]), float(box[1]), width, height], "area": width * height,
                "iscrowd": int(bool(difficult)),
            })
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": label, "name": name} for label, name in enumerate(class_names, start=1)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_results(predictions: Sequence[dict], category_ids: Sequence[int]) -> list[dict]:
    """COCO results entries (xywh boxes, category ids, RLE masks when predicted) of per-image predictions."""
    results = []
    for prediction in predictions:
        boxes = np.asarray(prediction["boxes"]).reshape(-1, 4)
        masks = prediction.get("masks")
        for index, (box, score, label) in enumerate(zip(boxes, prediction["scores"], prediction["labels"])):
            entry = {"image_id": int(prediction["image_id"]), "category_id": int(category_ids[int(label) - 1]),
                     "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                     "score": float(score)}
            if masks is not None:
                entry["segmentation"] = masks[index]
            results.append(entry)
    return results


def coco_ap(coco_ground_truth, results: list[dict], iou_type: str) -> dict[str, float]:
    """``{"AP", "AP50", "AP75"}`` in percent for ``iou_type`` ``bbox`` or ``segm`` (0 when nothing was detected)."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    if iou_type == "segm":
        results = [entry for entry in results if "segmentation" in entry]
    with contextlib.redirect_stdout(io.StringIO()):
        detections = coco_ground_truth.loadRes(results)
    evaluator = COCOeval(coco_ground_truth, detections, iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats = [max(float(value), 0.0) * 100.0 for value in evaluator.stats[:3]]  # -1 means "no ground truth"
    return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2]}


def encode_masks(mask_probabilities: np.ndarray, threshold: float = 0.5) -> list[dict]:
    """COCO RLE (JSON-ready) of ``(N, 1, H, W)`` mask probabilities binarised at ``threshold``."""
    from pycocotools import mask as mask_utils

    binary = np.asfortranarray((mask_probabilities[:, 0] > threshold).transpose(1, 2, 0).astype(np.uint8))
    encoded = mask_utils.encode(binary) if len(mask_probabilities) else []
    for rle in encoded:
        rle["counts"] = rle["counts"].decode("ascii")
    return list(encoded)
