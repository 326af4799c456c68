"""Converts ResNet backbone weights (any supported checkpoint) into a detectron2 ``.pkl`` file.

detectron2's ``DetectionCheckpointer`` reads a pickled ``{"model": {name: ndarray}, "__author__",
"matching_heuristics": True}`` and matches names by suffix, so ``res2.0.conv1.weight`` lands in both
``backbone.res2.0.conv1.weight`` (C4 trunk) and ``backbone.bottom_up.res2...`` (FPN), and ``res5.*`` in
``roi_heads.res5.*`` (C4 head). Its loader only warns when nothing matches, and without
``matching_heuristics`` it silently trains from random weights, so the output is verified here: against
detectron2's ResNet layout of the architecture (derived from its stages and blocks, not from the
renaming) and, when detectron2 is importable, by loading it into a built model (R-C4 for bottleneck
ResNets; ResNet-18/34, which detectron2 builds only with BasicBlock FPN backbones, R-FPN).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from core.atomic import atomic_write
from core.backbone import require_imagenet_stem
from core.checkpoint import load_backbone_state_dict
from transfer.detection.detectron2.layout import (ARCHITECTURES, OPTIONAL_SUFFIX, ConversionError,  # noqa: F401
                                                  ResNetLayout, resnet_layout)
from transfer.detection.engines import detectron2_available

AUTHOR = "barlowtwins-pipeline"
NORM_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
STEM_MODULES = {"conv1": "stem.conv1", "bn1": "stem.conv1.norm"}
BLOCK_MODULES = {
    "conv1": "conv1", "bn1": "conv1.norm",
    "conv2": "conv2", "bn2": "conv2.norm",
    "conv3": "conv3", "bn3": "conv3.norm",
    "downsample.0": "shortcut", "downsample.1": "shortcut.norm",
}
_BLOCK_PATTERN = re.compile(r"layer([1-4])\.(\d+)\.(.+)")


@dataclasses.dataclass(frozen=True)
class ConversionSummary:
    """What a conversion read and wrote."""

    source: str
    source_format: str
    output: str
    tensors_written: int
    detectron2_trunk_tensors_checked: int | None

    arch: str = "resnet50"

    def describe(self) -> str:
        """One human-readable summary line per fact."""
        checked = (f"loaded into a detectron2 model: all {self.detectron2_trunk_tensors_checked} trunk tensors "
                   "matched" if self.detectron2_trunk_tensors_checked is not None
                   else f"not loaded into detectron2: checked against its {self.arch} layout only")
        return "\n".join([f"source: {self.source} (format: {self.source_format}, arch: {self.arch})",
                          f"wrote {self.tensors_written} tensors to {self.output}", checked])


def detectron2_name(torchvision_name: str) -> str:
    """detectron2's name for a torchvision ResNet tensor.

    E.g. ``layer1.0.bn2.weight`` -> ``res2.0.conv2.norm.weight``, ``bn1.bias`` -> ``stem.conv1.norm.bias``.
    """
    module, _, tensor = torchvision_name.rpartition(".")
    if module in STEM_MODULES:
        return f"{STEM_MODULES[module]}.{tensor}"
    match = _BLOCK_PATTERN.fullmatch(module)
    if match is None or match.group(3) not in BLOCK_MODULES:
        raise ConversionError(f"tensor '{torchvision_name}' is not part of a torchvision ResNet trunk")
    stage, block, layer = match.groups()
    return f"res{int(stage) + 1}.{block}.{BLOCK_MODULES[layer]}.{tensor}"


def _conv_with_norm(prefix: str, out_channels: int, in_channels: int, kernel: int) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}.weight": (out_channels, in_channels, kernel, kernel)}
    for tensor in NORM_TENSORS:
        shapes[f"{prefix}.norm.{tensor}"] = () if tensor == OPTIONAL_SUFFIX else (out_channels,)
    return shapes


def detectron2_resnet_shapes(arch: str = "resnet50") -> dict[str, tuple[int, ...]]:
    """Names and shapes of detectron2's trunk (stem, res2-res5) for ``arch``.

    Built from the architecture (bottleneck: width 64*2^i, output 256*2^i; basic: width and output
    64*2^i; a projection shortcut where a block changes the channel count or stride), independently of
    ``detectron2_name``, so it can check the renaming. ``STRIDE_IN_1X1`` does not change the shapes.
    """
    layout = resnet_layout(arch)
    shapes = _conv_with_norm("stem.conv1", 64, 3, 7)
    in_channels = 64
    for stage, blocks in enumerate(layout.stage_blocks):
        width = 64 * 2**stage
        out_channels = width * 4 if layout.bottleneck else width
        for block in range(blocks):
            prefix = f"res{stage + 2}.{block}"
            strided = block == 0 and stage > 0
            if in_channels != out_channels or strided:
                shapes |= _conv_with_norm(f"{prefix}.shortcut", out_channels, in_channels, 1)
            if layout.bottleneck:
                shapes |= _conv_with_norm(f"{prefix}.conv1", width, in_channels, 1)
                shapes |= _conv_with_norm(f"{prefix}.conv2", width, width, 3)
                shapes |= _conv_with_norm(f"{prefix}.conv3", out_channels, width, 1)
            else:
                shapes |= _conv_with_norm(f"{prefix}.conv1", width, in_channels, 3)
                shapes |= _conv_with_norm(f"{prefix}.conv2", width, width, 3)
            in_channels = out_channels
    return shapes


def verify_detectron2_resnet(model: Mapping[str, np.ndarray], arch: str = "resnet50") -> None:
    """Raises ``ConversionError`` unless ``model`` holds exactly detectron2's ``arch`` trunk tensors and shapes."""
    expected = detectron2_resnet_shapes(arch)
    missing = [name for name in expected if name not in model and not name.endswith(OPTIONAL_SUFFIX)]
    if missing:
        raise ConversionError(f"{len(missing)} detectron2 {arch} tensor(s) missing, e.g. {', '.join(missing[:5])}")
    misshaped = [f"{name} {tuple(model[name].shape)} (expected {expected[name]})"
                 for name in expected if name in model and tuple(model[name].shape) != expected[name]]
    if misshaped:
        raise ConversionError(f"{len(misshaped)} tensor(s) with a shape detectron2's {arch} does not have: "
                              + "; ".join(misshaped[:5]))
    unexpected = sorted(set(model) - set(expected))
    if unexpected:
        raise ConversionError(f"{len(unexpected)} tensor(s) outside detectron2's {arch} trunk, "
                              f"e.g. {', '.join(unexpected[:5])}")


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    # detectron2 models are float32; numpy has no bfloat16.
    if tensor.is_floating_point():
        tensor = tensor.float()
    return tensor.detach().cpu().numpy()


