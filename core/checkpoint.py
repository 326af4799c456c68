"""The one way to save and load checkpoints, and to get backbone weights out of any supported file.

``load_backbone_state_dict`` reads a file (``.pth``/``.pt``/``.tar``/``.ckpt``/``.torch`` with
``torch.load(weights_only=True)``, ``.safetensors`` without unpickling, ``.pkl`` with a restricted
unpickler), detects its layout among ``core.checkpoint_formats.CHECKPOINT_FORMATS`` (this project's
checkpoints, torchvision/timm, MoCo, MoCo v3, SwAV, DINO, VICReg(L), Barlow Twins, VISSL, solo-learn,
lightly, mmselfsup; see docs/checkpoints.md) and checks every tensor of the target ResNet.

Generations: ``save_checkpoint(..., keep_previous=True)`` renames the existing file to ``<stem>.prev<suffix>``
(``checkpoint.prev.pth``) before the new one takes its name, and ``load_latest_checkpoint`` falls back to that
previous generation when the newest is missing, unreadable or rejected by the caller's check.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from core.atomic import atomic_write
from core.backbone_extraction import CheckpointLayoutError, Extraction, detect_format, extract_backbone
from core.checkpoint_formats import CHECKPOINT_FORMATS, PRETRAIN_CHECKPOINT_FORMAT  # noqa: F401  (re-exported)
from core.resnet import BACKBONES, STEM_KERNEL_SIZES, build_backbone
from core.safe_pickle import UnsafePickleError, load_safe_pickle
from core.cli import UserError

logger = logging.getLogger(__name__)

SAFETENSORS_SUFFIX = ".safetensors"
PICKLE_SUFFIX = ".pkl"


class CheckpointError(UserError, ValueError):
    """A checkpoint file is missing, unreadable, of an unknown kind, or lacks required tensors."""


@dataclass(frozen=True)
class WeightsFile(os.PathLike):
    """A weights path plus the choices some files need: which of its networks (``source``) and which format.

    It is path-like, so it travels wherever a weights path does (task functions, the suite) and
    ``load_backbone`` reads the choices from it.
    """

    path: str
    source: str | None = None  # e.g. "key" (MoCo), "momentum" (MoCo v3), "student" (DINO); None: the evaluated one
    format: str | None = None  # a ``CHECKPOINT_FORMATS`` name, for a file two formats match

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


def weights_file(path: str | Path | None, source: str | None = None,
                 format_name: str | None = None) -> str | WeightsFile | None:
    """``path`` as given, or a ``WeightsFile`` carrying ``source`` / ``format_name`` when either is set."""
    if path is None or (source is None and format_name is None):
        return path
    return WeightsFile(str(path), source, format_name)


def _never_called(*args: Any, **kwargs: Any) -> None:
    """Stands in for a function a checkpoint references but that loading never calls."""
    raise RuntimeError("a stand-in for a function pickled in a checkpoint was called")


# Globals that public releases pickle next to their tensors and that are harmless to rebuild: DINO stores
# its ``argparse.Namespace`` args; VICReg (main_vicreg.py, run as __main__) and VICRegL (optimizers.py) put
# the function ``exclude_bias_and_norm`` into their LARS param groups (resolved to a stand-in, never called).
HARMLESS_GLOBALS: list[Any] = [
    argparse.Namespace,
    *((_never_called, f"{module}.exclude_bias_and_norm")
      for module in ("__main__", "main_vicreg", "main_vicregl", "optimizers")),
]


def save_checkpoint(state: Mapping[str, Any], path: str | Path, keep_previous: bool = False) -> None:
    """Saves ``state`` with ``torch.save`` atomically (temporary file, fsync, rename).

    ``keep_previous`` keeps the file it replaces as ``previous_generation(path)``. A full disk raises
    ``core.cli.DiskFullError`` and leaves both generations as they were.
    """
    with atomic_write(path, mode="wb", keep_previous=previous_generation(path) if keep_previous else None) as handle:
        torch.save(dict(state), handle)


def previous_generation(path: str | Path) -> Path:
    """Where ``save_checkpoint(keep_previous=True)`` keeps the generation before ``path``: ``x.pth`` -> ``x.prev.pth``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def load_latest_checkpoint(path: str | Path, check: Callable[[dict[str, Any], str], None] | None = None,
                           ) -> tuple[dict[str, Any], Path] | None:
    """The newest usable generation of ``path`` and its file: ``path``, else ``previous_generation(path)``.

    A generation is usable when it loads and ``check(checkpoint, source)`` does not raise ``CheckpointError``.
    Falling back is logged in one line. Returns None when neither file exists; raises ``CheckpointError``
    naming both when no existing generation is usable.
    """
    path = Path(path)
    problems = []
    for candidate in (path, previous_generation(path)):
        if not candidate.is_file():
            continue
        try:
            checkpoint = load_checkpoint(candidate)
            if check is not None:
                check(checkpoint, str(candidate))
        except CheckpointError as error:
            problems.append(str(error))
            continue
        if candidate != path:
            logger.warning("%s; resuming from the previous generation %s",
                           problems[0] if problems else f"{path} is missing", candidate)
        return checkpoint, candidate
    if problems:
        raise CheckpointError(f"no usable checkpoint generation: {'; '.join(problems)}; move the files away to "
                              f"start again, or choose another output folder")
    return None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint dict without running code from the file, raising ``CheckpointError`` naming it.

    ``.safetensors`` is parsed without unpickling; ``.pkl`` allows only numpy arrays and containers
    (numpy arrays become tensors); anything else is ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.suffix == SAFETENSORS_SUFFIX:
        return _load_safetensors(path)
    if path.suffix == PICKLE_SUFFIX:
        return _load_plain_pickle(path)
    if not _is_torch_serialized(path):
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (neither a torch.save zip archive "
                              f"nor a pickle)")
    try:
        with torch.serialization.safe_globals(HARMLESS_GLOBALS):
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


