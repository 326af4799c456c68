"""Pretrained (or random) ResNet trunks for transfer evaluation.

Weights come from any file ``core.checkpoint.load_backbone_state_dict`` recognises (this project's
export or pretraining checkpoint, the public SSL releases of docs/checkpoints.md, torchvision/timm
weights; ``.pth``, ``.safetensors`` or ``.pkl``); every tensor is checked, so a missing or misshaped tensor is an error, never a silent
random init. ``random_init=True`` gives the seeded torchvision initialisation as a baseline row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision import models
from torchvision.models import ResNet

from core.checkpoint import WeightsFile, file_sha256, load_backbone_state_dict

RANDOM_INIT_LABEL = "random-init"

# The torchvision ResNet family (all accept ``zero_init_residual`` and end in ``fc``).
BACKBONES: dict[str, Callable[..., ResNet]] = {
    name: getattr(models, name)
    for name in (
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
        "wide_resnet50_2", "wide_resnet101_2",
    )
}


def resnet_trunk(arch: str) -> tuple[ResNet, int]:
    """A freshly initialised ResNet (zero-init residual BN) with ``fc = Identity``, and its feature width."""
    if arch not in BACKBONES:
        raise ValueError(f"unknown arch {arch!r}; valid archs: {', '.join(BACKBONES)}")
    backbone = BACKBONES[arch](zero_init_residual=True)
    width = backbone.fc.in_features
    backbone.fc = nn.Identity()
    return backbone, width


def build_backbone(arch: str = "resnet50") -> nn.Module:
    """The pretraining backbone: torchvision ``arch`` with zero-init residuals and ``fc`` replaced by Identity."""
    return resnet_trunk(arch)[0]


def backbone_width(arch: str = "resnet50") -> int:
    """Width of the pooled backbone features of ``arch`` (512 for resnet18/34, 2048 for resnet50, ...)."""
    with torch.device("meta"):
        return resnet_trunk(arch)[1]


@dataclass(frozen=True)
class LoadedBackbone:
    """A trunk with ``fc = Identity`` and where its weights came from."""

    model: nn.Module
    weights: str  # the weights file, or "random-init"
    weights_sha256: str | None
    source_format: str  # detected checkpoint format, or "random-init"
    source: str | None = None  # the network chosen with ``--source``; None: the one the file's authors evaluate


def load_backbone(weights: str | Path | WeightsFile | None, arch: str = "resnet50", random_init: bool = False,
                  seed: int = 0, source: str | None = None, format_name: str | None = None) -> LoadedBackbone:
    """Builds ``arch`` and loads ``weights`` strictly; ``random_init`` (and no weights) for the baseline.

    ``source`` / ``format_name`` (or those of a ``WeightsFile``) pick another network of a file holding
    two, and settle a layout two formats match (see ``core.checkpoint.load_backbone_state_dict``).
    """
    if random_init:
        if weights:
            raise ValueError(f"give either weights ({weights}) or random_init, not both")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_backbone(arch)
        return LoadedBackbone(model, RANDOM_INIT_LABEL, None, RANDOM_INIT_LABEL)
    if not weights:
        raise ValueError("weights are required (a .pth file); pass random_init=True for the random baseline")
    state, source_format = load_backbone_state_dict(weights, arch=arch, source=source, format_name=format_name)
    model = build_backbone(arch)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("num_batches_tracked")]
    if missing or unexpected:  # verify_backbone already checked; this guards the fc=Identity assumption
        raise ValueError(f"{weights}: weights do not fit {arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    chosen_source = source or (weights.source if isinstance(weights, WeightsFile) else None)
    return LoadedBackbone(model, str(weights), file_sha256(weights), source_format, chosen_source)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients: BatchNorm statistics and weights stay as loaded."""
    model.eval()
    model.requires_grad_(False)
    return model
