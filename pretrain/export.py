"""Backbone export: the torchvision ResNet ``state_dict`` without ``fc``, as the official ``resnet50.pth``.

Written twice: ``<name>.pth`` (``torch.save``) and ``<name>.safetensors`` (no pickle; its header metadata
names the architecture and the source format). Either loads into ``torchvision.models.<arch>()`` with
``strict=False`` reporting only ``fc.weight`` and ``fc.bias`` missing, and is what every transfer
evaluation consumes. A sidecar ``<name>.json`` next
to them records ``{"arch", "stem"}`` (``core.backbone.write_backbone_metadata``); ``core.backbone.load_backbone``
checks it against the stem that conv1's kernel size shows (a small-stem trunk has a 3x3 conv1 and no max-pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from core.atomic import atomic_write
from core.backbone import stem_of_state, write_backbone_metadata
from core.backbone_extraction import extract_backbone
from core.checkpoint import load_backbone_state_dict, save_safetensors, verify_backbone
from core.checkpoint_formats import CHECKPOINT_FORMATS

EXPORT_SUFFIXES = (".pth", ".safetensors")
TRAINING_FORMAT = "pretrain-checkpoint"  # what a backbone exported at the end of training comes from


def backbone_state_from_model(model_state: Mapping[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """Torchvision-named backbone tensors (no ``fc``) of a ``BarlowTwins`` state dict, checked against ``arch``."""
    extraction = extract_backbone(model_state, CHECKPOINT_FORMATS["backbone-prefixed"], origin="model being exported")
    state = {key: value.detach().cpu().clone() for key, value in extraction.state.items()}
    verify_backbone(state, arch, source=f"{arch} backbone being exported")
    return state


def export_paths(path: str | Path) -> tuple[Path, Path]:
    """The ``.pth`` and ``.safetensors`` files an export to ``path`` writes (its suffix is replaced)."""
    path = Path(path)
    return tuple(path.with_suffix(suffix) for suffix in EXPORT_SUFFIXES)  # type: ignore[return-value]


def save_backbone(state: Mapping[str, torch.Tensor], path: str | Path, arch: str,
                  source_format: str = TRAINING_FORMAT) -> tuple[Path, Path]:
    """Writes a backbone state dict atomically as ``.pth`` and ``.safetensors``; returns both paths."""
    pth_path, safetensors_path = export_paths(path)
    with atomic_write(pth_path, mode="wb") as handle:
        torch.save(dict(state), handle)
    stem = stem_of_state(state, str(pth_path))
    save_safetensors(state, safetensors_path, {"arch": arch, "stem": stem, "source_format": source_format,
                                               "layout": "torchvision ResNet state_dict without fc"})
    write_backbone_metadata(pth_path, arch, stem)
    return pth_path, safetensors_path


def export_backbone(checkpoint_path: str | Path, output_path: str | Path, arch: str = "resnet50",
                    source: str | None = None, format_name: str | None = None) -> str:
    """Writes the backbone of any supported checkpoint to ``output_path`` (``.pth`` and ``.safetensors``).

    Returns the detected input format name (see ``core.checkpoint_formats.CHECKPOINT_FORMATS``).
    """
    state, detected = load_backbone_state_dict(checkpoint_path, arch=arch, source=source, format_name=format_name)
    save_backbone(state, output_path, arch, detected)
    return detected
