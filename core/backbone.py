"""Pretrained (or random) ResNet trunks for transfer evaluation.

Weights come from any file ``core.checkpoint.load_backbone_state_dict`` recognises (this project's
export or pretraining checkpoint, the official ``resnet50.pth`` / ``checkpoint.pth``, a torchvision
state dict); every tensor is checked, so a missing or misshaped tensor is an error, never a silent
random init. ``random_init=True`` gives the seeded torchvision initialisation as a baseline row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision import models
from torchvision.models import ResNet

from core.atomic import atomic_write_json
from core.checkpoint import CheckpointError, file_sha256, load_backbone_state_dict

RANDOM_INIT_LABEL = "random-init"
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


def stem_of_state(state: dict[str, torch.Tensor], source: str) -> str:
    """The stem that made a backbone state dict, read from ``conv1.weight``'s kernel size (7: imagenet, 3: small)."""
    conv1 = state.get("conv1.weight")
    if conv1 is None or conv1.ndim != 4:
        raise ValueError(f"{source}: no 4-d conv1.weight, so the stem cannot be identified")
    for stem, kernel_size in STEM_KERNEL_SIZES.items():
        if tuple(conv1.shape[-2:]) == (kernel_size, kernel_size):
            return stem
    raise ValueError(f"{source}: conv1.weight has a {tuple(conv1.shape[-2:])} kernel, which no stem has "
                     f"({', '.join(f'{stem}: {size}x{size}' for stem, size in STEM_KERNEL_SIZES.items())})")


def require_imagenet_stem(state: dict[str, torch.Tensor], source: str, consumer: str) -> None:
    """Raises ``CheckpointError`` (one line, why) for small-stem weights, which ``consumer``'s trunk cannot take."""
    stem = stem_of_state(state, source)
    if stem != "imagenet":
        raise CheckpointError(f"{source} has the {stem}-image stem (3x3 stride-1 conv1, no max-pool, for images "
                              f"<= 96 px); {consumer} builds the ImageNet stem (7x7 stride-2 conv1 + max-pool) and "
                              f"its detection images are ~800 px, so these weights cannot initialise it")


def backbone_metadata_path(weights: str | Path) -> Path:
    """The sidecar ``<name>.json`` that records a backbone export's ``{"arch", "stem"}``."""
    return Path(weights).with_suffix(".json")


def write_backbone_metadata(weights: str | Path, arch: str, stem: str) -> None:
    """Writes the sidecar of an exported backbone (the ``.pth`` itself stays a plain torchvision state dict)."""
    atomic_write_json(backbone_metadata_path(weights), {"arch": arch, "stem": stem})


def check_backbone_metadata(weights: str | Path, arch: str, stem: str) -> None:
    """Raises ``ValueError`` if an export's sidecar (when present) names another arch or stem than found."""
    sidecar = backbone_metadata_path(weights)
    if not sidecar.is_file():
        return
    try:
        recorded = json.loads(sidecar.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{sidecar}: unreadable backbone metadata ({error})") from None
    if not isinstance(recorded, dict):
        return  # another tool's JSON of the same name; the weights themselves were checked
    for key, found in (("arch", arch), ("stem", stem)):
        if key in recorded and recorded[key] != found:
            raise ValueError(f"{sidecar} records {key} {recorded[key]!r} but {weights} is being loaded as "
                             f"{found!r} (the {key} is read from the weights' tensor shapes)")


@dataclass(frozen=True)
class LoadedBackbone:
    """A trunk with ``fc = Identity`` and where its weights came from."""

    model: nn.Module
    weights: str  # the weights file, or "random-init"
    weights_sha256: str | None
    source_format: str  # detected checkpoint format, or "random-init"
    stem: str = "imagenet"


def load_backbone(weights: str | Path | None, arch: str = "resnet50", random_init: bool = False,
                  seed: int = 0, stem: str | None = None) -> LoadedBackbone:
    """Builds ``arch`` and loads ``weights`` strictly; ``random_init`` (and no weights) for the baseline.

    The stem of ``weights`` is read from conv1's kernel size, so every stage rebuilds the trunk that was
    trained; a ``stem`` given for weights must agree with it. A random trunk uses ``stem`` (default imagenet).
    """
    if random_init:
        if weights:
            raise ValueError(f"give either weights ({weights}) or random_init, not both")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_backbone(arch, stem or "imagenet")
        return LoadedBackbone(model, RANDOM_INIT_LABEL, None, RANDOM_INIT_LABEL, stem or "imagenet")
    if not weights:
        raise ValueError("weights are required (a .pth file); pass random_init=True for the random baseline")
    state, source_format = load_backbone_state_dict(weights, arch=arch)
    found_stem = stem_of_state(state, str(weights))
    if stem is not None and stem != found_stem:
        raise ValueError(f"{weights}: weights have the {found_stem} stem (conv1 {tuple(state['conv1.weight'].shape)})"
                         f", but stem {stem!r} was asked for")
    check_backbone_metadata(weights, arch, found_stem)
    model = build_backbone(arch, found_stem)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("num_batches_tracked")]
    if missing or unexpected:  # verify_backbone already checked; this guards the fc=Identity assumption
        raise ValueError(f"{weights}: weights do not fit {arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return LoadedBackbone(model, str(weights), file_sha256(weights), source_format, found_stem)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients: BatchNorm statistics and weights stay as loaded."""
    model.eval()
    model.requires_grad_(False)
    return model
