"""Linear SVMs on frozen features: the VOC07 / COCO protocol of Goyal et al. (2019), as run by VISSL.

Protocol: features L2-normalised (``x / (||x|| + 1e-5)``); one ``sklearn.svm.LinearSVC`` per class
(squared hinge, L2, dual coordinate descent, ``class_weight={1: 2, -1: 1}``, tol 1e-4, max_iter 2000);
per class the cost is the one with the best mean ``average_precision`` over 3 stratified folds of the
training set (what ``cross_val_score(..., cv=3, scoring="average_precision")`` computes); training
counts difficult-only images (label -1) as negatives; the test AP ignores them and is the VOC2010-style
envelope AP (``transfer.classification.average_precision``).

Solvers (``SVM_SOLVERS``):

- ``"newton"`` (default): every (class, cost, fold) problem and then every final fit solved at once to the
  optimum of the same objective by ``transfer.classification.svm_solver`` (batched truncated Newton sharing the matrix
  products), which liblinear approximates to tol 1e-4 within 2000 iterations.
- ``"liblinear"``: the reference, sklearn's ``LinearSVC``. Each (class, fold) job slices its fold once and
  sweeps all costs; only the chosen cost is refitted on all training data; the jobs run in parallel
  processes that share the normalised features through one memory-mapped file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

import joblib
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from tqdm import tqdm

from transfer.classification.average_precision import voc_average_precision
from transfer.classification.svm_solver import rotate, solve_squared_hinge

VOC07_COSTS: tuple[float, ...] = (0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0)
CLASS_WEIGHT = {1: 2, -1: 1}
TOLERANCE = 1e-4
MAX_ITERATIONS = 2000
NORM_EPSILON = 1e-5


def normalize_features(features: np.ndarray) -> np.ndarray:
    """Row-wise ``x / (||x|| + 1e-5)`` in float64 (what liblinear computes in)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be an N x D matrix, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or infinite values")
    return np.ascontiguousarray(features / (np.linalg.norm(features, axis=1, keepdims=True) + NORM_EPSILON))


def svm_targets(labels: np.ndarray) -> np.ndarray:
    """Training targets of one class: 1 stays 1; absent (0) and difficult-only (-1) become -1."""
    return np.where(np.asarray(labels) == 1, 1, -1).astype(np.int32)


def make_linear_svc(cost: float, seed: int = 0) -> LinearSVC:
    """The protocol's classifier for one (class, cost); ``dual=True`` as in VISSL (sklearn's "auto" differs)."""
    return LinearSVC(C=cost, class_weight=CLASS_WEIGHT, penalty="l2", loss="squared_hinge", dual=True,
                     tol=TOLERANCE, max_iter=MAX_ITERATIONS, intercept_scaling=1.0, random_state=seed)


