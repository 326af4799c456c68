"""ResNet -> detectron2 conversion: every input layout, the exact names/shapes of detectron2 0.6, other archs,
refusals."""

import ast
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from core.checkpoint import PRETRAIN_CHECKPOINT_FORMAT, CheckpointError
from pretrain.export import export_backbone
from core.backbone import build_backbone
from transfer.detection.detectron2.convert import (
    ARCHITECTURES,
    ConversionError,
    convert_checkpoint,
    convert_state_dict,
    detectron2_name,
    detectron2_resnet_shapes,
)

REFERENCE = Path(__file__).resolve().parents[3] / "data" / "detectron2_r50_state_dict_keys.json"
# A C4 model's trunk lives under these prefixes; FPN's under backbone.bottom_up.
REFERENCE_PREFIXES = ("backbone.bottom_up.", "backbone.", "roi_heads.")


def reference_shapes(model_name):
    keys = json.loads(REFERENCE.read_text())["models"][model_name]["keys"]
    shapes = {}
    for key, shape in keys.items():
        for prefix in REFERENCE_PREFIXES:
            if key.startswith(prefix):
                shapes[key.removeprefix(prefix)] = tuple(shape)
                break
    return shapes


@pytest.fixture(scope="module")
def resnet50_state():
    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    for key, value in state.items():
        if key.endswith("running_var") or key.endswith("running_mean"):
            value.uniform_(0.5, 1.5)  # distinct values, so a wrong mapping cannot pass by accident
    return state


def trunk(state):
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def input_layouts(state):
    """Every input the converter accepts, as the files the issue lists them."""
    backbone = {f"backbone.{key}": value for key, value in trunk(state).items()}
    projector = {"projector.0.weight": torch.randn(16, 2048), "projector.1.weight": torch.ones(16),
                 "projector.1.running_mean": torch.zeros(16), "bn.running_var": torch.ones(16)}
    official_model = {f"module.{key}": value for key, value in {**backbone, **projector}.items()}
    pretrain_checkpoint = {"format": PRETRAIN_CHECKPOINT_FORMAT, "model": {**backbone, **projector},
                           "optimizer": {"state": {}, "param_groups": []}, "epoch": 2}
    return {
        "exported-resnet50.pth": (pretrain_checkpoint, "torchvision"),
        "pretrain-checkpoint": (pretrain_checkpoint, "pretrain-checkpoint"),
        "official-resnet50.pth": (trunk(state), "torchvision"),
        "official-checkpoint.pth": ({"epoch": 1000,
                                     "model": official_model,
                                     "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}},
                                                   "param_groups": [{"lr": 0.2, "params": [0]}]}},
                                    "ddp-backbone"),
        "torchvision-with-fc": (state, "torchvision"),
    }


def read_pkl(path):
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="latin1")


@pytest.mark.parametrize("layout", ["exported-resnet50.pth", "pretrain-checkpoint", "official-resnet50.pth",
                                    "official-checkpoint.pth", "torchvision-with-fc"])
def test_every_input_layout_converts_to_detectron2_pickle(tmp_path, resnet50_state, layout):
    content, expected_format = input_layouts(resnet50_state)[layout]
    source = tmp_path / "in.pth"
    torch.save(content, source)
    if layout == "exported-resnet50.pth":  # made by the pretraining stage's own export
        export_backbone(source, tmp_path / "resnet50.pth", "resnet50")
        source = tmp_path / "resnet50.pth"
    summary = convert_checkpoint(source, tmp_path / "out.pkl", check_with_detectron2=False)
    data = read_pkl(tmp_path / "out.pkl")
    assert data["matching_heuristics"] is True and data["__author__"]
    assert summary.source_format == expected_format
    # Projector, fc and optimizer are gone; what remains is exactly detectron2's R50-C4 trunk.
    shapes = {name: tuple(array.shape) for name, array in data["model"].items()}
    assert shapes == reference_shapes("faster_rcnn_R_50_C4")
    assert all(isinstance(array, np.ndarray) for array in data["model"].values())
    assert summary.tensors_written == len(data["model"]) == 318
    # The issue's renaming rules, one hand-picked tensor per rule.
    pairs = {"stem.conv1.weight": "conv1.weight", "stem.conv1.norm.running_var": "bn1.running_var",
             "res2.0.conv1.weight": "layer1.0.conv1.weight", "res3.2.conv2.norm.bias": "layer2.2.bn2.bias",
             "res4.5.conv3.norm.running_mean": "layer3.5.bn3.running_mean",
             "res5.0.shortcut.weight": "layer4.0.downsample.0.weight",
             "res5.0.shortcut.norm.running_var": "layer4.0.downsample.1.running_var",
             "res3.0.shortcut.norm.weight": "layer2.0.downsample.1.weight"}
    for d2_key, torchvision_key in pairs.items():
        np.testing.assert_array_equal(data["model"][d2_key], resnet50_state[torchvision_key].numpy())


