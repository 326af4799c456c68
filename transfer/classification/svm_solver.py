"""Many L2-regularised squared-hinge linear SVMs solved at once, to the optimum ``LinearSVC`` approximates.

Objective of one problem (what liblinear minimises for ``LinearSVC(loss="squared_hinge", penalty="l2")``
with ``intercept_scaling=1``: the intercept is one more weight on a constant feature 1, and is
regularised too)::

    f(w) = 0.5 * ||w||^2 + sum_i C_i * max(0, 1 - y_i * w . [x_i, 1])^2,   C_i = C * class_weight[y_i]

Why batched: the VOC07 protocol needs hundreds of such problems (classes x costs x folds) on the same
feature matrix. Here they are columns of one weight matrix, so every step is a matrix product shared by all
problems instead of hundreds of separate liblinear runs. A problem's rows are chosen by its per-sample
costs (0 leaves a row out, e.g. the validation fold).

Method: Newton's method on the (generalised-Hessian) piecewise-quadratic primal, the idea of liblinear's
TRON: each direction comes from conjugate gradients (float32 Hessian products, stopped at a relative
residual), each step from an exact line search; gradients, margins and the convergence test stay in
float64. The features are first rotated into the eigenbasis of their Gram matrix (an orthogonal change of
variables: same objective, same optimum), where the Hessian is close to diagonal, so a diagonal (Jacobi)
preconditioner removes most of its ill-conditioning (non-negative CNN features have one dominant
direction). Problems that have converged drop out of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from tqdm import tqdm

GRADIENT_TOLERANCE = 1e-6
MAX_NEWTON_ITERATIONS = 100
MAX_CG_ITERATIONS = 400
LINE_SEARCH_ITERATIONS = 30
DIRECT_MAX_ACTIVE = 1024
DIRECT_BATCH = 32


@dataclass
class RotatedDesign:
    """Features with the constant intercept column appended, rotated by the eigenvectors of their Gram matrix."""

    rotation: torch.Tensor  # (d + 1) x (d + 1) orthogonal, float64
    design: torch.Tensor  # n x (d + 1) float64: [x, 1] @ rotation
    design32: torch.Tensor  # the same in float32, for Hessian products
    _gram: torch.Tensor | None = None

    @property
    def gram(self) -> torch.Tensor:
        """``Z Z'`` (n x n, float64), computed on first use."""
        if self._gram is None:
            self._gram = self.design @ self.design.T
        return self._gram

    def to_weights(self, rotated_weights: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Rotated solution -> (coefficients d x P, intercepts P) of the original features."""
        weights = (self.rotation @ rotated_weights).numpy()
        return weights[:-1], weights[-1]


def with_intercept(features: np.ndarray) -> np.ndarray:
    """``[x, 1]``: liblinear's intercept as a regularised weight on a constant feature (intercept_scaling 1)."""
    features = np.asarray(features, dtype=np.float64)
    return np.hstack([features, np.ones((features.shape[0], 1))])


def rotate(features: np.ndarray) -> RotatedDesign:
    """Rotates ``[x, 1]`` into the eigenbasis of its Gram matrix (float64 ``eigh`` of a (d+1)^2 matrix)."""
    augmented = with_intercept(features)
    _, eigenvectors = scipy.linalg.eigh(augmented.T @ augmented, driver="evr")
    rotation = torch.from_numpy(np.ascontiguousarray(eigenvectors))
    design = torch.from_numpy(augmented) @ rotation
    return RotatedDesign(rotation, design, design.to(torch.float32))


def _hessian_product(design32: torch.Tensor, curvature: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``(I + 2 Z' diag(curvature_p) Z) v_p`` for every column p."""
    return vectors + 2.0 * (design32.T @ (curvature * (design32 @ vectors)))


def _conjugate_gradient(design32: torch.Tensor, curvature: torch.Tensor, gradient: torch.Tensor,
                        preconditioner: torch.Tensor, forcing: torch.Tensor) -> torch.Tensor:
    """Approximate Newton directions: solves ``H_p s_p = -g_p`` until ``||r_p|| <= forcing_p * ||g_p||``.

    Finished columns are removed from the products, so late iterations only pay for hard problems.
    """
    directions = torch.zeros_like(gradient)
    running = torch.arange(gradient.shape[1])
    residual = -gradient
    targets = forcing * torch.linalg.vector_norm(gradient, dim=0)
    preconditioned = residual / preconditioner
    search = preconditioned.clone()
    residual_dot = (residual * preconditioned).sum(dim=0)
    step_sum = torch.zeros_like(gradient)
    for _ in range(MAX_CG_ITERATIONS):
        product = _hessian_product(design32, curvature[:, running], search)
        step = residual_dot / (search * product).sum(dim=0)
        step_sum += step * search
        residual -= step * product
        done = torch.linalg.vector_norm(residual, dim=0) <= targets
        if done.any():
            directions[:, running[done]] = step_sum[:, done]
            keep = ~done
            if not keep.any():
                return directions
            running, residual, search, step_sum = running[keep], residual[:, keep], search[:, keep], step_sum[:, keep]
            preconditioner, residual_dot, targets = preconditioner[:, keep], residual_dot[keep], targets[keep]
        preconditioned = residual / preconditioner
        new_residual_dot = (residual * preconditioned).sum(dim=0)
        search = preconditioned + (new_residual_dot / residual_dot) * search
        residual_dot = new_residual_dot
    directions[:, running] = step_sum
    return directions


def _direct_newton_targets(design: RotatedDesign, signs: torch.Tensor, curvature: torch.Tensor) -> torch.Tensor:
    """Exact minimisers of the quadratic models on small active sets A (Woodbury: an |A| x |A| solve).

    With A fixed, the model's minimiser is ``w = Z_A' beta`` with ``(K_AA + diag(1 / (2 C_i))) beta = y_A``,
    ``K = Z Z'``; the systems of all columns are padded (identity) to one size and solved by one batched
    Cholesky.
    """
    active = [torch.nonzero(curvature[:, column] > 0).flatten() for column in range(curvature.shape[1])]
    size = max(len(rows) for rows in active)
    systems = torch.eye(size, dtype=torch.float64).repeat(len(active), 1, 1)
    right_sides = torch.zeros(len(active), size, 1, dtype=torch.float64)
    for column, rows in enumerate(active):
        count = len(rows)
        systems[column, :count, :count] = design.gram[rows[:, None], rows[None, :]] + torch.diag(
            0.5 / curvature[rows, column])
        right_sides[column, :count, 0] = signs[rows, column]
    coefficients = torch.cholesky_solve(right_sides, torch.linalg.cholesky(systems))
    targets = torch.empty(design.design.shape[1], len(active), dtype=torch.float64)
    for column, rows in enumerate(active):
        targets[:, column] = design.design[rows].T @ coefficients[column, :len(rows), 0]
    return targets


def _exact_line_search(weights: torch.Tensor, direction: torch.Tensor, margins: torch.Tensor,
                       direction_margins: torch.Tensor, sample_costs: torch.Tensor) -> torch.Tensor:
    """Per column, the step minimising the objective along ``direction`` (safeguarded 1-D Newton on f')."""
    weight_dot = (weights * direction).sum(dim=0)
    direction_dot = (direction * direction).sum(dim=0)
    step = torch.ones_like(weight_dot)
    lower, upper = torch.zeros_like(step), torch.full_like(step, float("inf"))
    for _ in range(LINE_SEARCH_ITERATIONS):
        slack = torch.clamp(1.0 - margins - step * direction_margins, min=0.0)
        active_costs = sample_costs * (slack > 0)
        slope = weight_dot + step * direction_dot - 2.0 * (sample_costs * direction_margins * slack).sum(dim=0)
        curvature = direction_dot + 2.0 * (active_costs * direction_margins ** 2).sum(dim=0)
        lower = torch.where(slope < 0, step, lower)
        upper = torch.where(slope > 0, step, upper)
        if bool((slope.abs() <= 1e-12 * (weight_dot.abs() + direction_dot)).all()):
            break
        newton = step - slope / curvature
        bisection = torch.where(torch.isinf(upper), 2.0 * step, 0.5 * (lower + upper))
        step = torch.where((newton > lower) & (newton < upper), newton, bisection)
    return step


def solve_squared_hinge(design: RotatedDesign, signs: np.ndarray, sample_costs: np.ndarray,
                        initial: torch.Tensor | None = None,
                        tolerance: float = GRADIENT_TOLERANCE, progress: bool = False,
                        description: str = "SVM Newton iterations") -> tuple[torch.Tensor, np.ndarray]:
    """Minimises every column's objective; returns rotated weights ((d+1) x P) and which problems converged.

    ``signs`` (n x P, +-1) are the targets and ``sample_costs`` (n x P, >= 0) the ``C_i`` of each problem.
    Converged: ``||grad f(w)|| <= tolerance * ||grad f(0)||`` (liblinear's primal solvers stop at
    ``tol`` times a class-balance factor of the same ratio; 1e-4 in this protocol).
    """
    signs = torch.as_tensor(np.asarray(signs, dtype=np.float64))
    sample_costs = torch.as_tensor(np.asarray(sample_costs, dtype=np.float64))
    if signs.shape != sample_costs.shape or signs.shape[0] != design.design.shape[0]:
        raise ValueError(f"signs {tuple(signs.shape)} and sample_costs {tuple(sample_costs.shape)} must both be "
                         f"n x P with n = {design.design.shape[0]}")
    matrix = design.design
    weights = torch.zeros(matrix.shape[1], signs.shape[1], dtype=torch.float64) if initial is None else initial.clone()
    margins = signs * (matrix @ weights)
    initial_gradient_norm = torch.linalg.vector_norm(2.0 * matrix.T @ (sample_costs * signs), dim=0)
    converged = torch.zeros(signs.shape[1], dtype=torch.bool)
    bar = tqdm(total=signs.shape[1], desc=description, unit="problem", disable=not progress)
    for _ in range(MAX_NEWTON_ITERATIONS):
        running = torch.nonzero(~converged).flatten()
        bar.update(signs.shape[1] - len(running) - bar.n)
        if len(running) == 0:
            break
        costs, run_signs, run_margins = sample_costs[:, running], signs[:, running], margins[:, running]
        run_weights = weights[:, running]
        slack = torch.clamp(1.0 - run_margins, min=0.0)
        gradient = run_weights - 2.0 * matrix.T @ (costs * run_signs * slack)
        gradient_norm = torch.linalg.vector_norm(gradient, dim=0)
        done = gradient_norm <= tolerance * initial_gradient_norm[running]
        converged[running[done]] = True
        if done.all():
            break
        keep = ~done
        running, costs, run_signs, run_margins = running[keep], costs[:, keep], run_signs[:, keep], run_margins[:, keep]
        run_weights, gradient, slack = run_weights[:, keep], gradient[:, keep], slack[:, keep]
        relative = gradient_norm[keep] / initial_gradient_norm[running]
        forcing = torch.clamp(torch.sqrt(relative), min=1e-3, max=0.1)
        curvature = costs * (slack > 0)
        direct = (curvature > 0).sum(dim=0) <= DIRECT_MAX_ACTIVE
        direction = torch.empty_like(gradient)
        # similar active-set sizes share one padded batch
        by_size = torch.nonzero(direct).flatten()[torch.argsort((curvature[:, direct] > 0).sum(dim=0))]
        for batch in torch.split(by_size, DIRECT_BATCH) if direct.any() else ():
            direction[:, batch] = _direct_newton_targets(design, run_signs[:, batch],
                                                         curvature[:, batch]) - run_weights[:, batch]
        if not direct.all():
            iterative = ~direct
            curvature32 = curvature[:, iterative].to(torch.float32)
            preconditioner = 1.0 + 2.0 * (design.design32 ** 2).T @ curvature32
            direction[:, iterative] = _conjugate_gradient(
                design.design32, curvature32, gradient[:, iterative].to(torch.float32), preconditioner,
                forcing[iterative].to(torch.float32)).to(torch.float64)
        direction_margins = run_signs * (matrix @ direction)
        step = _exact_line_search(run_weights, direction, run_margins, direction_margins, costs)
        weights[:, running] = run_weights + step * direction
        margins[:, running] = run_margins + step * direction_margins
    bar.close()
    return weights, converged.numpy()


def fit_linear_svms(features: np.ndarray, targets: np.ndarray, costs: np.ndarray,
                    class_weight: dict[int, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``LinearSVC``-equivalent fits of P problems on the same rows: (coef d x P, intercept P, converged P).

    ``targets`` is n x P of +-1, ``costs`` has P entries; ``class_weight`` multiplies C per target.
    """
    targets = np.asarray(targets)
    if targets.ndim == 1:
        targets = targets[:, None]
    costs = np.broadcast_to(np.asarray(costs, dtype=np.float64), (targets.shape[1],))
    weight_per_sample = np.where(targets == 1, class_weight[1], class_weight[-1])
    design = rotate(features)
    rotated, converged = solve_squared_hinge(design, targets, weight_per_sample * costs)
    coefficients, intercepts = design.to_weights(rotated)
    return coefficients, intercepts, converged
