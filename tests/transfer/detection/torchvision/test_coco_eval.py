"""pycocotools AP of the torchvision engine: perfect detections score 100, difficult VOC boxes are ignored."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from transfer.detection.torchvision.coco_eval import coco_ap, coco_from_ground_truth, coco_results, encode_masks


def ground_truth():
    return [{"image_id": 0, "width": 100, "height": 80, "boxes": np.array([[10.0, 10, 50, 60], [60, 5, 90, 30]]),
             "labels": np.array([1, 2]), "difficult": np.array([False, True])},
            {"image_id": 1, "width": 100, "height": 80, "boxes": np.array([[0.0, 0, 40, 40]]),
             "labels": np.array([1]), "difficult": np.array([False])}]


def test_perfect_detections_score_100_and_difficult_is_ignored():
    coco = coco_from_ground_truth(ground_truth(), ["aeroplane", "bicycle"])
    perfect = [{"image_id": gt["image_id"], "boxes": gt["boxes"], "labels": gt["labels"],
                "scores": np.linspace(0.9, 0.5, len(gt["labels"]))} for gt in ground_truth()]
    assert coco_ap(coco, coco_results(perfect, [1, 2]), "bbox") == pytest.approx({"AP": 100, "AP50": 100, "AP75": 100})
    # Dropping the detection of the difficult box changes nothing.
    perfect[0] = {key: value[:1] if key != "image_id" else value for key, value in perfect[0].items()}
    assert coco_ap(coco, coco_results(perfect, [1, 2]), "bbox")["AP"] == pytest.approx(100)


def test_half_the_objects_found():
    coco = coco_from_ground_truth(ground_truth(), ["aeroplane", "bicycle"])
    found = [{"image_id": 1, "boxes": np.array([[0.0, 0, 40, 40]]), "labels": np.array([1]), "scores": np.array([0.9])}]
    # aeroplane: recall 1/2 at precision 1 -> COCO 101-point AP 51/101; bicycle only has a difficult box (-1: skipped).
    assert coco_ap(coco, coco_results(found, [1, 2]), "bbox")["AP50"] == pytest.approx(100 * 51 / 101)


def test_nothing_detected_is_zero():
    coco = coco_from_ground_truth(ground_truth(), ["aeroplane", "bicycle"])
    assert coco_ap(coco, [], "bbox") == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}


def test_category_ids_are_mapped_back():
    results = coco_results([{"image_id": 4, "boxes": np.array([[1.0, 2, 4, 8]]), "labels": np.array([2]),
                             "scores": np.array([0.5])}], category_ids=[3, 18])
    assert results == [{"image_id": 4, "category_id": 18, "bbox": [1.0, 2.0, 3.0, 6.0], "score": 0.5}]


def test_mask_encoding_round_trip():
    probabilities = np.zeros((2, 1, 6, 7), dtype=np.float32)
    probabilities[0, 0, 1:4, 2:5] = 0.9
    probabilities[1, 0, :, :] = 0.4  # below the 0.5 threshold: empty mask
    encoded = encode_masks(probabilities)
    assert isinstance(encoded[0]["counts"], str)
    decoded = mask_utils.decode([{"size": rle["size"], "counts": rle["counts"].encode()} for rle in encoded])
    assert decoded[..., 0].sum() == 9 and decoded[1:4, 2:5, 0].all() and decoded[..., 1].sum() == 0
    assert encode_masks(np.zeros((0, 1, 6, 7), dtype=np.float32)) == []