def cross_validation_folds(targets: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds ``cross_val_score(cv=folds)`` uses for a classifier: unshuffled stratified k-fold."""
    return list(StratifiedKFold(n_splits=folds).split(np.zeros((len(targets), 1)), targets))


def check_labels(labels: np.ndarray, features: np.ndarray, name: str) -> np.ndarray:
    """Validates an N x C matrix of 1 / 0 / -1 labels matching ``features``."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"{name} labels must be N x C with N = {features.shape[0]} rows, got shape {labels.shape}")
    unknown = set(np.unique(labels).tolist()) - {1, 0, -1}
    if unknown:
        raise ValueError(f"{name} labels must be 1 (present), 0 (absent) or -1 (difficult), got {sorted(unknown)}")
    return labels


def _fit(features: np.ndarray, targets: np.ndarray, cost: float) -> tuple[LinearSVC, bool]:
    """Fits one SVM; returns it and whether liblinear converged within ``max_iter``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_linear_svc(cost).fit(features, targets)
    return model, int(np.max(model.n_iter_)) < MAX_ITERATIONS


def _fold_cost_sweep(features: np.ndarray, targets: np.ndarray, train_index: np.ndarray, val_index: np.ndarray,
                     costs: Sequence[float]) -> tuple[np.ndarray, int]:
    """Validation AP of every cost on one fold (the fold is sliced once for all costs)."""
    train_features, val_features = features[train_index], features[val_index]
    train_targets, val_targets = targets[train_index], targets[val_index]
    scores, not_converged = np.zeros(len(costs)), 0
    for position, cost in enumerate(costs):
        model, converged = _fit(train_features, train_targets, cost)
        not_converged += not converged
        scores[position] = average_precision_score(val_targets, model.decision_function(val_features))
    return scores, not_converged


def _final_fit_and_score(features: np.ndarray, targets: np.ndarray, cost: float,
                         test_features: np.ndarray) -> tuple[np.ndarray, int]:
    """Fits the chosen cost on all training data; returns the test decision values and 1 if not converged."""
    model, converged = _fit(features, targets, cost)
    return model.decision_function(test_features), int(not converged)


@contextlib.contextmanager
def shared_arrays(n_jobs: int, *arrays: np.ndarray) -> Iterator[list[np.ndarray]]:
    """With several workers, read-only memory maps of ``arrays`` (passed to workers by file name, not pickled)."""
    if n_jobs == 1:
        yield list(arrays)
        return
    with tempfile.TemporaryDirectory(prefix="svm-features-") as directory:
        mapped = []
        for position, array in enumerate(arrays):
            path = Path(directory) / f"array{position}.npy"
            np.save(path, array)
            mapped.append(np.load(path, mmap_mode="r"))
        yield mapped
        del mapped


def resolve_jobs(n_jobs: int | None) -> int:
    """``None`` or ``-1``: every usable CPU core."""
    if n_jobs is None or n_jobs < 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_jobs == 0:
        raise ValueError("n_jobs must be positive, or None / -1 for all cores")
    return n_jobs


def run_parallel(jobs: list, n_jobs: int, description: str, progress: bool = True) -> list:
    """Runs ``joblib.delayed`` jobs (processes when ``n_jobs > 1``), in order, with a progress bar."""
    if n_jobs == 1:
        return [function(*args, **kwargs)
                for function, args, kwargs in tqdm(jobs, desc=description, disable=not progress)]
    runner = joblib.Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
    return list(tqdm(runner(jobs), total=len(jobs), desc=description, disable=not progress))


def choose_costs(crossval_ap: np.ndarray, costs: Sequence[float]) -> list[float]:
    """Per class, the cost of the best mean cross-validated AP (the first one on ties, as ``np.argmax``)."""
    return [float(costs[index]) for index in np.argmax(crossval_ap, axis=1)]


def _liblinear_sweep(train_features: np.ndarray, targets: list[np.ndarray], folds: list[list[tuple]],
                     test_features: np.ndarray, costs: Sequence[float], n_jobs: int,
                     progress: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """sklearn ``LinearSVC`` fits in parallel processes: (crossval AP C x costs, test scores N x C, not converged)."""
    num_classes = len(targets)
    with shared_arrays(n_jobs, train_features, test_features) as (shared_train, shared_test):
        sweep_jobs = [joblib.delayed(_fold_cost_sweep)(shared_train, targets[column], train_index, val_index, costs)
                      for column in range(num_classes) for train_index, val_index in folds[column]]
        sweeps = run_parallel(sweep_jobs, n_jobs, "SVM cost cross-validation", progress)
        crossval_ap = np.array([scores for scores, _ in sweeps]).reshape(num_classes, -1, len(costs)).mean(axis=1)
        chosen = choose_costs(crossval_ap, costs)
        final_jobs = [joblib.delayed(_final_fit_and_score)(shared_train, targets[column], chosen[column], shared_test)
                      for column in range(num_classes)]
        finals = run_parallel(final_jobs, n_jobs, "SVM final fits", progress)
    test_scores = np.stack([scores for scores, _ in finals], axis=1)
    return crossval_ap, test_scores, int(sum(count for _, count in sweeps) + sum(count for _, count in finals))


@contextlib.contextmanager
def torch_threads(n_jobs: int) -> Iterator[None]:
    """Runs torch's matrix products on ``n_jobs`` threads, restoring the previous setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n_jobs)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _newton_sweep(train_features: np.ndarray, targets: list[np.ndarray], folds: list[list[tuple]],
                  test_features: np.ndarray, costs: Sequence[float], n_jobs: int,
                  progress: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Batched exact solves: per cost (ascending), all (class, fold) problems at once; then all final fits.

    A problem's validation rows get cost 0 (left out). Each cost starts from the solutions of the previous
    one (the regularisation path); a final fit starts from the mean of its fold solutions at the chosen cost.
    """
    num_classes, num_folds, num_costs = len(targets), len(folds[0]), len(costs)
    signs = np.stack(targets, axis=1).astype(np.float64)  # n x C
    class_weights = np.where(signs == 1, CLASS_WEIGHT[1], CLASS_WEIGHT[-1])
    in_training = np.zeros((len(signs), num_classes, num_folds))
    for column in range(num_classes):
        for fold, (train_index, _) in enumerate(folds[column]):
            in_training[train_index, column, fold] = 1.0
    problem_signs = np.repeat(signs, num_folds, axis=1)  # problem order: class, then fold
    problem_weights = (class_weights[:, :, None] * in_training).reshape(len(signs), -1)
    crossval_ap = np.zeros((num_classes, num_costs))
    fold_solutions: dict[int, torch.Tensor] = {}
    not_converged = 0
    with torch_threads(n_jobs):
        design = rotate(train_features)
        weights = None
        for position in tqdm(np.argsort(costs), desc="SVM cost cross-validation", disable=not progress):
            weights, converged = solve_squared_hinge(design, problem_signs, problem_weights * costs[position],
                                                     initial=weights)
            not_converged += int((~converged).sum())
            fold_solutions[position] = weights
            scores = (design.design @ weights).numpy().reshape(len(signs), num_classes, num_folds)
            for column in range(num_classes):
                for fold, (_, val_index) in enumerate(folds[column]):
                    crossval_ap[column, position] += average_precision_score(
                        targets[column][val_index], scores[val_index, column, fold]) / num_folds
        chosen = np.argmax(crossval_ap, axis=1)
        initial = torch.stack([fold_solutions[chosen[column]].reshape(-1, num_classes, num_folds)[:, column].mean(dim=1)
                               for column in range(num_classes)], dim=1)
        final_weights, final_converged = solve_squared_hinge(
            design, signs, class_weights * np.asarray(costs, dtype=np.float64)[chosen], initial=initial,
            progress=progress, description="SVM final fits")
        coefficients, intercepts = design.to_weights(final_weights)
    test_scores = test_features @ coefficients + intercepts
    return crossval_ap, test_scores, not_converged + int((~final_converged).sum())


SweepSolver = Callable[[np.ndarray, list, list, np.ndarray, Sequence[float], int, bool],
                       tuple[np.ndarray, np.ndarray, int]]
SVM_SOLVERS: dict[str, SweepSolver] = {"newton": _newton_sweep, "liblinear": _liblinear_sweep}


def train_and_test_svm(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                       test_labels: np.ndarray, costs: Sequence[float] = VOC07_COSTS, folds: int = 3,
                       n_jobs: int | None = None, progress: bool = True, solver: str = "newton") -> dict:
    """Per-class SVMs with cross-validated costs; test AP per class and their mean.

    Labels are N x C matrices of 1 (present), 0 (absent), -1 (difficult only). ``solver`` names an entry
    of ``SVM_SOLVERS``. Returns ``mAP`` (percent), ``ap`` (per class, percent), ``cost`` (chosen per class),
    ``crossval_ap`` (C x costs, percent) and ``not_converged`` (fits that stopped before their tolerance).
    """
    if solver not in SVM_SOLVERS:
        raise ValueError(f"unknown SVM solver {solver!r}; choose one of {sorted(SVM_SOLVERS)}")
    if not costs or any(cost <= 0 for cost in costs):
        raise ValueError(f"costs must be a non-empty list of positive numbers, got {list(costs)}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    train_features, test_features = normalize_features(train_features), normalize_features(test_features)
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"train and test features differ in width: "
                         f"{train_features.shape[1]} vs {test_features.shape[1]}")
    train_labels = check_labels(train_labels, train_features, "train")
    test_labels = check_labels(test_labels, test_features, "test")
    if train_labels.shape[1] != test_labels.shape[1]:
        raise ValueError(f"train and test labels differ in class count: "
                         f"{train_labels.shape[1]} vs {test_labels.shape[1]}")
    num_classes = train_labels.shape[1]
    targets = [svm_targets(train_labels[:, column]) for column in range(num_classes)]
    for column in range(num_classes):
        positives = int((targets[column] == 1).sum())
        if positives < folds or len(targets[column]) - positives < folds:
            raise ValueError(f"class {column} needs at least {folds} positive and {folds} negative training images "
                             f"for {folds}-fold cross-validation, has {positives} positive")
        if not (test_labels[:, column] == 1).any():
            raise ValueError(f"class {column} has no positive test image: its AP is undefined")
    class_folds = [cross_validation_folds(targets[column], folds) for column in range(num_classes)]
    crossval_ap, test_scores, not_converged = SVM_SOLVERS[solver](
        train_features, targets, class_folds, test_features, costs, resolve_jobs(n_jobs), progress)
    ap = np.array([voc_average_precision(test_labels[:, column], test_scores[:, column])
                   for column in range(num_classes)]) * 100.0
    return {
        "mAP": float(ap.mean()),
        "ap": ap.tolist(),
        "cost": choose_costs(crossval_ap, costs),
        "crossval_ap": (crossval_ap * 100.0).tolist(),
        "not_converged": not_converged,
    }
