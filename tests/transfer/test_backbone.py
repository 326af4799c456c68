"""Backbone loading: strict weights, clear errors for misshaped files, seeded random init."""

import pytest
import torch

from pretrain.checkpoint import CheckpointError
from pretrain.model import build_backbone
from transfer.backbone import RANDOM_INIT_LABEL, load_backbone


def test_loads_torchvision_state_dict_exactly(tmp_path):
    source = build_backbone("resnet18")
    torch.nn.init.normal_(source.conv1.weight)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    loaded = load_backbone(tmp_path / "r18.pth", "resnet18")
    assert torch.equal(loaded.model.conv1.weight, source.conv1.weight)
    assert loaded.weights_sha256 and len(loaded.weights_sha256) == 64


def test_misshaped_tensor_is_an_error(tmp_path):
    state = build_backbone("resnet18").state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="layer1.0.conv1.weight"):
        load_backbone(tmp_path / "bad.pth", "resnet18")


def test_missing_tensor_is_an_error(tmp_path):
    state = build_backbone("resnet18").state_dict()
    del state["layer4.1.bn2.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="layer4.1.bn2.weight"):
        load_backbone(tmp_path / "partial.pth", "resnet18")


def test_random_init_is_seeded_and_labelled():
    first, second = load_backbone(None, "resnet18", random_init=True), load_backbone(None, "resnet18", random_init=True)
    assert first.weights == RANDOM_INIT_LABEL and first.weights_sha256 is None
    assert torch.equal(first.model.conv1.weight, second.model.conv1.weight)


def test_weights_required_unless_random(tmp_path):
    with pytest.raises(ValueError, match="random_init"):
        load_backbone(None, "resnet18")
    with pytest.raises(ValueError, match="not both"):
        load_backbone(tmp_path / "x.pth", "resnet18", random_init=True)
