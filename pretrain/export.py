"""Backbone export: the torchvision ResNet ``state_dict`` without ``fc``, as the official ``resnet50.pth``.

The file loads into ``torchvision.models.<arch>()`` with ``strict=False`` reporting only ``fc.weight`` and
``fc.bias`` missing, and is what every transfer evaluation consumes. A sidecar ``<name>.json`` next to it
records ``{"arch", "stem"}`` (``core.backbone.write_backbone_metadata``): the ``.pth`` stays a plain state
dict that older readers and torchvision load, and ``core.backbone.load_backbone`` checks the sidecar
against the stem that conv1's kernel size shows (a small-stem trunk has a 3x3 conv1 and no max-pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from core.atomic import atomic_write
from core.backbone import stem_of_state, write_backbone_metadata
from core.checkpoint import extract_backbone, load_backbone_state_dict, verify_backbone


def backbone_state_from_model(model_state: Mapping[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """Torchvision-named backbone tensors (no ``fc``) of a ``BarlowTwins`` state dict, checked against ``arch``."""
    state = {key: value.detach().cpu().clone() for key, value in extract_backbone(model_state).items()}
    verify_backbone(state, arch, source=f"{arch} backbone being exported")
    return state


def save_backbone(state: Mapping[str, torch.Tensor], path: str | Path, arch: str) -> None:
    """Writes a backbone state dict atomically (a reader never sees half a file) and its ``{arch, stem}`` sidecar."""
    with atomic_write(path, mode="wb") as handle:
        torch.save(dict(state), handle)
    write_backbone_metadata(path, arch, stem_of_state(dict(state), str(path)))


def export_backbone(checkpoint_path: str | Path, output_path: str | Path, arch: str = "resnet50") -> str:
    """Writes the backbone of any supported checkpoint (ours or the official release's) to ``output_path``.

    Returns the detected input format name (see ``core.checkpoint.CHECKPOINT_FORMATS``).
    """
    state, format_name = load_backbone_state_dict(checkpoint_path, arch=arch)
    save_backbone(state, output_path, arch)
    return format_name
