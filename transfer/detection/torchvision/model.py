"""Faster/Mask R-CNN with a ResNet-FPN backbone initialised from the exported torchvision weights.

The exported backbone already uses torchvision's parameter names, so it is loaded directly into
``torchvision.models.<arch>`` (no conversion); ``load_backbone_state_dict`` rejects a missing or
misshaped tensor, and the load below is strict apart from the classifier ``fc`` that detection drops.
"""

from __future__ import annotations

from typing import Callable

import torch
import torchvision
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads
from torchvision.ops import FrozenBatchNorm2d

from core.backbone import require_imagenet_stem
from core.checkpoint import CheckpointError, load_backbone_state_dict
from transfer.detection.torchvision.config import ModelConfig

# ``syncbn`` builds plain BatchNorm; the trainer converts it to SyncBatchNorm under multi-GPU DDP.
NORM_LAYERS: dict[str, Callable[..., nn.Module]] = {
    "syncbn": nn.BatchNorm2d,
    "bn": nn.BatchNorm2d,
    "frozen_bn": FrozenBatchNorm2d,
}

DETECTORS: dict[str, type[FasterRCNN]] = {
    "faster_rcnn": FasterRCNN,
    "mask_rcnn": MaskRCNN,
}


def build_resnet(model: ModelConfig) -> nn.Module:
    """The torchvision ResNet trunk with the configured norm layer, loaded from ``model.weights``."""
    resnet = getattr(torchvision.models, model.arch)(weights=None, norm_layer=NORM_LAYERS[model.norm])
    if model.random_init:
        return resnet
    state, _ = load_backbone_state_dict(model.weights, model.arch, model.weights_source, model.weights_format)
    require_imagenet_stem(state, str(model.weights), "the torchvision detection engine")
    if model.norm == "frozen_bn":  # FrozenBatchNorm2d has no step counter
        state = {key: value for key, value in state.items() if not key.endswith("num_batches_tracked")}
    incompatible = resnet.load_state_dict(state, strict=False)
    missing = [key for key in incompatible.missing_keys
               if not key.startswith("fc.") and not key.endswith("num_batches_tracked")]
    if missing or incompatible.unexpected_keys:
        raise CheckpointError(f"{model.weights}: cannot load into {model.arch}: missing {missing[:5]}, "
                              f"unexpected {incompatible.unexpected_keys[:5]}")
    return resnet


def normalised_heads(meta_arch: str, channels: int) -> dict[str, nn.Module]:
    """detectron2's SyncBN FPN heads: 4 conv (BN) + 1 fc box head, 4 conv (BN) mask head."""
    heads = {"box_head": FastRCNNConvFCHead((channels, 7, 7), [256] * 4, [1024], norm_layer=nn.BatchNorm2d)}
    if meta_arch == "mask_rcnn":
        heads["mask_head"] = MaskRCNNHeads(channels, [256] * 4, 1, norm_layer=nn.BatchNorm2d)
    return heads


def build_detector(model: ModelConfig, num_classes: int) -> nn.Module:
    """Faster or Mask R-CNN for ``num_classes`` object classes (plus background)."""
    resnet = build_resnet(model)
    fpn_norm = nn.BatchNorm2d if model.norm_in_heads else None
    backbone = _resnet_fpn_extractor(resnet, trainable_layers=model.trainable_layers, norm_layer=fpn_norm)
    heads = normalised_heads(model.meta_arch, backbone.out_channels) if model.norm_in_heads else {}
    return DETECTORS[model.meta_arch](
        backbone,
        num_classes=num_classes + 1,
        **heads,
        min_size=tuple(model.min_size_train),
        max_size=model.max_size_train,
        image_mean=list(model.pixel_mean),
        image_std=list(model.pixel_std),
        box_detections_per_img=model.detections_per_image,
        rpn_pre_nms_top_n_train=model.rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=model.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=model.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=model.rpn_post_nms_top_n_test,
        box_batch_size_per_image=model.roi_batch_size_per_image,
    )


def set_test_resolution(detector: nn.Module, model: ModelConfig) -> None:
    """Switches the detector's resizing to the single test size (shortest edge, longest-edge cap)."""
    detector.transform.min_size = (model.min_size_test,)
    detector.transform.max_size = model.max_size_test


def set_train_resolution(detector: nn.Module, model: ModelConfig) -> None:
    """Restores the multi-scale training sizes after an evaluation."""
    detector.transform.min_size = tuple(model.min_size_train)
    detector.transform.max_size = model.max_size_train


def backbone_trunk_state(detector: nn.Module) -> dict[str, torch.Tensor]:
    """The ResNet tensors inside the detector, under torchvision ResNet names (for checks and tests)."""
    return dict(detector.backbone.body.state_dict())
