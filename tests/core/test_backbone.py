"""Backbone loading: every checkpoint layout, strict weights, clear errors for misshaped or unsafe files,
seeded random init."""

import datetime

import pytest
import torch

from core.checkpoint import CheckpointError
from core.backbone import build_backbone
from core.backbone import RANDOM_INIT_LABEL, load_backbone


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


@pytest.mark.parametrize("layout", ["official-checkpoint", "pretrain-checkpoint"])
def test_loads_backbone_out_of_full_training_checkpoints(tmp_path, layout):
    source = build_backbone("resnet18")
    torch.nn.init.normal_(source.layer1[0].conv1.weight)
    projector = {"projector.0.weight": torch.zeros(8, 512), "bn.running_mean": torch.zeros(8)}
    model = {**{f"backbone.{key}": value for key, value in source.state_dict().items()}, **projector}
    if layout == "official-checkpoint":  # the release's checkpoint.pth: DDP-prefixed model plus optimizer state
        checkpoint = {"epoch": 1000, "model": {f"module.{key}": value for key, value in model.items()},
                      "optimizer": {"state": {}, "param_groups": []}}
    else:
        checkpoint = {"format": "barlowtwins-pretrain-checkpoint", "model": model, "epoch": 3}
    torch.save(checkpoint, tmp_path / "checkpoint.pth")
    loaded = load_backbone(tmp_path / "checkpoint.pth", "resnet18")
    assert loaded.source_format == {"official-checkpoint": "ddp-backbone"}.get(layout, layout)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_checkpoint_needing_arbitrary_unpickling_is_refused(tmp_path):
    torch.save({"conv1.weight": torch.zeros(1), "extra": datetime.date(2021, 3, 4)}, tmp_path / "unsafe.pth")
    with pytest.raises(CheckpointError, match="unsafe.pth"):
        load_backbone(tmp_path / "unsafe.pth", "resnet18")
