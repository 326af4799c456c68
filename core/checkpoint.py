"""The one way to save and load checkpoints, and to get backbone weights out of any supported file.

Supported inputs for ``load_backbone_state_dict`` (detected, not declared):

* this project's exported backbone ``<arch>.pth`` and the official release's ``resnet50.pth``
  (plain torchvision ResNet keys, no ``fc``);
* any torchvision ResNet ``state_dict`` (``fc.*`` is dropped);
* this project's pretraining checkpoint (``{"format": PRETRAIN_CHECKPOINT_FORMAT, "model": ...}``);
* the official release's ``checkpoint.pth`` (``{"epoch", "model", "optimizer"}`` with
  ``module.backbone.*`` / ``module.projector.*`` keys);
* a ``{"state_dict": ...}`` wrapper around any of the state dicts above.

Files are read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is refused.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import torch

from core.atomic import atomic_write

PRETRAIN_CHECKPOINT_FORMAT = "barlowtwins-pretrain-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, of an unknown kind, or lacks required tensors."""


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> None:
    """Saves ``state`` with ``torch.save`` atomically (temporary file, fsync, rename)."""
    with atomic_write(path, mode="wb") as handle:
        torch.save(dict(state), handle)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint dict safely (``weights_only=True``), raising ``CheckpointError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if not _is_torch_serialized(path):
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (neither a torch.save zip archive "
                              f"nor a pickle)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} needs arbitrary unpickling to load (it holds objects other than tensors and plain "
            f"containers); refused for safety: {str(error).splitlines()[0]}"
        ) from error
    except Exception as error:  # torch raises RuntimeError/EOFError/zipfile errors for non-checkpoints
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {error}") from error
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, expected a dict (state dict or checkpoint)")
    return obj


def _is_torch_serialized(path: Path) -> bool:
    """``torch.save`` writes a zip archive (or, in the legacy format, a pickle starting with PROTO 0x80)."""
    with open(path, "rb") as handle:
        first_byte = handle.read(1)
    return zipfile.is_zipfile(path) or first_byte == b"\x80"


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes: identifies weights in results and feature caches."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


class _Format(NamedTuple):
    name: str
    matches: Callable[[dict[str, Any]], bool]
    model_state: Callable[[dict[str, Any]], Mapping[str, Any]]


def _is_tensor_mapping(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(torch.is_tensor(value) for value in obj.values())


def _has_prefix(state: Mapping[str, Any], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in state)


# Checked in order; the first match wins. Add a format by appending an entry.
CHECKPOINT_FORMATS: list[_Format] = [
    _Format(
        "pretrain-checkpoint",
        lambda obj: obj.get("format") == PRETRAIN_CHECKPOINT_FORMAT and isinstance(obj.get("model"), Mapping),
        lambda obj: obj["model"],
    ),
    _Format(
        "official-checkpoint",
        lambda obj: isinstance(obj.get("model"), Mapping) and _has_prefix(obj["model"], "module.backbone."),
        lambda obj: obj["model"],
    ),
    _Format(
        "state-dict-wrapper",
        lambda obj: _is_tensor_mapping(obj.get("state_dict")),
        lambda obj: obj["state_dict"],
    ),
    _Format(
        "torchvision-state-dict",
        lambda obj: _is_tensor_mapping(obj) and "conv1.weight" in obj,
        lambda obj: obj,
    ),
    _Format(
        "barlowtwins-model-state-dict",
        lambda obj: _is_tensor_mapping(obj) and _has_prefix(obj, "backbone."),
        lambda obj: obj,
    ),
]


def detect_format(checkpoint: dict[str, Any]) -> _Format:
    """Returns the first entry of ``CHECKPOINT_FORMATS`` that recognises ``checkpoint``."""
    for checkpoint_format in CHECKPOINT_FORMATS:
        if checkpoint_format.matches(checkpoint):
            return checkpoint_format
    keys = ", ".join(list(map(str, checkpoint))[:8])
    raise CheckpointError(f"unrecognised checkpoint layout (top-level keys: {keys}); expected one of "
                          f"{', '.join(f.name for f in CHECKPOINT_FORMATS)}")


def extract_backbone(model_state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Torchvision-named backbone tensors of a model state: drops ``module.``, the projector, ``bn`` and ``fc``."""
    state = {key.removeprefix("module."): value for key, value in model_state.items()}
    if _has_prefix(state, "backbone."):
        state = {key.removeprefix("backbone."): value for key, value in state.items() if key.startswith("backbone.")}
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def expected_backbone_shapes(arch: str, stem: str = "imagenet") -> dict[str, torch.Size]:
    """Names and shapes of a torchvision ResNet ``arch`` state dict without ``fc`` (built on the meta device)."""
    from core.backbone import build_backbone

    with torch.device("meta"):
        backbone = build_backbone(arch, stem)
    return {key: value.shape for key, value in backbone.state_dict().items() if not key.startswith("fc.")}


def verify_backbone(state: Mapping[str, torch.Tensor], arch: str, source: str) -> None:
    """Raises ``CheckpointError`` unless ``state`` has every ``arch`` tensor, with its shape, and nothing else.

    The stem (conv1 7x7 or 3x3, see ``core.backbone.STEMS``) is the one conv1 has. BatchNorm
    ``num_batches_tracked`` counters are optional (older exports omit them).
    """
    from core.backbone import STEM_KERNEL_SIZES

    conv1 = state.get("conv1.weight")
    kernel = conv1.shape[-1] if conv1 is not None and conv1.ndim == 4 else None
    stem = next((name for name, size in STEM_KERNEL_SIZES.items() if size == kernel), "imagenet")
    expected = expected_backbone_shapes(arch, stem)
    missing = [key for key in expected if key not in state and not key.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(f"{source}: {len(missing)} {arch} tensor(s) missing, e.g. {', '.join(missing[:5])}")
    misshaped = [f"{key} {tuple(state[key].shape)} (expected {tuple(shape)})"
                 for key, shape in expected.items() if key in state and state[key].shape != shape]
    if misshaped:
        raise CheckpointError(f"{source}: {len(misshaped)} tensor(s) with the wrong shape for {arch}: "
                              + "; ".join(misshaped[:5]))
    unexpected = [key for key in state if key not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: {len(unexpected)} tensor(s) that a {arch} does not have, "
                              f"e.g. {', '.join(unexpected[:5])}")


def load_backbone_state_dict(path: str | Path, arch: str = "resnet50") -> tuple[dict[str, torch.Tensor], str]:
    """Loads the torchvision-format backbone weights (no ``fc``) from any supported file.

    Returns the state dict and the detected source format's name. Every tensor is checked against
    ``torchvision.models.<arch>()``: a missing or misshaped tensor is an error, never a silent random init.
    """
    checkpoint = load_checkpoint(path)
    try:
        checkpoint_format = detect_format(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    state = extract_backbone(checkpoint_format.model_state(checkpoint))
    verify_backbone(state, arch, source=str(path))
    return state, checkpoint_format.name
