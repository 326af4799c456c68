"""What every classification task run starts and ends with: its config, process context, backbone, cached
features, and the ``results.json`` it writes (metrics, the protocol values used, baseline flag)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.backbone import LoadedBackbone, load_backbone
from core.config import config_to_dict, load_config, resolve_config_file, shipped_config_dir
from core.distributed import DistributedContext, init_distributed
from core.lock import OutputLock
from core.results import TaskResult, write_result
from transfer.classification.features import cached_features, layer_channels, pooled_positions
from transfer.classification.skipped_images import SkippedImages
from transfer.registry import Engine, TaskRun, TaskSpec, register_engine

logger = logging.getLogger(__name__)
CONFIG_DIR = shipped_config_dir(__file__)  # the task configs (configs/transfer in the repository)
ENGINE = register_engine(Engine("pytorch", available=lambda: True)).name  # frozen features, heads, SVMs


def load_task_config(cls: type, spec: TaskSpec, run: TaskRun, settings: dict[str, Any] | None = None) -> Any:
    """``cls`` from the task's config file (``run.config_file`` or the spec's), then ``settings`` (the run's seed
    and cache folder, typed), then the run's own overrides."""
    if run.config_file:
        path = resolve_config_file(run.config_file, spec.config.parent if spec.config else Path.cwd())
    elif spec.config is not None:
        path = spec.config
    else:
        raise FileNotFoundError(f"task {spec.name} has no config file; pass one")
    return load_config(cls, path, run.overrides, settings)


def feature_dim(layer: str, arch: str, image_size: int) -> int:
    """Width of the features a head or SVM sees: channels of the pooled stage x pooled positions."""
    return layer_channels(layer, arch) * pooled_positions(layer, image_size)


class TaskSetup:
    """Config, process context and backbone of one run of a frozen-feature or linear task."""

    def __init__(self, cls: type, spec: TaskSpec, run: TaskRun) -> None:
        self.started = time.time()
        self.spec, self.run = spec, run
        self.output_dir = Path(run.output_dir)
        settings: dict[str, Any] = {"seed": run.seed} if run.seed is not None and "seed" in cls.__dataclass_fields__ else {}
        if run.cache_dir is not None:
            settings["features.cache_dir"] = str(run.cache_dir)
        self.config = load_task_config(cls, spec, run, settings)
        self.context: DistributedContext = init_distributed()
        self.output_lock = OutputLock(self.output_dir, spec.name, self.context)  # held while this run exists
        self.loaded: LoadedBackbone = load_backbone(run.weights, run.arch, random_init=run.weights is None,
                                                    stem=run.stem)
        self.skipped = SkippedImages()

    def features(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels of the readable images of ``split`` (extracted once, then from the cache)."""
        config = self.config.features
        cache_root = config.cache_dir or str(self.output_dir / "feature_cache")
        cached = cached_features(self.loaded, self.run.arch, self.config.dataset, str(self.run.data_root), split,
                                 config, cache_root, self.context.device, self.context.rank,
                                 self.context.world_size, progress=self.context.is_main, skipped=self.skipped)
        return cached.valid_rows()

    def feature_protocol(self, image_size: int | None = None) -> dict[str, Any]:
        """The protocol facts every classification run shares: backbone, stem, feature layer and width, image size."""
        layer = self.config.features.layer
        size = image_size or self.config.features.image_size
        return {"arch": self.run.arch, "stem": self.loaded.stem, "feature_layer": layer,
                "feature_dim": feature_dim(layer, self.run.arch, size),
                "image_size": size, "processes": self.context.world_size}

    def config_dict(self, **extra: Any) -> dict[str, Any]:
        return {**config_to_dict(self.config), "arch": self.run.arch, "weights_format": self.loaded.source_format,
                **({"weights_source": self.loaded.source} if self.loaded.source else {}),
                **self.skipped.result_fields(), **extra}

    def write(self, split: str, metrics: dict[str, float], protocol: dict[str, Any], config: dict[str, Any],
              **fields: Any) -> TaskResult:
        """Builds the result and writes ``output_dir/results.json`` (on the main process)."""
        result = TaskResult(task=self.spec.name, dataset=self.config.dataset, split=split, weights=self.loaded.weights,
                            metrics=metrics, weights_sha256=self.loaded.weights_sha256, config=config,
                            protocol=protocol, baseline=self.run.baseline or self.run.weights is None,
                            wall_time_s=round(time.time() - self.started, 3), **fields)
        if self.context.is_main:
            write_result(result, self.output_dir / "results.json")
        return result
