"""Average precision as in the VOC2010+ devkit and VISSL's SVM benchmark.

AP is the area under the monotone (interpolated) precision-recall envelope: at every recall, the
precision is the best precision reached at that recall or beyond. This differs from the 11-point VOC2007
rule and from sklearn's non-interpolated ``average_precision_score``. Entries labelled ``-1`` (VOC
"difficult"-only images) are ignored. Tied scores form one operating point, so the result does not
depend on the order in which tied images happen to be listed (for distinct scores this equals VISSL's
``get_precision_recall``).
"""

from __future__ import annotations

import numpy as np

IGNORE_LABEL = -1


def voc_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP in [0, 1] of ``scores`` for binary ``labels`` (1 positive, 0 negative, -1 ignored)."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length: {labels.shape[0]} vs {scores.shape[0]}")
    unknown = set(np.unique(labels).tolist()) - {1, 0, IGNORE_LABEL}
    if unknown:
        raise ValueError(f"labels must be 1, 0 or -1, got {sorted(unknown)}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    keep = labels != IGNORE_LABEL
    positive, scores = labels[keep] == 1, scores[keep]
    num_positives = int(positive.sum())
    if num_positives == 0:
        raise ValueError("average precision is undefined without positive (label 1) entries")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_positive = scores[order], positive[order]
    true_positives = np.cumsum(sorted_positive)
    false_positives = np.cumsum(~sorted_positive)
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    true_positives, false_positives = true_positives[last_of_tie], false_positives[last_of_tie]
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / num_positives
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * envelope))


def mean_average_precision(labels: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray]:
    """Per-class AP (columns of ``labels``/``scores``, N x C) and their mean, both in [0, 1]."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    if labels.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(f"labels and scores must both be N x C, got {labels.shape} and {scores.shape}")
    per_class = np.array([voc_average_precision(labels[:, column], scores[:, column])
                          for column in range(labels.shape[1])])
    return float(per_class.mean()), per_class
