"""detectron2's ResNet layouts (depth, block type, blocks per stage) and the error of a backbone that does not fit
one. Shared by the converter (``convert``), its detectron2 check (``verify``) and the task options (``tasks``);
imports nothing from them."""

from __future__ import annotations

import dataclasses

# Counters that BatchNorm exports may omit; their absence changes nothing detectron2 uses.
OPTIONAL_SUFFIX = "num_batches_tracked"


class ConversionError(ValueError):
    """The input cannot be turned into a complete, loadable detectron2 ResNet checkpoint."""


@dataclasses.dataclass(frozen=True)
class ResNetLayout:
    """A ResNet's architecture as detectron2 builds it (``MODEL.RESNETS.DEPTH``)."""

    depth: int
    bottleneck: bool  # BottleneckBlock (1x1-3x3-1x1, 4x expansion) or BasicBlock (3x3-3x3)
    stage_blocks: tuple[int, int, int, int]  # blocks in res2..res5 (torchvision layer1..layer4)


# torchvision arch -> its layout (He et al. 2016, Table 1; detectron2's build_resnet_backbone).
ARCHITECTURES: dict[str, ResNetLayout] = {
    "resnet18": ResNetLayout(18, False, (2, 2, 2, 2)),
    "resnet34": ResNetLayout(34, False, (3, 4, 6, 3)),
    "resnet50": ResNetLayout(50, True, (3, 4, 6, 3)),
    "resnet101": ResNetLayout(101, True, (3, 4, 23, 3)),
    "resnet152": ResNetLayout(152, True, (3, 8, 36, 3)),
}


def resnet_layout(arch: str) -> ResNetLayout:
    """The layout of ``arch``; ``ConversionError`` naming the supported ones otherwise."""
    if arch not in ARCHITECTURES:
        raise ConversionError(f"unsupported arch '{arch}': choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]
