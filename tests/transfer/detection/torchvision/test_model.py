"""The torchvision engine's detector: backbone initialised exactly from the exported weights, errors otherwise."""

import pytest
import torch
import torchvision
from torchvision.ops import FrozenBatchNorm2d

from core.checkpoint import CheckpointError
from transfer.detection.torchvision.config import ModelConfig
from transfer.detection.torchvision.model import backbone_trunk_state, build_detector


@pytest.fixture(scope="module")
def source_weights(tmp_path_factory):
    """A resnet18 state dict with non-default values everywhere (BN statistics included)."""
    torch.manual_seed(3)
    state = torchvision.models.resnet18().state_dict()
    for key, value in state.items():
        if value.is_floating_point():
            state[key] = torch.rand_like(value) + 0.5
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("norm", ["bn", "frozen_bn", "syncbn"])
def test_backbone_equals_source_weights(source_weights, norm):
    path, state = source_weights
    detector = build_detector(ModelConfig(arch="resnet18", weights=str(path), norm=norm), num_classes=20)
    loaded = backbone_trunk_state(detector)
    compared = [key for key in state if not key.startswith("fc.") and not key.endswith("num_batches_tracked")]
    assert len(compared) == 100  # resnet18: every conv/BN tensor
    for key in compared:
        torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0, msg=key)
    norm_type = FrozenBatchNorm2d if norm == "frozen_bn" else torch.nn.BatchNorm2d
    assert isinstance(detector.backbone.body.bn1, norm_type)


def test_every_stage_trains_and_class_count(source_weights):
    detector = build_detector(ModelConfig(arch="resnet18", weights=str(source_weights[0]), norm="bn"), num_classes=20)
    assert all(parameter.requires_grad for parameter in detector.backbone.body.parameters())  # FREEZE_AT 0
    assert detector.roi_heads.box_predictor.cls_score.out_features == 21  # 20 classes + background


def test_mask_rcnn_has_a_mask_head(source_weights):
    config = ModelConfig(meta_arch="mask_rcnn", arch="resnet18", weights=str(source_weights[0]))
    detector = build_detector(config, num_classes=5)
    assert detector.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 6


def test_normalised_heads(source_weights):
    config = ModelConfig(meta_arch="mask_rcnn", arch="resnet18", weights=str(source_weights[0]), norm_in_heads=True)
    detector = build_detector(config, num_classes=5)
    for head in (detector.backbone.fpn, detector.roi_heads.box_head, detector.roi_heads.mask_head):
        assert sum(isinstance(module, torch.nn.BatchNorm2d) for module in head.modules()) >= 4
    plain = build_detector(ModelConfig(arch="resnet18", weights=str(source_weights[0])), num_classes=5)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in plain.roi_heads.modules())


def test_wrong_architecture_names_a_tensor(source_weights):
    with pytest.raises(CheckpointError, match="layer1.0.conv3.weight|layer1.0.conv1.weight"):
        build_detector(ModelConfig(arch="resnet50", weights=str(source_weights[0])), num_classes=20)


def test_misshaped_or_missing_tensor_is_an_error(source_weights, tmp_path):
    _, state = source_weights
    broken = dict(state)
    broken["layer2.0.conv1.weight"] = torch.zeros(3, 3)
    torch.save(broken, tmp_path / "misshaped.pth")
    with pytest.raises(CheckpointError, match="layer2.0.conv1.weight"):
        build_detector(ModelConfig(arch="resnet18", weights=str(tmp_path / "misshaped.pth")), num_classes=20)
    del broken["layer2.0.conv1.weight"]
    torch.save(broken, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="layer2.0.conv1.weight"):
        build_detector(ModelConfig(arch="resnet18", weights=str(tmp_path / "missing.pth")), num_classes=20)
    with pytest.raises(CheckpointError, match="not found"):
        build_detector(ModelConfig(arch="resnet18", weights=str(tmp_path / "absent.pth")), num_classes=20)
