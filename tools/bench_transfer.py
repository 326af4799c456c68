#!/usr/bin/env python
"""Benchmarks the classification-transfer hot spots (a script, not a test).

1. VOC07 SVM sweep: ``transfer.classification.svm.train_and_test_svm`` (``--solver``, default the batched ``newton``)
   against the straightforward sequential loop (VISSL's ``SVMTrainer`` run in one process: per class and cost, ``cross_val_score`` over 3 folds plus a
   fit on all training data; test with the chosen cost) on a VOC07-sized synthetic problem (5011 train /
   4952 test images, 2048-d non-negative features, 20 multi-label classes with difficult-only labels,
   11 costs, 3 folds). Reported: wall seconds of both (the fast one with ``--n-jobs`` workers), their
   ratio, both mAPs and their difference (must be <= 0.1), and on how many classes they chose the same
   cost. With ``--single-process`` the fast path also runs in one process, and the CPU-time ratio of the two single-process runs (robust to other load on
   a shared machine) separates the work removed from the gain of parallel workers.
   ``--sequential-classes K`` times the sequential loop on the first K classes only and extrapolates its
   time linearly to all classes; the output then says ``"sequential_extrapolated": true`` and compares
   the mAP on those K classes.
2. Feature extraction throughput (images/s) of ``transfer.classification.features`` on this machine's device: the
   frozen trunk's forward pass alone on random tensors, and end to end (JPEG decoding, test transform,
   forward, float16 cache writes) over generated 500x375 JPEGs.

    python tools/bench_transfer.py [--solver newton|liblinear] [--n-jobs 2] [--single-process]
                                   [--sequential-classes K] [--skip-features]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402

from transfer.classification.average_precision import voc_average_precision  # noqa: E402
from transfer.classification.svm import (SVM_SOLVERS, VOC07_COSTS, make_linear_svc, normalize_features, resolve_jobs,  # noqa: E402
                          svm_targets,
                          train_and_test_svm)


def machine_description() -> dict:
    """CPU model, usable cores and load (the machine may be shared: load > cores means contention)."""
    model = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "usable_cores": len(os.sched_getaffinity(0)), "load_average": os.getloadavg()}


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


def sequential_reference(train_features, train_labels, test_features, test_labels, costs,
                         folds=3) -> tuple[list[float], list[float]]:
    """VISSL's straightforward loop in one process: every (class, cost) gets cross_val_score + a full fit.

    Returns the test AP (percent) and the chosen cost of each class of ``train_labels``.
    """
    train_features, test_features = normalize_features(train_features), normalize_features(test_features)
    ap, chosen = [], []
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
        chosen.append(float(costs[int(np.argmax(crossval))]))
        ap.append(100.0 * voc_average_precision(test_labels[:, column], best.decision_function(test_features)))
    return ap, chosen


def _timed(function, *args, **kwargs) -> tuple[object, float, float]:
    """``function(*args, **kwargs)``, its wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bench_svm(args: argparse.Namespace) -> dict:
    prototypes = np.random.default_rng(123).standard_normal((args.classes, args.dim))
    train = synthetic_voc(args.train, args.dim, args.classes, 1, prototypes)
    test = synthetic_voc(args.test, args.dim, args.classes, 2, prototypes)
    result: dict = {"problem": f"{args.train} train / {args.test} test x {args.dim}-d, {args.classes} classes, "
                               f"{len(VOC07_COSTS)} costs, 3 folds"}
    fast, fast_wall, fast_cpu = _timed(train_and_test_svm, *train, *test, costs=VOC07_COSTS, n_jobs=args.n_jobs,
                                       progress=False, solver=args.solver)
    result["fast"] = {"solver": args.solver, "n_jobs": resolve_jobs(args.n_jobs), "wall_s": round(fast_wall, 1),
                      "cpu_s": round(fast_cpu, 1), "mAP": round(fast["mAP"], 3),
                      "not_converged_fits": fast["not_converged"]}
    if args.single_process:
        single, single_wall, single_cpu = _timed(train_and_test_svm, *train, *test, costs=VOC07_COSTS, n_jobs=1,
                                                 progress=False, solver=args.solver)
        result["fast_single_process"] = {"wall_s": round(single_wall, 1), "cpu_s": round(single_cpu, 1),
                                         "mAP": round(single["mAP"], 3)}
    if args.skip_sequential:
        return result
    classes = args.sequential_classes or args.classes
    subset = slice(0, classes)
    (reference, reference_costs), sequential_wall, sequential_cpu = _timed(
        sequential_reference, train[0], train[1][:, subset], test[0], test[1][:, subset], VOC07_COSTS)
    scale = args.classes / classes
    sequential_map, fast_map = float(np.mean(reference)), float(np.mean(fast["ap"][subset]))
    result["sequential"] = {
        "classes_timed": classes, "sequential_extrapolated": classes < args.classes,
        "wall_s": round(sequential_wall * scale, 1), "cpu_s": round(sequential_cpu * scale, 1),
        "mAP_on_timed_classes": round(sequential_map, 3), "fast_mAP_on_timed_classes": round(fast_map, 3),
        "mAP_difference": round(abs(sequential_map - fast_map), 4),
        "max_class_ap_difference": round(float(np.max(np.abs(np.array(reference) - np.array(fast["ap"][subset])))), 4),
        "same_chosen_cost": f"{sum(a == b for a, b in zip(reference_costs, fast['cost'][subset]))} of {classes}"}
    result["speedup_wall"] = round(sequential_wall * scale / fast_wall, 2)
    if args.single_process:
        result["speedup_cpu_single_process"] = round(sequential_cpu * scale / result["fast_single_process"]["cpu_s"], 2)
    return result


