"""Low-shot VOC07 SVMs (Goyal et al. 2019 / VISSL ``SVMLowShotTrainer``).

For each k (positives per class) and each of ``num_draws`` independent draws, every class keeps k random
positives and (C - 1) * k random negatives for training; all other training images are ignored for that
class. An SVM is trained per class and cost (no cross-validation), tested on the full test set
(difficult ignored), and the mAP over classes is taken per cost. Per k, the reported cost is the one
with the best mean mAP over draws; its mean / min / max / std over draws are returned.
"""

from __future__ import annotations

from typing import Sequence

import joblib
import numpy as np

from transfer.classification.average_precision import voc_average_precision
from transfer.classification.svm import (VOC07_COSTS, _fit, check_labels, normalize_features, resolve_jobs, run_parallel,
                          shared_arrays)

LOWSHOT_K_VALUES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 96)
IGNORE = -1


def sample_lowshot_labels(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """N x C training labels for one draw: per class k positives (1) and (C-1)*k negatives (0), the rest -1.

    Difficult-only images (-1) are never drawn. Raises naming the class when it has too few images.
    """
    labels = np.asarray(labels)
    num_classes = labels.shape[1]
    sampled = np.full_like(labels, IGNORE)
    for column in range(num_classes):
        for value, count in ((1, k), (0, (num_classes - 1) * k)):
            candidates = np.flatnonzero(labels[:, column] == value)
            if len(candidates) < count:
                kind = "positive" if value == 1 else "negative"
                raise ValueError(f"class {column} has {len(candidates)} {kind} training images, "
                                 f"low-shot k={k} needs {count}")
            sampled[rng.choice(candidates, size=count, replace=False), column] = value
    return sampled


def _draw_test_ap(train_features: np.ndarray, sampled_labels: np.ndarray, test_features: np.ndarray,
                  test_labels: np.ndarray, costs: Sequence[float]) -> np.ndarray:
    """Test AP (C x costs) of one draw: per class, SVMs on that class's sampled images only."""
    num_classes = sampled_labels.shape[1]
    ap = np.zeros((num_classes, len(costs)))
    for column in range(num_classes):
        rows = np.flatnonzero(sampled_labels[:, column] != IGNORE)
        features, targets = train_features[rows], np.where(sampled_labels[rows, column] == 1, 1, -1)
        for position, cost in enumerate(costs):
            model, _ = _fit(features, targets, cost)
            ap[column, position] = voc_average_precision(test_labels[:, column], model.decision_function(test_features))
    return ap


def run_lowshot_svm(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                    test_labels: np.ndarray, k_values: Sequence[int] = LOWSHOT_K_VALUES, num_draws: int = 5,
                    costs: Sequence[float] = VOC07_COSTS, seed: int = 0, n_jobs: int | None = None,
                    progress: bool = True) -> dict[int, dict[str, float]]:
    """Per k: mean / min / max / std mAP (percent) over draws at the best-on-average cost, and that ``cost``."""
    if num_draws < 1 or not k_values or any(k < 1 for k in k_values):
        raise ValueError(f"need num_draws >= 1 and positive k values, got {num_draws} and {list(k_values)}")
    train_features, test_features = normalize_features(train_features), normalize_features(test_features)
    train_labels = check_labels(train_labels, train_features, "train")
    test_labels = check_labels(test_labels, test_features, "test")
    rng = np.random.default_rng(seed)
    draws = [(k, draw, sample_lowshot_labels(train_labels, k, rng)) for draw in range(num_draws) for k in k_values]
    n_jobs = resolve_jobs(n_jobs)
    with shared_arrays(n_jobs, train_features, test_features) as (shared_train, shared_test):
        jobs = [joblib.delayed(_draw_test_ap)(shared_train, sampled, shared_test, test_labels, costs)
                for _, _, sampled in draws]
        results = run_parallel(jobs, n_jobs, "low-shot SVMs", progress)
    summary: dict[int, dict[str, float]] = {}
    for k in k_values:
        per_draw = np.array([ap.mean(axis=0) for (draw_k, _, _), ap in zip(draws, results) if draw_k == k]) * 100.0
        best = int(np.argmax(per_draw.mean(axis=0)))
        values = per_draw[:, best]
        summary[k] = {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max()),
                      "std": float(values.std()), "cost": float(costs[best])}
    return summary
