"""Weighted kNN top-1 on frozen features (DINO's ``eval_knn.py`` vote; not in the Barlow Twins paper)."""

from __future__ import annotations

import dataclasses

import torch

from core.config import require_value
from core.knn import knn_top1
from core.results import TaskResult
from transfer.catalog import IMAGENET
from transfer.classification.features import FeatureConfig
from transfer.classification.task_setup import CONFIG_DIR, ENGINE, TaskSetup
from transfer.protocol import Protocol
from transfer.registry import TaskRun, TaskSpec, register_task


@dataclasses.dataclass
class KnnTaskConfig:
    """Weighted kNN top-1 on cached features of two splits."""

    dataset: str = "imagenet"
    train_split: str = "train"
    val_split: str = "val"
    k: int = 20
    temperature: float = 0.07
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)

    def __post_init__(self) -> None:
        require_value(self.k >= 1, "k", self.k, ">= 1")
        require_value(self.temperature > 0, "temperature", self.temperature, "> 0")


def run_knn(spec: TaskSpec, run: TaskRun) -> TaskResult:
    """k nearest training images (cosine) vote with weight exp(similarity / T); top-1 on the validation split."""
    setup = TaskSetup(KnnTaskConfig, spec, run)
    config = setup.config
    train_x, train_y = setup.features(config.train_split)
    val_x, val_y = setup.features(config.val_split)
    if train_y.ndim != 1:
        raise ValueError(f"{spec.name} needs a single-label data set, {config.dataset} is multi-label")
    top1 = knn_top1(torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(val_x),
                    torch.from_numpy(val_y), config.k, config.temperature)
    protocol = {**setup.feature_protocol(), "knn_k": config.k, "knn_temperature": config.temperature}
    return setup.write(config.val_split, {"top1": top1}, protocol, setup.config_dict(), layer=config.features.layer)


register_task(TaskSpec(
    name="knn",
    description="Weighted kNN (k=20, T=0.07) top-1 on ImageNet val, frozen 2048-d features",
    datasets=(IMAGENET,),
    metrics=("top1",),
    runners={ENGINE: run_knn},
    protocol=Protocol({"arch": "resnet50", "feature_layer": "res5", "feature_dim": 2048, "image_size": 224,
                       "knn_k": 20, "knn_temperature": 0.07},
                      "DINO eval_knn.py (k=20, T=0.07); the paper reports no kNN"),
    config=CONFIG_DIR / "knn.yaml",
    compared_with_baseline=True,
))
