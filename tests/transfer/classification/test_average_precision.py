"""AP against hand-computed precision-recall envelopes (VOC2010-style, difficult ignored, ties grouped)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from transfer.classification.average_precision import mean_average_precision, voc_average_precision


def test_alternating_ranking():
    # ranks: P R = (1, 1/2) (1/2, 1/2) (2/3, 1) (1/2, 1); envelope 1 then 2/3 -> 1/2*1 + 1/2*2/3
    assert voc_average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.6])) == pytest.approx(5 / 6)


def test_envelope_differs_from_sklearn_step_sum():
    labels, scores = np.array([1, 0, 0, 1, 1]), np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    # precisions at the three positives: 1, 2/4, 3/5; the envelope lifts 2/4 to 3/5
    expected = (1 + 3 / 5 + 3 / 5) / 3
    assert voc_average_precision(labels, scores) == pytest.approx(expected)
    assert average_precision_score(labels, scores) == pytest.approx((1 + 1 / 2 + 3 / 5) / 3)


def test_perfect_and_worst_rankings():
    assert voc_average_precision(np.array([1, 1, 0, 0]), np.array([4, 3, 2, 1])) == pytest.approx(1.0)
    # positives last: precisions 1/3 and 2/4 -> envelope 1/2 for both
    assert voc_average_precision(np.array([0, 0, 1, 1]), np.array([4, 3, 2, 1])) == pytest.approx(0.5)


def test_difficult_entries_are_ignored_wherever_they_rank():
    labels = np.array([-1, 1, 0, -1, 1])
    for difficult_scores in ([10.0, -10.0], [-10.0, 10.0], [0.5, 0.5]):
        scores = np.array([difficult_scores[0], 3.0, 2.0, difficult_scores[1], 1.0])
        # without the difficult rows: [1, 0, 1] ranked 3, 2, 1 -> (1 + 2/3) / 2
        assert voc_average_precision(labels, scores) == pytest.approx((1 + 2 / 3) / 2)


def test_tied_scores_form_one_operating_point_independent_of_order():
    # the negative and the positive tie: one point with precision 1/3 at recall 1
    assert voc_average_precision(np.array([0, 1, 0]), np.array([0.9, 0.5, 0.5])) == pytest.approx(1 / 3)
    assert voc_average_precision(np.array([0, 0, 1]), np.array([0.9, 0.5, 0.5])) == pytest.approx(1 / 3)
    # all tied: precision = prevalence
    assert voc_average_precision(np.array([1, 0, 0, 1]), np.zeros(4)) == pytest.approx(0.5)


def test_mean_average_precision_over_columns():
    labels = np.array([[1, 0], [0, 1], [1, 1]])
    scores = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])
    mean, per_class = mean_average_precision(labels, scores)
    assert per_class == pytest.approx([1.0, 1.0])
    assert mean == pytest.approx(1.0)


@pytest.mark.parametrize("labels, scores, message", [
    ([0, 0, -1], [1, 2, 3], "without positive"),
    ([1, 2, 0], [1, 2, 3], "1, 0 or -1"),
    ([1, 0], [1, 2, 3], "differ in length"),
    ([1, 0], [1, float("nan")], "finite"),
])
def test_bad_inputs(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        voc_average_precision(np.array(labels), np.array(scores))
