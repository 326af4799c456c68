"""Low-shot sampling (k positives, (C-1)k negatives per class, difficult never drawn) and aggregation."""

import numpy as np
import pytest

from transfer.classification.lowshot import run_lowshot_svm, sample_lowshot_labels


def synthetic(num_images: int, seed: int, num_classes: int = 3, dim: int = 12):
    """Non-negative features with class signal; labels 1 / 0 and some -1 (difficult)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((num_images, num_classes)) < 0.35).astype(np.int64)
    prototypes = np.random.default_rng(99).standard_normal((num_classes, dim))
    features = np.maximum(labels @ prototypes + rng.standard_normal((num_images, dim)), 0) + 0.01
    labels[(labels == 0) & (rng.random(labels.shape) < 0.1)] = -1
    return features, labels


def test_sampling_counts_per_class():
    labels = np.array([[1, 0, -1]] * 6 + [[0, 1, 1]] * 6 + [[0, -1, 0]] * 6)
    sampled = sample_lowshot_labels(labels, 2, np.random.default_rng(0))
    for column in range(3):
        assert (sampled[:, column] == 1).sum() == 2
        assert (sampled[:, column] == 0).sum() == 4
        drawn = sampled[:, column] != -1
        assert np.all(labels[drawn, column] == sampled[drawn, column])  # never a difficult image, labels kept


def test_too_few_positives_names_the_class():
    labels = np.array([[1, 0]] * 2 + [[0, 1]] * 8)
    with pytest.raises(ValueError, match="class 0 has 2 positive"):
        sample_lowshot_labels(labels, 3, np.random.default_rng(0))


def test_summary_statistics_over_draws():
    train_x, train_y = synthetic(120, seed=1)
    test_x, test_y = synthetic(60, seed=2)
    summary = run_lowshot_svm(train_x, train_y, test_x, test_y, k_values=[1, 4], num_draws=3, costs=[0.1, 1.0],
                              n_jobs=1, progress=False)
    assert set(summary) == {1, 4}
    for stats in summary.values():
        assert stats["min"] <= stats["mean"] <= stats["max"]
        assert stats["cost"] in (0.1, 1.0) and stats["std"] >= 0
