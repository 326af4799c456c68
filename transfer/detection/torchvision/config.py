"""Typed configuration of the torchvision detection engine (loaded with ``core.config.load_config``).

Key names follow detectron2's where a value has a detectron2 counterpart (``solver.max_iter`` is
``SOLVER.MAX_ITER``, ``solver.reference_world_size`` is ``SOLVER.REFERENCE_WORLD_SIZE``), so the
configs in ``configs/torchvision_detection/`` can be read side by side with ``configs/detectron2/``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from core.config import ConfigError, load_config

# torchvision's ImageNet statistics for RGB images in [0, 1]: the backbone was pretrained with them.
TORCHVISION_MEAN = [0.485, 0.456, 0.406]
TORCHVISION_STD = [0.229, 0.224, 0.225]


@dataclass
class DataConfig:
    """Where the images and annotations are, and in which layout.

    A source is ``A:B`` relative to ``root`` (or absolute): for ``voc`` the year directory and the
    ``ImageSets/Main`` split (``VOC2007:trainval``); for ``coco`` the annotation JSON and the image
    directory (``annotations/instances_val2017.json:val2017``).
    """

    format: Literal["voc", "coco"] = "voc"
    root: str = "datasets/VOCdevkit"
    train: list[str] = field(default_factory=lambda: ["VOC2007:trainval", "VOC2012:trainval"])
    test: str = "VOC2007:test"
    class_names: list[str] | None = None  # VOC layout only; None = the 20 PASCAL VOC classes
    dataset_name: str = "voc2007"  # recorded in the results
    split_name: str = "test"
    num_workers: int = 4
    aspect_ratio_grouping: bool = True


@dataclass
class ModelConfig:
    """Detector, backbone and input resolution."""

    meta_arch: Literal["faster_rcnn", "mask_rcnn"] = "faster_rcnn"
    arch: str = "resnet50"
    weights: str | None = None
    random_init: bool = False  # train from scratch instead of loading ``weights``
    norm: Literal["syncbn", "bn", "frozen_bn"] = "syncbn"
    trainable_layers: int = 5  # 5 = every stage trains (detectron2 FREEZE_AT 0)
    # BatchNorm (SyncBN under DDP) in the FPN and 4conv1fc box / 4conv mask heads, as detectron2's SyncBN
    # FPN configs (configs/detectron2/Base-RCNN-FPN-SyncBN.yaml); false = torchvision's plain 2fc head.
    norm_in_heads: bool = False
    min_size_train: list[int] = field(default_factory=lambda: list(range(480, 801, 32)))
    max_size_train: int = 1333
    min_size_test: int = 800
    max_size_test: int = 1333
    pixel_mean: list[float] = field(default_factory=lambda: list(TORCHVISION_MEAN))
    pixel_std: list[float] = field(default_factory=lambda: list(TORCHVISION_STD))
    detections_per_image: int = 100
    # Proposal and RoI sampling counts, detectron2's R50-FPN values (RPN.*_NMS_TOPK_*, ROI_HEADS.BATCH_SIZE_PER_IMAGE).
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 1000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    roi_batch_size_per_image: int = 512


@dataclass
class SolverConfig:
    """SGD with linear warm-up and step decay, as detectron2's ``WarmupMultiStepLR``."""

    ims_per_batch: int = 16  # total over all processes
    base_lr: float = 0.02
    reference_world_size: int = 8  # 0 disables the linear scaling to the actual number of processes
    momentum: float = 0.9
    weight_decay: float = 1e-4
    weight_decay_norm: float = 0.0
    max_iter: int = 24000
    steps: list[int] = field(default_factory=lambda: [18000, 22000])
    gamma: float = 0.1
    warmup_iters: int = 1000
    warmup_factor: float = 1.0 / 3
    checkpoint_period: int = 5000
    amp: bool = True  # used on CUDA only


@dataclass
class DetectionConfig:
    """One fine-tuning + evaluation run."""

    task: Literal["voc0712_detection", "coco_instance_segmentation", "coco_detection"] = "voc0712_detection"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    eval_period: int = 0  # 0 = evaluate only at the end
    log_period: int = 20
    output_dir: str = "output/torchvision_detection"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    baseline: bool = False  # a reference column of the report (random init is one anyway)


def load_detection_config(path: str | Path | None, overrides: Sequence[str] = ()) -> DetectionConfig:
    """Loads and checks a detection config; inconsistent values raise ``ConfigError`` naming the key."""
    config = load_config(DetectionConfig, path, overrides)
    check_config(config)
    return config


def check_config(config: DetectionConfig) -> None:
    """Rejects values that would only fail later (or silently do the wrong thing)."""
    solver, model = config.solver, config.model
    if config.model.meta_arch == "mask_rcnn" and config.data.format != "coco":
        raise ConfigError("model.meta_arch=mask_rcnn needs masks: set data.format=coco (VOC boxes have no masks)")
    if config.task == "coco_instance_segmentation" and model.meta_arch != "mask_rcnn":
        raise ConfigError("task coco_instance_segmentation needs model.meta_arch=mask_rcnn")
    if solver.max_iter <= 0 or solver.ims_per_batch <= 0 or solver.base_lr <= 0:
        raise ConfigError("solver.max_iter, solver.ims_per_batch and solver.base_lr must be positive")
    if list(solver.steps) != sorted(solver.steps):
        raise ConfigError(f"solver.steps must be increasing, got {solver.steps}")
    if not 0 <= model.trainable_layers <= 5:
        raise ConfigError(f"model.trainable_layers must be in 0..5, got {model.trainable_layers}")
    if not model.min_size_train:
        raise ConfigError("model.min_size_train needs at least one size")
    if not config.data.train:
        raise ConfigError("data.train needs at least one source")
    if model.weights is None and not model.random_init:
        raise ConfigError("model.weights is not set: give the pretrained backbone file "
                          "(or model.random_init=true to train from scratch)")


def scale_to_world_size(solver: SolverConfig, eval_period: int, world_size: int) -> tuple[SolverConfig, int]:
    """Linear scaling rule of detectron2's ``auto_scale_workers``.

    With ``k = world_size / reference_world_size``: the total batch and the LR are multiplied by ``k``
    and every iteration count is divided by it, so each process keeps its per-process batch and the
    run sees the same number of epochs.
    """
    reference = solver.reference_world_size
    if reference == 0 or reference == world_size:
        return solver, eval_period
    if solver.ims_per_batch % reference:
        raise ConfigError(f"solver.ims_per_batch={solver.ims_per_batch} is not divisible by "
                          f"solver.reference_world_size={reference}")
    scale = world_size / reference
    scaled = dataclasses.replace(
        solver,
        ims_per_batch=int(round(solver.ims_per_batch * scale)),
        base_lr=solver.base_lr * scale,
        max_iter=int(round(solver.max_iter / scale)),
        warmup_iters=int(round(solver.warmup_iters / scale)),
        steps=[int(round(step / scale)) for step in solver.steps],
        checkpoint_period=int(round(solver.checkpoint_period / scale)),
        reference_world_size=world_size,
    )
    return scaled, int(round(eval_period / scale))
