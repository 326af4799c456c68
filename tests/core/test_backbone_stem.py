"""The small-image stem: what it is, and that saved weights rebuild the trunk they came from."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from core.backbone import build_backbone, load_backbone, stem_of_state
from pretrain.export import save_backbone


def _layer4_side(backbone: nn.Module, side: int) -> int:
    features = {}
    backbone.layer4.register_forward_hook(lambda _module, _inputs, output: features.setdefault("x", output))
    backbone.eval()(torch.zeros(1, 3, side, side))
    return features["x"].shape[-1]


def test_small_stem_is_a_3x3_stride_1_conv_without_max_pool():
    backbone = build_backbone("resnet18", "small")
    conv1 = backbone.conv1
    assert (conv1.kernel_size, conv1.stride, conv1.padding, conv1.bias) == ((3, 3), (1, 1), (1, 1), None)
    assert isinstance(backbone.maxpool, nn.Identity)
    # 32 px: the small stem keeps 32 into layer1, so layer4 (3 stride-2 stages) is 32 / 8 = 4; the ImageNet
    # stem divides by 4 first (conv1 stride 2, max-pool stride 2): 32 / 32 = 1.
    assert _layer4_side(backbone, 32) == 4
    assert _layer4_side(build_backbone("resnet18"), 32) == 1


def test_unknown_stem_is_refused():
    with pytest.raises(ValueError, match="unknown stem 'tiny'; valid stems: imagenet, small"):
        build_backbone("resnet18", "tiny")


def test_exported_small_stem_weights_load_as_small_stem(tmp_path):
    torch.manual_seed(0)
    trained = build_backbone("resnet18", "small")
    path = tmp_path / "resnet18.pth"
    save_backbone(trained.state_dict(), path, arch="resnet18")
    assert json.loads((tmp_path / "resnet18.json").read_text()) == {"arch": "resnet18", "stem": "small"}
    loaded = load_backbone(path, "resnet18")
    assert loaded.stem == "small" and isinstance(loaded.model.maxpool, nn.Identity)
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.model.eval()(images), trained.eval()(images))
    with pytest.raises(ValueError, match="small stem.*'imagenet' was asked for"):
        load_backbone(path, "resnet18", stem="imagenet")


def test_sidecar_that_disagrees_with_the_weights_is_an_error(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(build_backbone("resnet18").state_dict(), path)  # an older export: no sidecar, ImageNet stem
    assert load_backbone(path, "resnet18").stem == "imagenet"
    (tmp_path / "resnet18.json").write_text(json.dumps({"arch": "resnet18", "stem": "small"}))
    with pytest.raises(ValueError, match="records stem 'small'"):
        load_backbone(path, "resnet18")


def test_stem_is_read_from_conv1_kernel_size():
    assert stem_of_state({"conv1.weight": torch.zeros(64, 3, 7, 7)}, "x") == "imagenet"
    assert stem_of_state({"conv1.weight": torch.zeros(64, 3, 3, 3)}, "x") == "small"
    with pytest.raises(ValueError, match="5x5|\\(5, 5\\) kernel"):
        stem_of_state({"conv1.weight": torch.zeros(64, 3, 5, 5)}, "x")


def test_random_init_baseline_uses_the_requested_stem():
    assert isinstance(load_backbone(None, "resnet18", random_init=True, stem="small").model.maxpool, nn.Identity)
