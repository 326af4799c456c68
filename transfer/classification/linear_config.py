"""``LinearConfig``: the settings of one linear-classification protocol, and the training augmentations it names.

The protocols themselves (VISSL Places/iNat, the official ImageNet linear and semi-supervised runs, mix-bt's
small-image linear.py) are the shipped configs in ``configs/transfer/``; ``transfer.classification.linear``
trains them and ``transfer.classification.linear_optimizer`` builds their optimizer and schedule.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal

from torchvision import transforms

from core.config import require_value
from transfer.classification.features import IMAGENET_MEAN, IMAGENET_STD, TEST_TRANSFORMS, FeatureConfig

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("multistep", "cosine", "exponential")


def _color_augmentations() -> list:
    return [transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            transforms.RandomGrayscale(p=0.2)]


# The training-image augmentations of the linear protocols.
TRAIN_AUGMENTATIONS: dict[str, Callable[[int], list]] = {
    # RandomResizedCrop + horizontal flip, as both VISSL and evaluate.py train linear heads.
    "crop_flip": lambda size: [transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()],
    # mix-bt's linear.py on CIFAR: its pretraining augmentations without blur (scale 0.08-1, bilinear).
    "crop_flip_color": lambda size: [transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
                                     *_color_augmentations()],
}


def train_transform(image_size: int, augmentation: str = "crop_flip") -> transforms.Compose:
    """The ``TRAIN_AUGMENTATIONS`` entry at ``image_size``, then ImageNet normalisation."""
    return transforms.Compose([*TRAIN_AUGMENTATIONS[augmentation](image_size), transforms.ToTensor(),
                               transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


@dataclasses.dataclass
class LinearConfig:
    """One linear-classification protocol (defaults: the VISSL Places205 linear protocol)."""

    train_split: str = "train"
    val_split: str = "val"
    train_subset: str = ""  # file of training image names (ImageNet 1% / 10%); empty: all
    mode: Literal["images", "features"] = "images"
    head: Literal["bn_linear", "linear"] = "bn_linear"
    epochs: int = 14
    batch_size: int = 256
    lr: float = 0.01
    lr_backbone: float = 0.0  # > 0: fine-tune the trunk (semi-supervised)
    scale_lr_with_batch: bool = True  # lr x batch_size / 256 (VISSL auto-scaling)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    decay_batchnorm: bool = False
    optimizer: Literal["sgd", "adam"] = "sgd"  # adam ignores momentum and nesterov
    schedule: Literal["multistep", "cosine", "exponential"] = "multistep"
    milestones: list[int] = dataclasses.field(default_factory=lambda: [4, 8, 12])
    gamma: float = 0.1
    final_lr: float = 0.0  # exponential: the LR after the last epoch (unscaled, like lr)
    augmentation: str = "crop_flip"  # TRAIN_AUGMENTATIONS (mode=images)
    trunk_batchnorm: Literal["frozen", "batch"] = "frozen"  # batch: a frozen trunk's BN trains on batch statistics
    image_size: int = 224
    test_transform: str = "center_crop"
    num_workers: int = 8
    amp: bool = True
    seed: int = 0
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)

    def __post_init__(self) -> None:
        require_value(self.epochs >= 1, "epochs", self.epochs, ">= 1")
        require_value(self.batch_size >= 2, "batch_size", self.batch_size, ">= 2 (BatchNorm needs two images)")
        require_value(self.lr > 0, "lr", self.lr, "> 0")
        for key in ("lr_backbone", "weight_decay", "num_workers", "seed"):
            require_value(getattr(self, key) >= 0, key, getattr(self, key), ">= 0")
        require_value(0 <= self.momentum < 1, "momentum", self.momentum, "in [0, 1)")
        require_value(self.momentum > 0 or not self.nesterov, "momentum", self.momentum, "> 0 with nesterov=true")
        require_value(0 < self.gamma <= 1, "gamma", self.gamma, "in (0, 1]")
        require_value(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"one of {', '.join(OPTIMIZERS)}")
        require_value(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {', '.join(SCHEDULES)}")
        if self.schedule == "exponential":
            require_value(0 < self.final_lr < self.lr, "final_lr", self.final_lr, f"in (0, lr={self.lr:g})")
        require_value(self.augmentation in TRAIN_AUGMENTATIONS, "augmentation", self.augmentation,
                      f"one of {', '.join(TRAIN_AUGMENTATIONS)}")
        require_value(self.trunk_batchnorm in ("frozen", "batch"), "trunk_batchnorm", self.trunk_batchnorm,
                      "frozen or batch")
        require_value(all(step > 0 for step in self.milestones) and self.milestones == sorted(self.milestones),
                      "milestones", self.milestones, "increasing positive epochs")
        require_value(self.image_size >= 32, "image_size", self.image_size, ">= 32 (a ResNet halves it 5 times)")
        require_value(self.test_transform in TEST_TRANSFORMS, "test_transform", self.test_transform,
                      f"one of {', '.join(TEST_TRANSFORMS)}")
        if self.lr_backbone > 0 and self.mode == "features":
            raise ValueError("mode=features trains the head only; fine-tuning (lr_backbone > 0) needs mode=images")