def _write_jpegs(directory: Path, count: int) -> None:
    """``count`` generated 500x375 JPEGs in one ImageFolder class (smooth colour fields plus texture)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (directory / "class0").mkdir(parents=True)
    for index in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((500, 375), Image.BICUBIC)
        noise = rng.integers(-20, 21, (375, 500, 3))
        image = Image.fromarray(np.clip(np.asarray(coarse, dtype=np.int64) + noise, 0, 255).astype(np.uint8))
        image.save(directory / "class0" / f"{index:05d}.jpg", quality=90)


def bench_features(args: argparse.Namespace) -> dict:
    import torch

    from core.backbone import build_backbone
    from transfer.classification.datasets import build_dataset
    from transfer.classification.feature_cache import FeatureCache
    from transfer.classification.features import FeatureExtractor, evaluation_transform, extract_to_cache

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    extractor = FeatureExtractor(build_backbone(args.arch), layer="res5", device=device)
    images = torch.randn(args.feature_batch, 3, args.image_size, args.image_size)
    extractor(images)  # warm-up (same shape as the timed batches)
    start = time.perf_counter()
    for _ in range(args.feature_batches):
        extractor(images)
    forward = args.feature_batches * args.feature_batch / (time.perf_counter() - start)
    count = args.feature_batches * args.feature_batch
    with tempfile.TemporaryDirectory(prefix="bench-features-") as directory:
        _write_jpegs(Path(directory) / "images", count)
        dataset = build_dataset("imagefolder", Path(directory) / "images", "",
                                evaluation_transform("center_crop", args.image_size))
        cache = FeatureCache(Path(directory) / "cache", {"bench": True})
        start = time.perf_counter()
        extract_to_cache(extractor, dataset, cache, batch_size=args.feature_batch, num_workers=args.workers,
                         dtype="float16", progress=False)
        end_to_end = count / (time.perf_counter() - start)
    return {"arch": args.arch, "device": str(device), "torch_threads": torch.get_num_threads(),
            "image_size": args.image_size, "batch": args.feature_batch, "images": count,
            "forward_images_per_s": round(forward, 1), "end_to_end_images_per_s": round(end_to_end, 1),
            "end_to_end": f"500x375 JPEG decode + center_crop transform + forward + float16 cache, "
                          f"{args.workers} loader workers"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=5011)
    parser.add_argument("--test", type=int, default=4952)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="threads (newton) or processes (liblinear) of the fast path (default: all cores)")
    parser.add_argument("--solver", default="newton", choices=sorted(SVM_SOLVERS), help="solver of the fast path")
    parser.add_argument("--single-process", action="store_true", help="also time the fast path with n_jobs=1")
    parser.add_argument("--sequential-classes", type=int, default=0,
                        help="time the sequential loop on this many classes and extrapolate (0: all)")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--skip-svm", action="store_true")
    parser.add_argument("--skip-features", action="store_true")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--feature-batch", type=int, default=16)
    parser.add_argument("--feature-batches", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of the end-to-end extraction")
    args = parser.parse_args(argv)
    report = {"machine": machine_description()}
    if not args.skip_svm:
        report["svm"] = bench_svm(args)
        print(json.dumps(report, indent=2), flush=True)
    if not args.skip_features:
        report["features"] = bench_features(args)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