def test_names_and_shapes_match_detectron2_reference_for_every_model():
    converted = convert_state_dict(trunk(torchvision.models.resnet50().state_dict()))
    shapes = {name: tuple(array.shape) for name, array in converted.items()}
    for model_name in ("faster_rcnn_R_50_C4", "mask_rcnn_R_50_C4", "mask_rcnn_R_50_FPN"):
        assert shapes == reference_shapes(model_name), model_name
    assert detectron2_resnet_shapes("resnet50") == reference_shapes("mask_rcnn_R_50_FPN")


def test_names_follow_the_torchvision_to_detectron2_rules():
    assert detectron2_name("conv1.weight") == "stem.conv1.weight"
    assert detectron2_name("bn1.num_batches_tracked") == "stem.conv1.norm.num_batches_tracked"
    assert detectron2_name("layer4.2.bn3.weight") == "res5.2.conv3.norm.weight"
    assert detectron2_name("layer1.0.downsample.1.bias") == "res2.0.shortcut.norm.bias"
    for foreign in ("fc.weight", "projector.0.weight", "layer5.0.conv1.weight", "layer1.0.relu.weight"):
        with pytest.raises(ConversionError, match="not part of a torchvision ResNet trunk"):
            detectron2_name(foreign)


def test_bfloat16_weights_are_written_as_float32(resnet50_state):
    converted = convert_state_dict({key: value.to(torch.bfloat16) if value.is_floating_point() else value
                                    for key, value in trunk(resnet50_state).items()})
    assert converted["res4.0.conv2.weight"].dtype == np.float32
    assert converted["stem.conv1.norm.num_batches_tracked"].dtype == np.int64


def test_missing_tensor_is_refused_naming_it(tmp_path, resnet50_state):
    state = trunk(resnet50_state)
    del state["layer3.4.conv2.weight"]
    torch.save(state, tmp_path / "in.pth")
    with pytest.raises(CheckpointError, match=r"layer3\.4\.conv2\.weight"):
        convert_checkpoint(tmp_path / "in.pth", tmp_path / "out.pkl", check_with_detectron2=False)
    assert not (tmp_path / "out.pkl").exists()


def test_misshaped_tensor_is_refused_naming_it(tmp_path, resnet50_state):
    state = dict(trunk(resnet50_state))
    state["layer4.0.conv1.weight"] = torch.zeros(512, 1024, 3, 3)
    torch.save(state, tmp_path / "in.pth")
    with pytest.raises(CheckpointError, match=r"layer4\.0\.conv1\.weight"):
        convert_checkpoint(tmp_path / "in.pth", tmp_path / "out.pkl", check_with_detectron2=False)


def renamed_by_the_issue_rules(torchvision_name):
    """The issue's renaming, written out independently of the converter."""
    name = re.sub(r"^layer(\d)", lambda match: f"res{int(match.group(1)) + 1}", torchvision_name)
    name = re.sub(r"^conv1\.", "stem.conv1.", name)
    name = re.sub(r"^bn1\.", "stem.conv1.norm.", name)
    name = re.sub(r"\.bn(\d)\.", r".conv\1.norm.", name)
    return name.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")


# Tensors per trunk, counted by hand: stem conv + 5 BN tensors = 6; a basic block 2 x 6 = 12, a bottleneck
# 3 x 6 = 18; shortcuts (6 each) in res3-res5's first block, and in res2's for bottlenecks (64 -> 256 channels).
TENSOR_COUNTS = {"resnet18": 6 + 8 * 12 + 3 * 6, "resnet34": 6 + 16 * 12 + 3 * 6, "resnet50": 6 + 16 * 18 + 4 * 6,
                 "resnet101": 6 + 33 * 18 + 4 * 6, "resnet152": 6 + 50 * 18 + 4 * 6}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_arch_layout_is_torchvision_renamed(arch):
    with torch.device("meta"):
        torchvision_state = getattr(torchvision.models, arch)().state_dict()
    expected = {renamed_by_the_issue_rules(key): tuple(value.shape) for key, value in torchvision_state.items()
                if not key.startswith("fc.")}
    assert detectron2_resnet_shapes(arch) == expected
    assert len(expected) == TENSOR_COUNTS[arch]


