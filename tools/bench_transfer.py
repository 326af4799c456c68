#!/usr/bin/env python
"""Benchmarks the classification-transfer hot spots (a script, not a test).

1. VOC07 SVM sweep: ``transfer.svm.train_and_test_svm`` against the straightforward sequential loop
   (VISSL's ``SVMTrainer``: per class and cost, ``cross_val_score`` over 3 folds plus a fit on all
   training data; test with the chosen cost) on a VOC07-sized synthetic problem (5011 train / 4952 test
   images, 2048-d ReLU features, 20 multi-label classes, 11 costs). Reports both times, the ratio and
   both mAPs (they must agree within 0.1).
2. Feature extraction throughput (images/s) of ``transfer.features`` on random images.

    python tools/bench_transfer.py [--train 5011] [--test 4952] [--dim 2048] [--n-jobs N] [--skip-sequential]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402

from transfer.average_precision import voc_average_precision  # noqa: E402
from transfer.svm import VOC07_COSTS, make_linear_svc, normalize_features, svm_targets, train_and_test_svm  # noqa: E402


def synthetic_voc(num_images: int, dim: int, num_classes: int, seed: int,
                  prototypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative (post-ReLU-like) features with class signal, and 1/0/-1 multi-label targets (~1.5 labels/image)."""
    rng = np.random.default_rng(seed)
    prevalence = np.linspace(0.02, 0.25, num_classes)
    labels = (rng.random((num_images, num_classes)) < prevalence).astype(np.int64)
    unlabelled = labels.sum(axis=1) == 0
    labels[unlabelled, rng.integers(0, num_classes, unlabelled.sum())] = 1
    shared = rng.standard_normal((num_images, 64)) @ rng.standard_normal((64, dim)) / 8
    features = np.maximum(0.15 * labels @ prototypes + shared + rng.standard_normal((num_images, dim)), 0)
    difficult = (labels == 0) & (rng.random(labels.shape) < 0.01)
    labels[difficult] = -1
    return features.astype(np.float32), labels


def sequential_reference(train_features, train_labels, test_features, test_labels, costs, folds=3) -> dict:
    """VISSL's straightforward loop: every (class, cost) gets cross_val_score + a full fit; one process."""
    train_features, test_features = normalize_features(train_features), normalize_features(test_features)
    ap = []
    for column in range(train_labels.shape[1]):
        targets = svm_targets(train_labels[:, column])
        models, crossval = [], []
        for cost in costs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                crossval.append(cross_val_score(make_linear_svc(cost), train_features, targets, cv=folds,
                                                scoring="average_precision").mean())
                models.append(make_linear_svc(cost).fit(train_features, targets))
        best = models[int(np.argmax(crossval))]
        ap.append(voc_average_precision(test_labels[:, column], best.decision_function(test_features)))
    return {"mAP": 100.0 * float(np.mean(ap))}


def bench_svm(args: argparse.Namespace) -> dict:
    prototypes = np.random.default_rng(123).standard_normal((args.classes, args.dim))
    train = synthetic_voc(args.train, args.dim, args.classes, 1, prototypes)
    test = synthetic_voc(args.test, args.dim, args.classes, 2, prototypes)
    start = time.perf_counter()
    fast = train_and_test_svm(*train, *test, costs=VOC07_COSTS, n_jobs=args.n_jobs, progress=False)
    fast_seconds = time.perf_counter() - start
    result = {"fast_seconds": round(fast_seconds, 1), "fast_mAP": round(fast["mAP"], 3),
              "not_converged_fits": fast["not_converged"]}
    if not args.skip_sequential:
        start = time.perf_counter()
        reference = sequential_reference(*train, *test, costs=VOC07_COSTS)
        result["sequential_seconds"] = round(time.perf_counter() - start, 1)
        result["sequential_mAP"] = round(reference["mAP"], 3)
        result["speedup"] = round(result["sequential_seconds"] / fast_seconds, 2)
        result["mAP_difference"] = round(abs(reference["mAP"] - fast["mAP"]), 4)
    return result


def bench_features(args: argparse.Namespace) -> dict:
    import torch

    from pretrain.model import build_backbone
    from transfer.features import FeatureExtractor

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    extractor = FeatureExtractor(build_backbone(args.arch), layer="res5", device=device)
    images = torch.randn(args.feature_batch, 3, args.image_size, args.image_size)
    extractor(images[:2])  # warm-up
    start = time.perf_counter()
    for _ in range(args.feature_batches):
        extractor(images)
    seconds = time.perf_counter() - start
    return {"arch": args.arch, "device": str(device), "image_size": args.image_size, "batch": args.feature_batch,
            "images_per_second": round(args.feature_batches * args.feature_batch / seconds, 1),
            "note": "model forward only (decoding excluded)"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=5011)
    parser.add_argument("--test", type=int, default=4952)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--skip-features", action="store_true")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--feature-batch", type=int, default=16)
    parser.add_argument("--feature-batches", type=int, default=4)
    args = parser.parse_args(argv)
    report = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "svm": bench_svm(args)}
    print(json.dumps(report, indent=2), flush=True)
    if not args.skip_features:
        report["features"] = bench_features(args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
