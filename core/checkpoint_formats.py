"""The checkpoint-format registry: where each public release keeps its ResNet, and how to rename it.

One ``CheckpointFormat`` per *key layout family*. Releases whose files have identical key layouts
(e.g. the DINO, VICReg, VICRegL and Barlow Twins backbone files are all plain torchvision names
without ``fc``) share one entry, so two entries only both match a file when they would convert it
differently. Each entry names where its backbone sits (``layouts``: nested keys, then a key prefix,
one or more per network the file holds; the first network is the one the release's authors
evaluate) and a pure ``filter_fn`` in the style of timm's ``checkpoint_filter_fn`` that turns the
tensors under that prefix into torchvision ResNet names. docs/checkpoints.md cites, for every entry,
the public code that writes the layout.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Callable, Mapping

import torch

StateDict = dict[str, torch.Tensor]

PRETRAIN_CHECKPOINT_FORMAT = "barlowtwins-pretrain-checkpoint"
TORCHVISION_STEM_KEY = "conv1.weight"  # the key whose presence marks a layout's backbone


@dataclass(frozen=True)
class Layout:
    """Where one network's backbone tensors sit: the nested keys leading to a state dict, then a key prefix."""

    source: str  # which network of the file ("query", "teacher", ...); the default source is listed first
    path: tuple[str, ...]
    prefix: str

    def describe(self) -> str:
        where = "".join(f"[{part!r}]" for part in self.path) or "the top level"
        return f"{where} keys '{self.prefix}*'"


@dataclass(frozen=True)
class CheckpointFormat:
    """One key-layout family: the releases it covers, where their backbone is and how to rename it."""

    name: str
    releases: str
    layouts: tuple[Layout, ...]
    filter_fn: Callable[[Mapping[str, torch.Tensor]], StateDict]  # prefix-stripped state -> torchvision names
    file_key: Callable[[str], str] = lambda name: name  # torchvision name -> the name the file uses
    requires: Callable[[Mapping], bool] = lambda checkpoint: True  # a top-level marker, where the layout has one
    marker: str = ""  # what ``requires`` looks for, for error messages

    @property
    def sources(self) -> tuple[str, ...]:
        """The networks a file of this format may hold, the evaluated one first."""
        return tuple(dict.fromkeys(layout.source for layout in self.layouts))

    @property
    def default_source(self) -> str:
        return self.layouts[0].source


def drop_prefixes(*prefixes: str) -> Callable[[Mapping[str, torch.Tensor]], StateDict]:
    """A filter that keeps every tensor except those under ``prefixes`` (heads, projectors, classifiers)."""
    def filter_fn(state: Mapping[str, torch.Tensor]) -> StateDict:
        return {key: value for key, value in state.items() if not key.startswith(prefixes)}
    filter_fn.__doc__ = f"Drops {', '.join(prefixes)}." if prefixes else "Keeps every tensor under the prefix."
    return filter_fn


# ``nn.Sequential(*list(resnet.children())[:-1])`` numbers torchvision's children; 2 (relu), 3 (maxpool)
# and 8 (avgpool) hold no tensors.
SEQUENTIAL_INDEX_TO_NAME = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
SEQUENTIAL_NAME_TO_INDEX = {name: index for index, name in SEQUENTIAL_INDEX_TO_NAME.items()}
_SEQUENTIAL_KEY = re.compile(r"([0-9]+)\.(.+)")


