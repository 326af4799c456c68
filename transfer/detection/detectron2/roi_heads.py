"""``Res5ROIHeadsExtraNorm``: detectron2's C4 ROI head with a norm layer after res5 (MoCo's detection protocol).

In the C4 model the ROI head runs res5 on each pooled region; the transfer protocol of MoCo (followed by
Barlow Twins) appends a ``MODEL.RESNETS.NORM`` layer (SyncBN) to that res5 before the box predictor.
Importing this module registers the head in ``ROI_HEADS_REGISTRY`` (needs detectron2).
"""

from __future__ import annotations

from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec, get_norm
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, Res5ROIHeads


class Res5ROIHeadsExtraNorm(Res5ROIHeads):
    """``Res5ROIHeads`` whose res5 stage ends in a ``MODEL.RESNETS.NORM`` layer over its output channels."""

    def __init__(self, cfg: CfgNode, input_shape: dict[str, ShapeSpec]) -> None:
        super().__init__(cfg, input_shape)
        self.res5.add_module("norm", get_norm(cfg.MODEL.RESNETS.NORM, self.res5[-1].out_channels))


# Guarded so that a second import of this file (e.g. by path) does not trip the registry's duplicate check.
if Res5ROIHeadsExtraNorm.__name__ not in ROI_HEADS_REGISTRY:
    ROI_HEADS_REGISTRY.register(Res5ROIHeadsExtraNorm)
