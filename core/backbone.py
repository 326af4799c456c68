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

import torch
from torch import nn

from core.atomic import atomic_write_json
from core.checkpoint import CheckpointError, WeightsFile, file_sha256, load_backbone_state_dict
from core.resnet import (BACKBONES, STEM_KERNEL_SIZES, STEMS, backbone_width, build_backbone,  # noqa: F401
                         resnet_trunk, stem_of_state)

RANDOM_INIT_LABEL = "random-init"


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
    source: str | None = None  # the network chosen with ``--source``; None: the one the file's authors evaluate


def load_backbone(weights: str | Path | WeightsFile | None, arch: str = "resnet50", random_init: bool = False,
                  seed: int = 0, stem: str | None = None, source: str | None = None,
                  format_name: str | None = None) -> LoadedBackbone:
    """Builds ``arch`` and loads ``weights`` strictly; ``random_init`` (and no weights) for the baseline.

    The stem of ``weights`` is read from conv1's kernel size, so every stage rebuilds the trunk that was
    trained; a ``stem`` given for weights must agree with it. A random trunk uses ``stem`` (default imagenet).
    ``source`` / ``format_name`` (or those of a ``WeightsFile``) pick another network of a file holding
    two, and settle a layout two formats match (see ``core.checkpoint.load_backbone_state_dict``).
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
    state, source_format = load_backbone_state_dict(weights, arch=arch, source=source, format_name=format_name)
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
    chosen_source = source or (weights.source if isinstance(weights, WeightsFile) else None)
    return LoadedBackbone(model, str(weights), file_sha256(weights), source_format, found_stem, chosen_source)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients: BatchNorm statistics and weights stay as loaded."""
    model.eval()
    model.requires_grad_(False)
    return model
