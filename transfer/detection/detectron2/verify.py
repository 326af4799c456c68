"""Checks a converted ``.pkl`` the way training will use it: loaded by detectron2 into a built model.

detectron2 only warns about unmatched weights, so this fails loudly instead when any trunk tensor
(``backbone.*``, ``backbone.bottom_up.*`` and the C4 head's ``roi_heads.res5.<block>.*``) is not the
converted value. Bottleneck ResNets are checked in an R-C4 model (res5 in the ROI head, as the protocol
configs); ResNet-18/34 in an R-FPN model, the only form in which detectron2 builds BasicBlock trunks.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, get_cfg
from detectron2.modeling import build_model

from transfer.detection.detectron2.layout import OPTIONAL_SUFFIX, ConversionError, resnet_layout

# detectron2's Base-RCNN-FPN model, with res2 sized for BasicBlocks (RES2_OUT_CHANNELS 64, as R18/R34 require).
_BASIC_BLOCK_FPN_OPTIONS = [
    "MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
    "MODEL.RESNETS.OUT_FEATURES", "['res2', 'res3', 'res4', 'res5']",
    "MODEL.FPN.IN_FEATURES", "['res2', 'res3', 'res4', 'res5']",
    "MODEL.ANCHOR_GENERATOR.SIZES", "[[32], [64], [128], [256], [512]]",
    "MODEL.RPN.IN_FEATURES", "['p2', 'p3', 'p4', 'p5', 'p6']",
    "MODEL.ROI_HEADS.NAME", "StandardROIHeads", "MODEL.ROI_HEADS.IN_FEATURES", "['p2', 'p3', 'p4', 'p5']",
    "MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", "MODEL.ROI_BOX_HEAD.NUM_FC", "2",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "7",
]
_TRUNK_KEY = re.compile(r"(?:backbone\.(?:bottom_up\.)?|roi_heads\.)((?:stem|res[2-5]\.\d+)\..+)")


def verification_config(arch: str = "resnet50") -> CfgNode:
    """A detectron2 Faster R-CNN on CPU with the protocol's trunk settings: R-C4, or R-FPN for ResNet-18/34."""
    layout = resnet_layout(arch)
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = layout.depth
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    if layout.bottleneck:
        cfg.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
        return cfg
    cfg.merge_from_list(_BASIC_BLOCK_FPN_OPTIONS)
    return cfg


def trunk_tensor_name(model_key: str) -> str | None:
    """The converter's name for a detectron2 model state key.

    E.g. ``backbone.res2.0.conv1.weight`` -> ``res2.0.conv1.weight``.

    ``None`` for tensors outside the ResNet trunk (RPN, box predictor, an extra res5 norm, FPN layers).
    """
    match = _TRUNK_KEY.fullmatch(model_key)
    return match.group(1) if match else None


def compare_trunk(model_state: Mapping[str, torch.Tensor], converted: Mapping[str, np.ndarray]) -> int:
    """Number of trunk tensors of ``model_state`` equal to ``converted``; raises ``ConversionError`` on any other."""
    checked, problems = 0, []
    for key, value in model_state.items():
        name = trunk_tensor_name(key)
        if name is None or (name.endswith(OPTIONAL_SUFFIX) and name not in converted):
            continue
        if name not in converted:
            problems.append(f"{key} has no converted tensor '{name}'")
        elif not torch.equal(value.detach().cpu(), torch.as_tensor(converted[name]).to(value.dtype)):
            problems.append(f"{key} differs from converted '{name}' after loading")
        checked += 1
    if problems:
        raise ConversionError(f"{len(problems)} detectron2 trunk tensor(s) not loaded: " + "; ".join(problems[:5]))
    if checked == 0:
        raise ConversionError("the detectron2 model has no ResNet trunk tensors to check")
    return checked


def load_into_model(model: torch.nn.Module, weights: str | Path) -> None:
    """Loads ``weights`` with ``DetectionCheckpointer``, as ``DefaultTrainer.resume_or_load`` does."""
    # The checkpointer's per-key "not found" report for head layers is expected noise here.
    logger = logging.getLogger("fvcore.common.checkpoint")
    previous_level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        DetectionCheckpointer(model).load(str(weights))
    finally:
        logger.setLevel(previous_level)


def count_matched_trunk_tensors(weights: str | Path, converted: Mapping[str, np.ndarray],
                                cfg: CfgNode | None = None, arch: str = "resnet50") -> int:
    """Builds ``cfg`` (default: ``verification_config(arch)``), loads ``weights`` and checks every trunk tensor."""
    model = build_model(cfg if cfg is not None else verification_config(arch))
    load_into_model(model, weights)
    return compare_trunk(model.state_dict(), converted)