def _load_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a ``.safetensors`` header (arch, source format of this project's exports)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error


def _as_tensors(node: Any) -> Any:
    if isinstance(node, np.ndarray):
        return torch.from_numpy(node.copy())  # a writable, contiguous copy (0-d arrays stay 0-d)
    if isinstance(node, Mapping):
        return {key: _as_tensors(value) for key, value in node.items()}
    return node


def _load_plain_pickle(path: Path) -> dict[str, Any]:
    try:
        obj = load_safe_pickle(path)
    except UnsafePickleError as error:
        raise CheckpointError(f"{path}: refused for safety: {error}") from error
    except Exception as error:  # truncated or not a pickle at all
        raise CheckpointError(f"{path} is not a readable pickle: {error!r}") from error
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, expected a dict")
    return _as_tensors(obj)


def _is_torch_serialized(path: Path) -> bool:
    """``torch.save`` writes a zip archive (or, in the legacy format, a pickle starting with PROTO 0x80)."""
    with open(path, "rb") as handle:
        first_byte = handle.read(1)
    return zipfile.is_zipfile(path) or first_byte == b"\x80"


def save_safetensors(state: Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, str]) -> None:
    """Writes a flat tensor dict as ``.safetensors`` atomically, with string ``metadata`` in its header."""
    from safetensors.torch import save

    tensors = {key: value.detach().cpu().contiguous() for key, value in state.items()}
    with atomic_write(path, mode="wb") as handle:
        handle.write(save(tensors, metadata={key: str(value) for key, value in metadata.items()}))


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes: identifies weights in results and feature caches."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def expected_backbone_shapes(arch: str, stem: str = "imagenet") -> dict[str, torch.Size]:
    """Names and shapes of a torchvision ResNet ``arch`` state dict without ``fc`` (built on the meta device)."""
    with torch.device("meta"):
        backbone = build_backbone(arch, stem)
    return {key: value.shape for key, value in backbone.state_dict().items() if not key.startswith("fc.")}


def verify_backbone(state: Mapping[str, torch.Tensor], arch: str, source: str) -> None:
    """Raises ``CheckpointError`` unless ``state`` has every ``arch`` tensor, with its shape, and nothing else.

    The stem (conv1 7x7 or 3x3, see ``core.resnet.STEMS``) is the one conv1 has. BatchNorm
    ``num_batches_tracked`` counters are optional (older exports omit them).
    """
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


def fitting_archs(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The torchvision ResNets (``core.resnet.BACKBONES``) whose every tensor ``state`` has, with its shape."""
    fits = []
    for arch in BACKBONES:
        expected = expected_backbone_shapes(arch)
        if set(state) <= set(expected) and all(
                key in state and state[key].shape == shape for key, shape in expected.items()
                if not key.endswith("num_batches_tracked")):
            fits.append(arch)
    return fits


def extract_from_file(path: str | Path | WeightsFile, arch: str = "resnet50", source: str | None = None,
                      format_name: str | None = None) -> Extraction:
    """Reads ``path`` and extracts its backbone (torchvision names, no ``fc``) without checking it against ``arch``.

    ``arch`` only sizes the unknown-layout diagnostic; ``source`` picks another network of a file that holds
    two (MoCo's ``key`` encoder, DINO's ``student``); ``format_name`` settles a layout two formats match.
    A ``WeightsFile`` supplies both where they are not given.
    """
    if isinstance(path, WeightsFile):
        source, format_name, path = source or path.source, format_name or path.format, path.path
    checkpoint = load_checkpoint(path)
    expected = [key for key in expected_backbone_shapes(arch) if not key.endswith("num_batches_tracked")]
    try:
        checkpoint_format = detect_format(checkpoint, expected, format_name)
        return extract_backbone(checkpoint, checkpoint_format, source, origin=str(path))
    except CheckpointLayoutError as error:
        raise CheckpointError(f"{path}: {error}") from None


def load_backbone_state_dict(path: str | Path | WeightsFile, arch: str = "resnet50", source: str | None = None,
                             format_name: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Loads the torchvision-format backbone weights (no ``fc``) from any supported file.

    Returns the state dict and the detected format's name. Every tensor is checked against
    ``torchvision.models.<arch>()``: a missing or misshaped tensor is an error, never a silent random init.
    """
    extraction = extract_from_file(path, arch, source, format_name)
    try:
        verify_backbone(extraction.state, arch, source=os.fspath(path))
    except CheckpointError as error:
        fits = fitting_archs(extraction.state)
        hint = f" (its {extraction.format.name} backbone fits {' / '.join(fits)}: pass --arch {fits[0]})" if fits else ""
        raise CheckpointError(f"{error}{hint}") from None
    return extraction.state, extraction.format.name