def convert_state_dict(state: Mapping[str, torch.Tensor], arch: str = "resnet50") -> dict[str, np.ndarray]:
    """Renames a torchvision ``arch`` backbone state dict (no ``fc``) to detectron2 names, as numpy arrays."""
    model = {detectron2_name(name): _to_numpy(tensor) for name, tensor in state.items()}
    verify_detectron2_resnet(model, arch)
    return model


def write_detectron2_pickle(model: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Writes ``model`` atomically in the pickled layout detectron2's checkpointer expects."""
    with atomic_write(path, mode="wb") as handle:
        pickle.dump({"model": dict(model), "__author__": AUTHOR, "matching_heuristics": True}, handle,
                    protocol=pickle.HIGHEST_PROTOCOL)


def convert_checkpoint(source: str | Path, output: str | Path, check_with_detectron2: bool | None = None,
                       arch: str = "resnet50") -> ConversionSummary:
    """Reads any supported checkpoint of a torchvision ``arch`` and writes detectron2's ``.pkl`` to ``output``.

    ``check_with_detectron2``: ``None`` checks whenever detectron2 is importable; ``True`` requires it.
    On a failed check the output file is removed. Raises ``CheckpointError`` (unreadable, unknown or
    incomplete input) or ``ConversionError``.
    """
    output = Path(output)
    if output.suffix != ".pkl":
        raise ConversionError(f"output {output} must end in .pkl: detectron2 reads other names with torch.load "
                              "and would ignore the matching heuristics")
    resnet_layout(arch)
    state, source_format = load_backbone_state_dict(source, arch)
    require_imagenet_stem(state, str(source), "detectron2's ResNet")
    model = convert_state_dict(state, arch)
    if check_with_detectron2 is None:
        check_with_detectron2 = detectron2_available()
    elif check_with_detectron2 and not detectron2_available():
        raise ConversionError("a detectron2 check was requested but detectron2 is not importable")
    write_detectron2_pickle(model, output)
    trunk_checked = None
    if check_with_detectron2:
        from transfer.detection.detectron2.verify import count_matched_trunk_tensors

        try:
            trunk_checked = count_matched_trunk_tensors(output, model, arch=arch)
        except ConversionError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(output)
            raise
    return ConversionSummary(str(source), source_format, str(output), len(model), trunk_checked, arch)
