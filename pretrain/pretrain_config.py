"""Options of the pretraining stage, loaded with ``core.config.load_config(PretrainConfig, yaml, overrides)``.

Defaults are the paper's ImageNet recipe (Zbontar et al., 2021, Sec. 3 "Implementation details"): ResNet-50,
projector 8192-8192-8192, lambda 0.0051, LARS, 1000 epochs, batch 2048, base learning rates 0.2 (weights)
and 0.0048 (biases and BatchNorm) scaled by batch/256, 10 warm-up epochs then cosine decay to 1/1000,
weight decay 1.5e-6. The official ``main.py`` defaults to weight decay 1e-6 instead; see docs/pretraining.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from core.backbone import BACKBONES
from core.config import shipped_config_dir

CONFIG_DIR = shipped_config_dir(__file__)  # the shipped recipes (configs/pretrain in the repository)
PROJECTOR_PATTERN = re.compile(r"^[1-9][0-9]*(-[1-9][0-9]*)*$")


@dataclass
class ModelConfig:
    """The Barlow Twins network."""

    arch: str = "resnet50"
    stem: Literal["imagenet", "small"] = "imagenet"  # small: 3x3 stride-1 conv1, no max-pool (images <= 96 px)
    projector: str = "8192-8192-8192"
    lambd: float = 0.0051
    scale_loss: float = 1.0  # multiplies the loss (solo-learn's scale_loss); 1 = the paper's loss

    def __post_init__(self) -> None:
        _require(self.scale_loss > 0, "model.scale_loss", self.scale_loss, "> 0")
        if self.arch not in BACKBONES:
            raise ValueError(f"config key 'model.arch' has value {self.arch!r}, expected one of {', '.join(BACKBONES)}")
        if not PROJECTOR_PATTERN.match(self.projector):
            raise ValueError(f"model.projector must be positive widths joined by '-', e.g. 8192-8192-8192; "
                             f"got {self.projector!r}")
        _require(self.lambd >= 0, "model.lambd", self.lambd, ">= 0")


@dataclass
class OptimConfig:
    """LARS and the per-step learning-rate schedule (``pretrain.schedule``)."""

    lr_weights: float = 0.2
    lr_biases: float = 0.0048
    weight_decay: float = 1.5e-6  # paper value; official main.py default is 1e-6
    momentum: float = 0.9
    eta: float = 0.001
    warmup_epochs: int = 10
    end_factor: float = 0.001
    clip_lr: bool = False  # solo-learn's LARS clipping (see pretrain.optim); the official code has none

    def __post_init__(self) -> None:
        for name in ("lr_weights", "lr_biases", "weight_decay", "momentum", "eta", "warmup_epochs", "end_factor"):
            _require(getattr(self, name) >= 0, f"optim.{name}", getattr(self, name), ">= 0")


@dataclass
class DataConfig:
    """Training images: an ImageFolder tree (ImageNet ``train/``), a flat folder of images, or a shard folder
    (``tools/make_shards.py``), and the loader that reads them."""

    root: str = "data/imagenet/train"
    image_size: int = 224
    workers: int = 8
    loader: Literal["torch", "dali"] = "torch"  # dali: decode + augment on the GPU (pip install .[dali])
    shuffle_buffer: int = 1000  # shard sets: samples in each reader's shuffle buffer
    dali_threads: int = 4  # dali: CPU threads per process (reading, and decoding on CPU-only machines)

    def __post_init__(self) -> None:
        _require(self.image_size >= 8, "data.image_size", self.image_size, ">= 8")
        _require(self.workers >= 0, "data.workers", self.workers, ">= 0")
        _require(self.shuffle_buffer >= 1, "data.shuffle_buffer", self.shuffle_buffer, ">= 1")
        _require(self.dali_threads >= 1, "data.dali_threads", self.dali_threads, ">= 1")


@dataclass
class AugmentConfig:
    """The two views' augmentations (``pretrain.transforms``); defaults are the paper's ImageNet values."""

    crop_min_scale: float = 0.08
    blur_probability: tuple[float, float] = (1.0, 0.1)  # view 1, view 2
    solarize_probability: tuple[float, float] = (0.0, 0.2)

    def __post_init__(self) -> None:
        _require(0 < self.crop_min_scale <= 1, "augment.crop_min_scale", self.crop_min_scale, "in (0, 1]")
        for name in ("blur_probability", "solarize_probability"):
            values = getattr(self, name)
            _require(len(values) == 2 and all(0 <= value <= 1 for value in values), f"augment.{name}", values,
                     "two probabilities in [0, 1] (view 1, view 2)")


@dataclass
class KnnConfig:
    """Optional kNN monitor of the backbone during training (``pretrain.knn_monitor.KnnMonitor``)."""

    every_epochs: int = 0  # 0 = off
    train_root: str | None = None
    val_root: str | None = None
    image_size: int | None = None  # None = data.image_size
    batch_size: int = 256
    k: int = 20
    temperature: float = 0.07

    def __post_init__(self) -> None:
        _require(self.every_epochs >= 0, "knn.every_epochs", self.every_epochs, ">= 0 (0 = off)")
        if self.every_epochs and not (self.train_root and self.val_root):
            raise ValueError("knn.every_epochs > 0 needs knn.train_root and knn.val_root (ImageFolder trees)")


@dataclass
class ProbeConfig:
    """Online linear probe on labelled data (``pretrain.online_probe``): top-1 on a held-out split per epoch."""

    enabled: bool = True  # only acts when the training data has labels and a held-out split
    val_root: str | None = None  # ImageFolder held-out split; None = the sibling 'val' of data.root
    every_epochs: int = 1
    lr: float = 0.1
    batch_size: int = 256

    def __post_init__(self) -> None:
        _require(self.every_epochs >= 1, "probe.every_epochs", self.every_epochs, ">= 1")
        _require(self.lr > 0, "probe.lr", self.lr, "> 0")
        _require(self.batch_size >= 1, "probe.batch_size", self.batch_size, ">= 1")


@dataclass
class PretrainConfig:
    """Everything one pretraining run needs; the resolved copy is saved to ``output_dir/config.yaml``."""

    output_dir: str = "output/pretrain"
    epochs: int = 1000
    batch_size: int = 2048  # global, over all processes
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = True  # GPU only
    compile: bool = False
    log_every: int = 100  # steps between stats lines (the only host-device syncs)
    checkpoint_every_steps: int = 1000
    checkpoint_every_epochs: int = 1  # at these epoch ends too (and always after the last epoch)
    progress_bar: bool = True
    tensorboard: bool = True
    stop_after_steps: int | None = None  # debug: stop (as if pre-empted) after this many steps in this process
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "log_every", "checkpoint_every_steps", "checkpoint_every_epochs"):
            _require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        if self.stop_after_steps is not None:
            _require(self.stop_after_steps >= 1, "stop_after_steps", self.stop_after_steps, ">= 1 or null")
        if self.epochs <= self.optim.warmup_epochs:
            raise ValueError(f"epochs ({self.epochs}) must exceed optim.warmup_epochs ({self.optim.warmup_epochs})")


def _require(condition: bool, key: str, value: object, expectation: str) -> None:
    if not condition:
        raise ValueError(f"config key '{key}' has value {value!r}, expected {expectation}")