def test_resnet18_converts_with_its_arch(tmp_path):
    torch.manual_seed(0)
    state = build_backbone("resnet18").state_dict()  # what the demo pipeline exports as resnet18.pth
    for value in state.values():
        if value.is_floating_point():
            value.uniform_(0.5, 1.5)
    torch.save(state, tmp_path / "resnet18.pth")
    summary = convert_checkpoint(tmp_path / "resnet18.pth", tmp_path / "r18.pkl", check_with_detectron2=False,
                                 arch="resnet18")
    model = read_pkl(tmp_path / "r18.pkl")["model"]
    assert (summary.arch, summary.tensors_written, len(model)) == ("resnet18", 120, 120)
    pairs = {"stem.conv1.weight": "conv1.weight", "res2.1.conv2.norm.bias": "layer1.1.bn2.bias",
             "res3.0.shortcut.weight": "layer2.0.downsample.0.weight",
             "res5.1.conv1.weight": "layer4.1.conv1.weight"}
    for d2_key, torchvision_key in pairs.items():
        np.testing.assert_array_equal(model[d2_key], state[torchvision_key].numpy())
    # BasicBlocks: two convs, and res2 keeps 64 channels, so its first block has no projection shortcut.
    assert "res2.0.shortcut.weight" not in model and "res3.0.conv3.weight" not in model


def test_unknown_arch_and_wrong_arch_are_refused(tmp_path, resnet50_state):
    torch.save(trunk(resnet50_state), tmp_path / "in.pth")
    with pytest.raises(ConversionError, match="unsupported arch 'resnext50_32x4d'.*resnet18"):
        convert_checkpoint(tmp_path / "in.pth", tmp_path / "out.pkl", check_with_detectron2=False,
                           arch="resnext50_32x4d")
    with pytest.raises(CheckpointError, match="resnet34"):
        convert_checkpoint(tmp_path / "in.pth", tmp_path / "out.pkl", check_with_detectron2=False, arch="resnet34")


def test_resnet18_is_not_a_resnet50(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "in.pth")
    with pytest.raises(CheckpointError, match="resnet50"):
        convert_checkpoint(tmp_path / "in.pth", tmp_path / "out.pkl", check_with_detectron2=False)


def test_non_checkpoint_file_is_refused(tmp_path):
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes\.pth is not a readable PyTorch checkpoint"):
        convert_checkpoint(tmp_path / "notes.pth", tmp_path / "out.pkl", check_with_detectron2=False)


class TouchOnUnpickle:
    """Unpickling this would create a file: proof of arbitrary code execution."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_file_needing_arbitrary_unpickling_is_refused_not_executed(tmp_path, resnet50_state):
    marker = tmp_path / "executed"
    torch.save({**trunk(resnet50_state), "payload": TouchOnUnpickle(marker)}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="arbitrary unpickling"):
        convert_checkpoint(tmp_path / "evil.pth", tmp_path / "out.pkl", check_with_detectron2=False)
    assert not marker.exists()


def test_output_must_be_a_pkl(tmp_path, resnet50_state):
    torch.save(trunk(resnet50_state), tmp_path / "in.pth")
    with pytest.raises(ConversionError, match=r"\.pkl"):
        convert_checkpoint(tmp_path / "in.pth", tmp_path / "out.pth", check_with_detectron2=False)


def test_everything_but_train_net_imports_without_detectron2():
    # detectron2 made unimportable, as on a machine without it.
    code = ("import sys; sys.modules['detectron2'] = None\n"
            "import transfer, transfer.detection, transfer.detection.detectron2.convert, transfer.detection.detectron2.results, "
            "transfer.detection.detectron2.datasets, transfer.detection.detectron2.tasks, "
            "transfer.detection.detectron2.runner, "
            "transfer.detection.detectron2.layout, transfer.detection.torchvision.runner, transfer.detection.launch\n"
            "import transfer.registry; transfer.registry.all_tasks()\n"
            "from transfer.detection.detectron2.convert import detectron2_available\n"
            "assert not detectron2_available()\n"
            "try:\n    import transfer.detection.detectron2.train_net\nexcept ImportError as error:\n"
            "    assert 'docs/detectron2.md' in str(error)\nelse:\n    raise SystemExit('train_net imported')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[4],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_converter_and_its_detectron2_check_import_one_way():
    # convert -> verify -> layout: verify (and layout) must not import the converter back.
    package = Path(__file__).resolve().parents[4] / "transfer" / "detection" / "detectron2"
    for module in ("verify.py", "layout.py"):
        tree = ast.parse((package / module).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "transfer.detection.detectron2.convert" not in imported, module
