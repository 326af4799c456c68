"""The torchvision ResNet family this project trains and evaluates, and the two stems its trunks can have.

Architecture only: building a fresh trunk, its feature width, and which stem a saved state dict has (conv1's
kernel size). Loading weights into a trunk is ``core.backbone``; reading checkpoint files is ``core.checkpoint``.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn
from torchvision import models
from torchvision.models import ResNet

STEM_KERNEL_SIZES = {"imagenet": 7, "small": 3}  # conv1's kernel size identifies the stem of saved weights

# The torchvision ResNet family (all accept ``zero_init_residual`` and end in ``fc``).
BACKBONES: dict[str, Callable[..., ResNet]] = {
    name: getattr(models, name)
    for name in (
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
        "wide_resnet50_2", "wide_resnet101_2",
    )
}


def _small_image_stem(backbone: ResNet) -> None:
    """3x3 stride-1 first conv and no max-pool: keeps a 32 px image at 32 px into ``layer1`` (CIFAR ResNets).

    The ImageNet stem (7x7 stride-2 conv, 3x3 stride-2 max-pool) divides the resolution by 4 before
    ``layer1``, which leaves a 32 px image 1x1 at ``layer4``; solo-learn, lightly and the CIFAR literature
    replace it for images up to ~96 px. Same initialisation as torchvision's conv1 (Kaiming normal, fan_out).
    """
    conv1 = nn.Conv2d(3, backbone.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")
    backbone.conv1 = conv1
    backbone.maxpool = nn.Identity()


# How the first layers see the image: ``imagenet`` (torchvision's) or ``small`` (images <= 96 px).
STEMS: dict[str, Callable[[ResNet], None]] = {
    "imagenet": lambda backbone: None,
    "small": _small_image_stem,
}


def resnet_trunk(arch: str, stem: str = "imagenet") -> tuple[ResNet, int]:
    """A freshly initialised ResNet (zero-init residual BN) with ``fc = Identity``, and its feature width."""
    if arch not in BACKBONES:
        raise ValueError(f"unknown arch {arch!r}; valid archs: {', '.join(BACKBONES)}")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; valid stems: {', '.join(STEMS)}")
    backbone = BACKBONES[arch](zero_init_residual=True)
    STEMS[stem](backbone)
    width = backbone.fc.in_features
    backbone.fc = nn.Identity()
    return backbone, width


def build_backbone(arch: str = "resnet50", stem: str = "imagenet") -> nn.Module:
    """The pretraining backbone: torchvision ``arch`` with zero-init residuals and ``fc`` replaced by Identity."""
    return resnet_trunk(arch, stem)[0]


def backbone_width(arch: str = "resnet50") -> int:
    """Width of the pooled backbone features of ``arch`` (512 for resnet18/34, 2048 for resnet50, ...)."""
    with torch.device("meta"):
        return resnet_trunk(arch)[1]


def stem_of_state(state: Mapping[str, torch.Tensor], source: str) -> str:
    """The stem that made a backbone state dict, read from ``conv1.weight``'s kernel size (7: imagenet, 3: small)."""
    conv1 = state.get("conv1.weight")
    if conv1 is None or conv1.ndim != 4:
        raise ValueError(f"{source}: no 4-d conv1.weight, so the stem cannot be identified")
    for stem, kernel_size in STEM_KERNEL_SIZES.items():
        if tuple(conv1.shape[-2:]) == (kernel_size, kernel_size):
            return stem
    raise ValueError(f"{source}: conv1.weight has a {tuple(conv1.shape[-2:])} kernel, which no stem has "
                     f"({', '.join(f'{stem}: {size}x{size}' for stem, size in STEM_KERNEL_SIZES.items())})")
