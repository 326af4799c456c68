"""The classification transfer tasks, one function each, in the registry ``CLASSIFICATION_TASKS``.

Every task has the signature ``task(weights, data_root, output_dir, arch="resnet50", random_init=False,
config_path=None, overrides=(), **overrides) -> TaskResult``: it reads its protocol from
``configs/transfer/<task>.yaml`` (or ``config_path``), applies ``key=value`` overrides (and keyword
overrides, dotted keys via ``**{"features.batch_size": 8}``), runs, and writes
``output_dir/results.json`` (``core.results`` schema). ``data_root`` is the data set's own root.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from core.config import config_to_dict, load_config, resolve_config_file, shipped_config_dir
from core.distributed import DistributedContext, init_distributed
from core.lock import OutputLock
from core.backbone import LoadedBackbone, load_backbone
from transfer.classification.datasets import build_dataset
from transfer.classification.features import FeatureConfig, cached_features
from core.knn import knn_top1
from transfer.classification.linear import LinearConfig, train_linear
from transfer.classification.lowshot import LOWSHOT_K_VALUES, run_lowshot_svm
from core.results import TaskResult, write_result
from transfer.classification.svm import VOC07_COSTS, train_and_test_svm

CONFIG_DIR = shipped_config_dir(__file__)
logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SVMTaskConfig:
    """VOC07 / COCO SVMs on cached features."""

    dataset: str = "voc2007"
    train_split: str = "trainval"
    test_split: str = "test"
    costs: list[float] = dataclasses.field(default_factory=lambda: list(VOC07_COSTS))
    folds: int = 3
    n_jobs: int = -1  # -1: all cores
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)


@dataclasses.dataclass
class LowShotTaskConfig(SVMTaskConfig):
    """Low-shot VOC07 SVMs: k positives per class, ``num_draws`` independent draws."""

    k_values: list[int] = dataclasses.field(default_factory=lambda: list(LOWSHOT_K_VALUES))
    num_draws: int = 5
    seed: int = 0


@dataclasses.dataclass
class KnnTaskConfig:
    """Weighted kNN top-1 on cached features of two splits."""

    dataset: str = "imagenet"
    train_split: str = "train"
    val_split: str = "val"
    k: int = 20
    temperature: float = 0.07
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)


@dataclasses.dataclass
class LinearTaskConfig(LinearConfig):
    """A linear or semi-supervised protocol on one data set; ``report`` picks best-epoch or last-epoch accuracy."""

    dataset: str = "places205"
    report: str = "best"


def load_task_config(cls: type, task: str, config_path: str | Path | None, overrides: Sequence[str],
                     keyword_overrides: dict[str, Any]) -> Any:
    """``cls`` from the task's YAML plus overrides (keyword values are written as YAML/JSON)."""
    path = resolve_config_file(config_path, CONFIG_DIR) if config_path else CONFIG_DIR / f"{task}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"config of task {task!r} not found: {path}")
    all_overrides = [*overrides, *(f"{key}={json.dumps(value)}" for key, value in keyword_overrides.items())]
    return load_config(cls, path, all_overrides)


def current_context() -> DistributedContext:
    """The ``torchrun`` context (joining the process group on first use), or a single process."""
    return init_distributed()


def _write(task: str, dataset: str, split: str, loaded: LoadedBackbone, metrics: dict[str, float],
           config: dict[str, Any], output_dir: Path, started: float, context: DistributedContext,
           **fields: Any) -> TaskResult:
    """Builds the TaskResult and writes ``output_dir/results.json`` (on the main process)."""
    result = TaskResult(task=task, dataset=dataset, split=split, weights=loaded.weights, metrics=metrics,
                        weights_sha256=loaded.weights_sha256, config=config,
                        wall_time_s=round(time.time() - started, 3), **fields)
    if context.is_main:
        write_result(result, output_dir / "results.json")
    return result


def _classes_with_positives(train_labels: np.ndarray, test_labels: np.ndarray, minimum: int) -> np.ndarray:
    """Columns with at least ``minimum`` positive training images and one positive test image."""
    return np.flatnonzero(((train_labels == 1).sum(axis=0) >= minimum) & ((test_labels == 1).sum(axis=0) >= 1))


