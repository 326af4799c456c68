"""Backbone export: from our checkpoints and the official release layout, into torchvision with only fc missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torchvision

from core.checkpoint import PRETRAIN_CHECKPOINT_FORMAT, load_backbone_state_dict
from pretrain.export import export_backbone
from pretrain.model import BarlowTwins

REPO = Path(__file__).resolve().parents[2]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained_like_model() -> BarlowTwins:
    """A resnet18 BarlowTwins whose BatchNorm statistics are not the defaults (so copying is visible)."""
    torch.manual_seed(0)
    model = BarlowTwins("resnet18", "32-32", batch_size=4)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.weight.data.uniform_(0.5, 1.5)
    return model


def assert_loads_into_torchvision_without_fc(path: Path, model: BarlowTwins) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    network = torchvision.models.resnet18()
    result = network.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"]
    assert result.unexpected_keys == []
    reference = model.backbone.state_dict()
    for key, tensor in network.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(tensor, reference[key]), key


def test_export_from_our_checkpoint(trained_like_model, tmp_path):
    checkpoint = {"format": PRETRAIN_CHECKPOINT_FORMAT, "model": trained_like_model.state_dict(), "optimizer": {},
                  "epoch": 3, "step": 30}
    torch.save(checkpoint, tmp_path / "checkpoint.pth")
    assert export_backbone(tmp_path / "checkpoint.pth", tmp_path / "resnet18.pth", arch="resnet18") \
        == "pretrain-checkpoint"
    assert_loads_into_torchvision_without_fc(tmp_path / "resnet18.pth", trained_like_model)


def test_export_tool_from_an_official_style_checkpoint(trained_like_model, tmp_path, capsys):
    # The official main.py saves dict(epoch, model=DDP.state_dict(), optimizer=...): keys carry "module.".
    official = {"epoch": 1000,
                "model": {f"module.{key}": value for key, value in trained_like_model.state_dict().items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.0, "params": [0, 1]}]}}
    torch.save(official, tmp_path / "checkpoint.pth")
    tool = load_tool("export_backbone")
    assert tool.main([str(tmp_path / "checkpoint.pth"), str(tmp_path / "out" / "r18.pth"), "--arch", "resnet18"]) == 0
    assert "ddp-backbone" in capsys.readouterr().out
    assert_loads_into_torchvision_without_fc(tmp_path / "out" / "r18.pth", trained_like_model)


def test_export_tool_names_the_problem(trained_like_model, tmp_path, capsys):
    tool = load_tool("export_backbone")
    assert tool.main([str(tmp_path / "missing.pth"), str(tmp_path / "out.pth")]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err
    torch.save({"format": PRETRAIN_CHECKPOINT_FORMAT, "model": trained_like_model.state_dict()}, tmp_path / "c.pth")
    assert tool.main([str(tmp_path / "c.pth"), str(tmp_path / "out.pth"), "--arch", "resnet50"]) == 2
    assert "resnet50" in capsys.readouterr().err  # a resnet18 is not a resnet50
    assert not (tmp_path / "out.pth").exists()


def test_export_also_writes_safetensors_with_arch_and_format(trained_like_model, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    checkpoint = {"format": PRETRAIN_CHECKPOINT_FORMAT, "model": trained_like_model.state_dict()}
    torch.save(checkpoint, tmp_path / "checkpoint.pth")
    export_backbone(tmp_path / "checkpoint.pth", tmp_path / "resnet18.pth", arch="resnet18")
    with safe_open(str(tmp_path / "resnet18.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["arch"] == "resnet18" and metadata["source_format"] == "pretrain-checkpoint"
    pth = torch.load(tmp_path / "resnet18.pth", weights_only=True)
    safetensors = load_file(str(tmp_path / "resnet18.safetensors"))
    assert set(pth) == set(safetensors) and all(torch.equal(pth[key], safetensors[key]) for key in pth)
    # every loader reads it (detected as plain torchvision names), the detectron2 converter included
    assert load_backbone_state_dict(tmp_path / "resnet18.safetensors", "resnet18")[1] == "torchvision"
    tool = load_tool("convert_to_d2")
    assert tool.main([str(tmp_path / "resnet18.safetensors"), str(tmp_path / "r18.pkl"), "--arch", "resnet18",
                      "--detectron2-check", "no"]) == 0
    assert (tmp_path / "r18.pkl").is_file()
