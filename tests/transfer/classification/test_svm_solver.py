"""Batched squared-hinge SVM solver against liblinear (sklearn LinearSVC) run to tight convergence."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.svm import LinearSVC

from transfer.classification import svm_solver
from transfer.classification.svm_solver import fit_linear_svms, rotate, solve_squared_hinge, with_intercept

CLASS_WEIGHT = {1: 2, -1: 1}


def problem(num_images: int, dim: int, seed: int):
    """Non-negative L2-normalised features and +-1 targets with a noisy linear signal."""
    rng = np.random.default_rng(seed)
    features = np.maximum(rng.standard_normal((num_images, dim)) + 0.5, 0)
    features /= np.linalg.norm(features, axis=1, keepdims=True) + 1e-5
    targets = np.where(features[:, 0] - features[:, 1] + 0.1 * rng.standard_normal(num_images) > 0, 1, -1)
    return features, targets


def liblinear(features, targets, cost, class_weight=CLASS_WEIGHT):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearSVC(C=cost, class_weight=class_weight, dual=True, tol=1e-8, max_iter=100000,
                          intercept_scaling=1.0).fit(features, targets)
    return model.coef_[0], model.intercept_[0]


def objective(features, targets, cost, coef, intercept, class_weight=CLASS_WEIGHT):
    """The primal liblinear minimises, intercept regularised: 0.5||(w, b)||^2 + sum C_i max(0, 1 - y f)^2."""
    weights = np.where(targets == 1, class_weight[1], class_weight[-1]) * cost
    slack = np.maximum(0, 1 - targets * (features @ coef + intercept))
    return 0.5 * (coef @ coef + intercept ** 2) + np.sum(weights * slack ** 2)


@pytest.mark.parametrize("seed, dim", [(0, 8), (1, 30)])
def test_matches_liblinear_at_several_costs(seed, dim):
    features, targets = problem(150, dim, seed)
    costs = [0.01, 0.5, 5.0, 100.0]
    coef, intercept, converged = fit_linear_svms(features, np.repeat(targets[:, None], len(costs), axis=1),
                                                 np.array(costs), CLASS_WEIGHT)
    assert converged.all()
    for position, cost in enumerate(costs):
        reference_coef, reference_intercept = liblinear(features, targets, cost)
        scale = max(1.0, np.abs(reference_coef).max())
        np.testing.assert_allclose(coef[:, position], reference_coef, atol=1e-4 * scale)
        assert intercept[position] == pytest.approx(reference_intercept, abs=1e-4 * scale)
        # never worse than liblinear on the shared objective
        assert objective(features, targets, cost, coef[:, position], intercept[position]) <= objective(
            features, targets, cost, reference_coef, reference_intercept) * (1 + 1e-9)


def test_class_weights_multiply_the_cost_per_sample():
    features, targets = problem(120, 10, seed=3)
    weights = {1: 5, -1: 0.5}
    coef, intercept, _ = fit_linear_svms(features, targets, np.array([2.0]), weights)
    reference_coef, reference_intercept = liblinear(features, targets, 2.0, weights)
    np.testing.assert_allclose(coef[:, 0], reference_coef, atol=1e-4 * np.abs(reference_coef).max())
    assert intercept[0] == pytest.approx(reference_intercept, abs=1e-4 * np.abs(reference_coef).max())


def test_zero_cost_rows_are_left_out():
    features, targets = problem(160, 12, seed=4)
    kept = np.arange(160) % 3 != 0
    design = rotate(features)
    costs = np.where(targets == 1, 2.0, 1.0) * 3.0 * kept
    rotated, converged = solve_squared_hinge(design, targets[:, None], costs[:, None])
    coef, intercept = design.to_weights(rotated)
    reference_coef, reference_intercept = liblinear(features[kept], targets[kept], 3.0)
    assert converged.all()
    np.testing.assert_allclose(coef[:, 0], reference_coef, atol=1e-4 * np.abs(reference_coef).max())
    assert intercept[0] == pytest.approx(reference_intercept, abs=1e-4 * np.abs(reference_coef).max())


def test_iterative_and_direct_newton_directions_agree(monkeypatch):
    features, targets = problem(200, 20, seed=5)
    costs = np.where(targets == 1, 2.0, 1.0)[:, None] * np.array([0.1, 10.0])
    signs = np.repeat(targets[:, None], 2, axis=1)
    design = rotate(features)
    direct, _ = solve_squared_hinge(design, signs, costs)
    monkeypatch.setattr(svm_solver, "DIRECT_MAX_ACTIVE", 0)  # conjugate gradients only
    iterative, converged = solve_squared_hinge(design, signs, costs)
    assert converged.all()
    torch.testing.assert_close(direct, iterative, atol=1e-5, rtol=1e-5)


def test_rotation_preserves_the_problem():
    features, _ = problem(50, 6, seed=6)
    design = rotate(features)
    augmented = with_intercept(features)
    np.testing.assert_allclose(design.rotation.T @ design.rotation, np.eye(7), atol=1e-10)
    np.testing.assert_allclose(design.design.numpy(), augmented @ design.rotation.numpy(), atol=1e-12)
    assert (augmented[:, -1] == 1).all()


def test_shape_mismatch_is_an_error():
    features, targets = problem(30, 4, seed=7)
    with pytest.raises(ValueError, match="n x P"):
        solve_squared_hinge(rotate(features), targets[:-1, None], np.ones((29, 1)))
