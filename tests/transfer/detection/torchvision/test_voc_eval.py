"""VOC2007 AP of the torchvision engine against hand-computed cases (detectron2's definitions)."""

import numpy as np
import pytest

from transfer.detection.torchvision.voc_eval import voc07_11point_ap, voc07_detection_ap

CLASSES = ["aeroplane", "bicycle"]


def gt(boxes, labels, difficult=None, image_id=0):
    difficult = [False] * len(labels) if difficult is None else difficult
    return {"image_id": image_id, "width": 100, "height": 100, "boxes": np.array(boxes, dtype=float).reshape(-1, 4),
            "labels": np.array(labels), "difficult": np.array(difficult)}


def det(boxes, labels, scores):
    return {"boxes": np.array(boxes, dtype=float).reshape(-1, 4), "labels": np.array(labels), "scores": np.array(scores)}


def test_11point_interpolation():
    # recall 0.5 at precision 1, recall 1 at precision 0.5: six levels (0..0.5) see 1, five see 0.5.
    assert voc07_11point_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx((6 + 2.5) / 11)
    assert voc07_11point_ap(np.array([0.25]), np.array([1.0])) == pytest.approx(3 / 11)  # levels 0, .1, .2
    assert voc07_11point_ap(np.array([]), np.array([])) == 0.0


def test_true_false_true_sequence():
    ground = [gt([[0, 0, 10, 10], [50, 50, 60, 60]], [1, 1])]
    predictions = [det([[0, 0, 10, 10], [80, 80, 90, 90], [50, 50, 60, 60]], [1, 1, 1], [0.9, 0.8, 0.7])]
    metrics, per_class = voc07_detection_ap(predictions, ground, CLASSES)
    # TP, FP, TP: recall .5,.5,1 precision 1,.5,2/3 -> (6 * 1 + 5 * 2/3) / 11
    expected = 100 * (6 + 5 * 2 / 3) / 11
    assert per_class == {"aeroplane": pytest.approx(expected)}  # bicycle has no ground truth: left out
    assert metrics["AP50"] == pytest.approx(expected)
    assert metrics["AP"] == pytest.approx(expected)  # exact boxes: every IoU threshold agrees


def test_difficult_boxes_are_neither_true_nor_false_positives():
    ground = [gt([[0, 0, 10, 10], [50, 50, 60, 60]], [1, 1], difficult=[False, True])]
    predictions = [det([[50, 50, 60, 60], [0, 0, 10, 10]], [1, 1], [0.9, 0.8])]
    metrics, _ = voc07_detection_ap(predictions, ground, CLASSES)
    assert metrics["AP50"] == pytest.approx(100.0)
    not_difficult = [gt([[0, 0, 10, 10], [50, 50, 60, 60]], [1, 1])]
    metrics, _ = voc07_detection_ap(predictions, not_difficult, CLASSES)
    # Now both count: TP at rank 1 and 2, AP 100; drop the second detection -> recall .5 only.
    assert metrics["AP50"] == pytest.approx(100.0)
    metrics, _ = voc07_detection_ap([det([[50, 50, 60, 60]], [1], [0.9])], not_difficult, CLASSES)
    assert metrics["AP50"] == pytest.approx(100 * 6 / 11)


def test_duplicate_detection_is_a_false_positive():
    ground = [gt([[0, 0, 10, 10], [50, 50, 60, 60]], [1, 1])]
    predictions = [det([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], [1, 1, 1], [0.9, 0.8, 0.7])]
    _, per_class = voc07_detection_ap(predictions, ground, CLASSES)
    assert per_class["aeroplane"] == pytest.approx(100 * (6 + 5 * 2 / 3) / 11)  # TP, FP (duplicate), TP


def test_overlap_must_exceed_the_threshold_strictly():
    ground = [gt([[0, 0, 10, 10]], [1])]
    half = [det([[0, 0, 10, 5]], [1], [0.9])]  # IoU exactly 0.5
    metrics, _ = voc07_detection_ap(half, ground, CLASSES)
    assert metrics["AP50"] == 0.0


def test_ap_is_the_mean_over_iou_thresholds():
    ground = [gt([[0, 0, 10, 10]], [1])]
    predictions = [det([[0, 0, 10, 8.5]], [1], [0.9])]  # IoU 0.85: a hit at 0.50 ... 0.80 (7 of 10 thresholds)
    metrics, _ = voc07_detection_ap(predictions, ground, CLASSES)
    assert metrics == pytest.approx({"AP": 70.0, "AP50": 100.0, "AP75": 100.0})


def test_wrong_class_and_other_image_do_not_match():
    ground = [gt([[0, 0, 10, 10]], [1], image_id=0), gt([[0, 0, 10, 10]], [2], image_id=1)]
    predictions = [det([[0, 0, 10, 10]], [2], [0.9]), det([[0, 0, 10, 10]], [2], [0.8])]
    metrics, per_class = voc07_detection_ap(predictions, ground, CLASSES)
    # bicycle: FP (image 0) then TP (image 1) -> recall 1 at precision .5; aeroplane: nothing found.
    assert per_class == pytest.approx({"aeroplane": 0.0, "bicycle": 50.0})
    assert metrics["AP50"] == pytest.approx(25.0)


def test_no_ground_truth_is_an_error():
    with pytest.raises(ValueError, match="no non-difficult"):
        voc07_detection_ap([det([], [], [])], [gt([], [])], CLASSES)