def sequential_to_torchvision(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Renames ``nn.Sequential`` child indices (``4.0.conv1.weight``) to torchvision names (``layer1.0.conv1.weight``).

    Keys that are not a numbered child holding tensors are kept as they are (and fail verification).
    """
    renamed: StateDict = {}
    for key, value in state.items():
        match = _SEQUENTIAL_KEY.fullmatch(key)
        if match and match.group(1) in SEQUENTIAL_INDEX_TO_NAME:
            key = f"{SEQUENTIAL_INDEX_TO_NAME[match.group(1)]}.{match.group(2)}"
        renamed[key] = value
    return renamed


def torchvision_to_sequential(name: str) -> str:
    """Inverse of ``sequential_to_torchvision`` for one torchvision name."""
    module, rest = name.split(".", 1)
    return f"{SEQUENTIAL_NAME_TO_INDEX.get(module, module)}.{rest}"


def _flat_or_under(key: str, prefix: str, source: str) -> tuple[Layout, Layout]:
    return Layout(source, (), prefix), Layout(source, (key,), prefix)


CHECKPOINT_FORMATS: dict[str, CheckpointFormat] = {fmt.name: fmt for fmt in (
    CheckpointFormat(
        "pretrain-checkpoint",
        "this project's pretraining checkpoint.pth (pretrain/train.py)",
        (Layout("backbone", ("model",), "backbone."),),
        drop_prefixes(),
        requires=lambda checkpoint: checkpoint.get("format") == PRETRAIN_CHECKPOINT_FORMAT,
        marker=f"the entry format: {PRETRAIN_CHECKPOINT_FORMAT!r}",
    ),
    CheckpointFormat(
        "torchvision",
        "torchvision and timm ResNet weights (fc dropped); DINO dino_resnet50_pretrain.pth; VICReg resnet50.pth; "
        "VICRegL resnet50_alpha*.pth; Barlow Twins torch.hub resnet50.pth; this project's export; "
        "mmselfsup extract_backbone_weights.py output ({'state_dict': ...})",
        _flat_or_under("state_dict", "", "model"),
        drop_prefixes("fc."),
    ),
    CheckpointFormat(
        "ddp-torchvision",
        "SwAV, DeepCluster-v2 and SeLa-v2 *_pretrain.pth.tar and their training checkpoints",
        _flat_or_under("state_dict", "module.", "model"),
        drop_prefixes("projection_head.", "prototypes.", "fc."),
    ),
    CheckpointFormat(
        "moco",
        "MoCo v1/v2 moco_v*_pretrain.pth.tar and checkpoint_*.pth.tar",
        (Layout("query", ("state_dict",), "module.encoder_q."), Layout("key", ("state_dict",), "module.encoder_k.")),
        drop_prefixes("fc."),
    ),
    CheckpointFormat(
        "moco-v3",
        "MoCo v3 ResNet-50 r-50-*ep.pth.tar",
        (Layout("base", ("state_dict",), "module.base_encoder."),
         Layout("momentum", ("state_dict",), "module.momentum_encoder.")),
        drop_prefixes("fc."),
    ),
    CheckpointFormat(
        "dino",
        "DINO full training checkpoint (dino_resnet50_pretrain_full_checkpoint.pth, checkpoint.pth)",
        (Layout("teacher", ("teacher",), "module.backbone."), Layout("teacher", ("teacher",), "backbone."),
         Layout("student", ("student",), "module.backbone."), Layout("student", ("student",), "backbone.")),
        drop_prefixes(),
    ),
    CheckpointFormat(
        "ddp-backbone",
        "Barlow Twins checkpoint.pth, VICReg resnet50_fullckpt.pth, VICRegL *_fullckpt.pth",
        (Layout("backbone", ("model",), "module.backbone."),),
        drop_prefixes(),
    ),
    CheckpointFormat(
        "vissl",
        "VISSL training checkpoints (model_final_checkpoint_phase*.torch) and model-zoo converted_vissl_*.torch",
        (Layout("trunk", ("classy_state_dict", "base_model", "model", "trunk"), "_feature_blocks."),
         Layout("trunk", ("model_state_dict",), "_feature_blocks.")),
        drop_prefixes(),
    ),
    CheckpointFormat(
        "backbone-prefixed",
        "solo-learn .ckpt, mmselfsup/mmpretrain .pth ({'meta', 'state_dict'}), lightly ImageNet ResNet-50 "
        "benchmarks, this project's model state_dict",
        (*_flat_or_under("state_dict", "backbone.", "backbone"),
         Layout("momentum", ("state_dict",), "momentum_backbone."),  # solo-learn
         Layout("momentum", ("state_dict",), "encoder_k.module.0.")),  # mmselfsup MoCo (EMA of backbone+neck)
        drop_prefixes(),
    ),
    CheckpointFormat(
        "lightly-sequential",
        "lightly models with backbone = nn.Sequential(*list(resnet.children())[:-1]): Lightning .ckpt, "
        "model.state_dict(), the tutorial's {'resnet18_parameters': ...} export",
        (*_flat_or_under("state_dict", "backbone.", "backbone"), Layout("backbone", ("resnet18_parameters",), ""),
         Layout("momentum", ("state_dict",), "backbone_momentum."), Layout("momentum", (), "backbone_momentum.")),
        sequential_to_torchvision,
        file_key=torchvision_to_sequential,
    ),
)}


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--source`` and ``--format``: the two choices a weights file may need, as every CLI spells them."""
    sources = sorted({source for fmt in CHECKPOINT_FORMATS.values() for source in fmt.sources[1:]})
    parser.add_argument("--source", default=None, metavar="NETWORK",
                        help=f"network to take from a file holding two ({', '.join(sources)}); default: the one "
                             "its authors evaluate (MoCo's query encoder, DINO's teacher, ...)")
    parser.add_argument("--format", dest="checkpoint_format", default=None, choices=list(CHECKPOINT_FORMATS),
                        help="checkpoint format, for a file whose layout two formats match (default: detected)")