class _Run:
    """What every frozen-feature task starts with: config, context, backbone, output folder, clock."""

    def __init__(self, cls: type, task: str, weights, arch: str, random_init: bool, output_dir, config_path,
                 overrides: Sequence[str], keyword_overrides: dict[str, Any]) -> None:
        self.started = time.time()
        self.task, self.arch, self.output_dir = task, arch, Path(output_dir)
        self.config = load_task_config(cls, task, config_path, overrides, keyword_overrides)
        self.context = current_context()
        self.output_lock = OutputLock(self.output_dir, task, self.context)  # held while this run exists
        self.loaded = load_backbone(weights, arch, random_init)

    def features(self, data_root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        config = self.config.features
        cache_root = config.cache_dir or str(self.output_dir / "feature_cache")
        cached = cached_features(self.loaded, self.arch, self.config.dataset, data_root, split, config, cache_root,
                                 self.context.device, self.context.rank, self.context.world_size,
                                 progress=self.context.is_main)
        return cached.valid_rows()

    def config_dict(self, **extra: Any) -> dict[str, Any]:
        return {**config_to_dict(self.config), "arch": self.arch, "weights_format": self.loaded.source_format, **extra}

    def write(self, split: str, metrics: dict[str, float], config: dict[str, Any], **fields: Any) -> TaskResult:
        return _write(self.task, self.config.dataset, split, self.loaded, metrics, config, self.output_dir,
                      self.started, self.context, **fields)


def _svm_task(task: str, weights, data_root: str, output_dir, arch: str, random_init: bool, config_path,
              overrides: Sequence[str], keyword_overrides: dict[str, Any]) -> TaskResult:
    run = _Run(SVMTaskConfig, task, weights, arch, random_init, output_dir, config_path, overrides, keyword_overrides)
    config = run.config
    train_x, train_y = run.features(data_root, config.train_split)
    test_x, test_y = run.features(data_root, config.test_split)
    classes = build_dataset(config.dataset, data_root, config.test_split).classes
    kept = _classes_with_positives(train_y, test_y, config.folds)
    left_out = [name for column, name in enumerate(classes) if column not in set(kept.tolist())]
    if left_out:
        logger.warning("%s: classes without enough positive images are left out of the mAP: %s", task, left_out)
    svm = train_and_test_svm(train_x, train_y[:, kept], test_x, test_y[:, kept], config.costs, config.folds,
                             None if config.n_jobs < 0 else config.n_jobs, progress=run.context.is_main)
    names = [classes[column] for column in kept]
    per_class = {"ap": dict(zip(names, svm["ap"])), "cost": dict(zip(names, svm["cost"]))}
    extra = {"classes_left_out": left_out, "not_converged_fits": svm["not_converged"]}
    return run.write(config.test_split, {"mAP": svm["mAP"]}, run.config_dict(**extra), layer=config.features.layer,
                     per_class=per_class)


def run_voc07_svm(weights: str | None, data_root: str, output_dir: str, arch: str = "resnet50",
                  random_init: bool = False, config_path: str | None = None, overrides: Sequence[str] = (),
                  **keyword_overrides: Any) -> TaskResult:
    """VOC07 linear SVMs (train on trainval, test mAP on test), VISSL protocol."""
    return _svm_task("voc07_svm", weights, data_root, output_dir, arch, random_init, config_path, overrides,
                     keyword_overrides)


def run_coco14_svm(weights: str | None, data_root: str, output_dir: str, arch: str = "resnet50",
                   random_init: bool = False, config_path: str | None = None, overrides: Sequence[str] = (),
                   **keyword_overrides: Any) -> TaskResult:
    """COCO2014 linear SVMs (train on train2014, test mAP on val2014), VISSL protocol."""
    return _svm_task("coco14_svm", weights, data_root, output_dir, arch, random_init, config_path, overrides,
                     keyword_overrides)


def run_voc07_lowshot_svm(weights: str | None, data_root: str, output_dir: str, arch: str = "resnet50",
                          random_init: bool = False, config_path: str | None = None, overrides: Sequence[str] = (),
                          **keyword_overrides: Any) -> TaskResult:
    """Low-shot VOC07 SVMs: mean (and std/min/max) mAP over draws for each k."""
    run = _Run(LowShotTaskConfig, "voc07_lowshot_svm", weights, arch, random_init, output_dir, config_path,
               overrides, keyword_overrides)
    config = run.config
    train_x, train_y = run.features(data_root, config.train_split)
    test_x, test_y = run.features(data_root, config.test_split)
    kept = _classes_with_positives(train_y, test_y, max(config.k_values))
    summary = run_lowshot_svm(train_x, train_y[:, kept], test_x, test_y[:, kept], config.k_values, config.num_draws,
                              config.costs, config.seed, None if config.n_jobs < 0 else config.n_jobs,
                              progress=run.context.is_main)
    metrics: dict[str, float] = {}
    for k, stats in summary.items():
        metrics[f"mAP@k{k}"] = stats["mean"]
        for name in ("std", "min", "max"):
            metrics[f"mAP@k{k}_{name}"] = stats[name]
    per_class = {"cost": {f"k{k}": stats["cost"] for k, stats in summary.items()}}
    return run.write(config.test_split, metrics, run.config_dict(num_classes_used=int(len(kept))),
                     layer=config.features.layer, per_class=per_class, seed=config.seed)


def run_knn(weights: str | None, data_root: str, output_dir: str, arch: str = "resnet50", random_init: bool = False,
            config_path: str | None = None, overrides: Sequence[str] = (), **keyword_overrides: Any) -> TaskResult:
    """Weighted kNN (k=20, cosine, T=0.07) top-1 on cached features of ``dataset``."""
    run = _Run(KnnTaskConfig, "knn", weights, arch, random_init, output_dir, config_path, overrides, keyword_overrides)
    config = run.config
    train_x, train_y = run.features(data_root, config.train_split)
    val_x, val_y = run.features(data_root, config.val_split)
    if train_y.ndim != 1:
        raise ValueError(f"knn needs a single-label data set, {config.dataset} is multi-label")
    top1 = knn_top1(torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(val_x),
                    torch.from_numpy(val_y), config.k, config.temperature)
    return run.write(config.val_split, {"top1": top1}, run.config_dict(), layer=config.features.layer)


def _linear_task(task: str) -> Callable[..., TaskResult]:
    def run_task(weights: str | None, data_root: str, output_dir: str, arch: str = "resnet50",
                 random_init: bool = False, config_path: str | None = None, overrides: Sequence[str] = (),
                 **keyword_overrides: Any) -> TaskResult:
        run = _Run(LinearTaskConfig, task, weights, arch, random_init, output_dir, config_path, overrides,
                   keyword_overrides)
        config = run.config
        if config.report not in ("best", "last"):
            raise ValueError(f"config key 'report' must be 'best' or 'last', got {config.report!r}")
        if config.train_subset and not Path(config.train_subset).is_absolute():
            config.train_subset = str(Path(data_root) / config.train_subset)
        outcome = train_linear(config, run.loaded, arch, config.dataset, data_root, run.output_dir, run.context,
                               progress=run.context.is_main)
        metrics = {key: float(value) for key, value in outcome[config.report].items()}
        return run.write(config.val_split, metrics, run.config_dict(last_epoch=outcome["last"], best=outcome["best"]),
                         layer=config.features.layer, curves=outcome["curves"], seed=config.seed)

    run_task.__name__ = f"run_{task}"
    run_task.__doc__ = f"The {task} protocol (configs/transfer/{task}.yaml): top-1/top-5 on the validation split."
    return run_task


CLASSIFICATION_TASKS: dict[str, Callable[..., TaskResult]] = {
    "voc07_svm": run_voc07_svm,
    "voc07_lowshot_svm": run_voc07_lowshot_svm,
    "coco14_svm": run_coco14_svm,
    **{task: _linear_task(task) for task in ("places205_linear", "places365_linear", "inat18_linear",
                                             "imagenet_linear", "imagenet_semisup_1pct", "imagenet_semisup_10pct")},
    "knn": run_knn,
}
