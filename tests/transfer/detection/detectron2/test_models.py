"""Converted weights inside detectron2 models built from configs/detectron2 (needs detectron2)."""

import json
import pickle
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is an optional dependency built from source "
                                         "(docs/detectron2.md); these tests need it importable")

import torch  # noqa: E402
import torchvision  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from transfer.detection.detectron2 import train_net  # noqa: E402
from transfer.detection.detectron2.convert import ConversionError, convert_checkpoint  # noqa: E402
from transfer.detection.detectron2.tasks import arch_options  # noqa: E402
from transfer.detection.detectron2.verify import count_matched_trunk_tensors, load_into_model  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[4] / "configs" / "detectron2"
REFERENCE = Path(__file__).resolve().parents[3] / "data" / "detectron2_r50_state_dict_keys.json"
# config -> (reference model, where the C4 head's res5 or the FPN trunk lives)
CONFIGS = {
    "voc0712_faster_rcnn_R_50_C4_24k.yaml": "faster_rcnn_R_50_C4",
    "voc0712_faster_rcnn_R_50_C4_24k_moco.yaml": "faster_rcnn_R_50_C4",
    "coco_mask_rcnn_R_50_C4_1x.yaml": "mask_rcnn_R_50_C4",
    "coco_mask_rcnn_R_50_C4_2x.yaml": "mask_rcnn_R_50_C4",
    "coco_mask_rcnn_R_50_FPN_1x.yaml": "mask_rcnn_R_50_FPN",
    "quick_schedules/voc0712_faster_rcnn_R_50_C4_instant_test.yaml": "faster_rcnn_R_50_C4",
    "quick_schedules/coco_mask_rcnn_R_50_C4_instant_test.yaml": "mask_rcnn_R_50_C4",
    "quick_schedules/coco_mask_rcnn_R_50_FPN_instant_test.yaml": "mask_rcnn_R_50_FPN",
}
# Hand-written pairs (detectron2 model key without its trunk prefix, torchvision key), one per renaming rule.
PAIRS = {"stem.conv1.weight": "conv1.weight", "stem.conv1.norm.running_mean": "bn1.running_mean",
         "res2.0.shortcut.weight": "layer1.0.downsample.0.weight", "res3.1.conv2.norm.bias": "layer2.1.bn2.bias",
         "res4.5.conv3.weight": "layer3.5.conv3.weight",
         "res5.0.shortcut.norm.running_var": "layer4.0.downsample.1.running_var",
         "res5.2.conv3.norm.weight": "layer4.2.bn3.weight"}


@pytest.fixture(scope="module")
def source_and_converted(tmp_path_factory):
    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    for key, value in state.items():
        if value.is_floating_point():
            value.uniform_(0.5, 1.5)  # nothing equals detectron2's own initialisation by accident
    folder = tmp_path_factory.mktemp("weights")
    torch.save(state, folder / "resnet50.pth")
    convert_checkpoint(folder / "resnet50.pth", folder / "r50.pkl", check_with_detectron2=False)
    return state, folder / "r50.pkl"


def trunk_prefix(reference_model, key):
    if reference_model.endswith("FPN"):
        return "backbone.bottom_up."
    return "roi_heads." if key.startswith("res5") else "backbone."


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_converted_weights_load_into_every_config(config, source_and_converted):
    state, weights = source_and_converted
    cfg = train_net.load_config(str(CONFIG_DIR / config), ["MODEL.DEVICE", "cpu"], seed=None)
    model = build_model(cfg)
    load_into_model(model, weights)
    model_state = model.state_dict()
    reference = json.loads(REFERENCE.read_text())["models"][CONFIGS[config]]["keys"]
    # The built model has detectron2 0.6's trunk layout, and every trunk tensor is the source's.
    for key, shape in reference.items():
        assert tuple(model_state[key].shape) == tuple(shape), key
    for d2_key, torchvision_key in PAIRS.items():
        assert torch.equal(model_state[trunk_prefix(CONFIGS[config], d2_key) + d2_key], state[torchvision_key])
    with open(weights, "rb") as handle:
        converted = pickle.load(handle)["model"]
    for key in reference:
        name = key.removeprefix("backbone.bottom_up.").removeprefix("backbone.").removeprefix("roi_heads.")
        assert torch.equal(model_state[key], torch.as_tensor(converted[name])), key
    if "_C4_" in config:
        assert isinstance(model.roi_heads.res5.norm, torch.nn.SyncBatchNorm)
        assert model.roi_heads.res5.norm.num_features == 2048
    else:
        assert isinstance(model.backbone.fpn_lateral2.norm, torch.nn.SyncBatchNorm)


def test_converter_check_loads_into_detectron2(tmp_path, source_and_converted):
    state, _ = source_and_converted
    torch.save({"state_dict": state}, tmp_path / "wrapped.pth")
    summary = convert_checkpoint(tmp_path / "wrapped.pth", tmp_path / "out.pkl", check_with_detectron2=True)
    assert summary.detectron2_trunk_tensors_checked == 318


def test_converter_check_catches_a_tensor_detectron2_did_not_load(tmp_path, source_and_converted):
    _, weights = source_and_converted
    with open(weights, "rb") as handle:
        converted = pickle.load(handle)["model"]
    # What the model must hold differs from what the file gives it, as when a name is not matched.
    expected = dict(converted, **{"res4.3.conv2.weight": converted["res4.3.conv2.weight"] + 1})
    with pytest.raises(ConversionError, match=r"res4\.3\.conv2\.weight"):
        count_matched_trunk_tensors(weights, expected)


@pytest.mark.parametrize("arch, config", [
    ("resnet18", "quick_schedules/coco_mask_rcnn_R_50_FPN_instant_test.yaml"),
    ("resnet101", "quick_schedules/coco_mask_rcnn_R_50_C4_instant_test.yaml"),
])
def test_other_archs_load_into_the_model_run_detection_builds(tmp_path, arch, config):
    torch.manual_seed(0)
    state = getattr(torchvision.models, arch)().state_dict()
    for value in state.values():
        if value.is_floating_point():
            value.uniform_(0.5, 1.5)
    torch.save(state, tmp_path / f"{arch}.pth")
    summary = convert_checkpoint(tmp_path / f"{arch}.pth", tmp_path / "out.pkl", check_with_detectron2=True, arch=arch)
    # Every trunk tensor, counted by hand (see test_convert.TENSOR_COUNTS), was matched by detectron2's loader.
    assert summary.detectron2_trunk_tensors_checked == {"resnet18": 120, "resnet101": 624}[arch]
    cfg = train_net.load_config(str(CONFIG_DIR / config), ["MODEL.DEVICE", "cpu", *arch_options(arch)], seed=None)
    model = build_model(cfg)
    load_into_model(model, tmp_path / "out.pkl")
    model_state = model.state_dict()
    prefix = "backbone.bottom_up." if arch == "resnet18" else "backbone."
    assert torch.equal(model_state[prefix + "stem.conv1.weight"], state["conv1.weight"])
    assert torch.equal(model_state[prefix + "res4.1.conv2.norm.running_var"], state["layer3.1.bn2.running_var"])
    if arch == "resnet18":
        assert torch.equal(model_state[prefix + "res5.1.conv2.weight"], state["layer4.1.conv2.weight"])
        assert "backbone.bottom_up.res2.0.shortcut.weight" not in model_state
    else:
        assert torch.equal(model_state[prefix + "res4.22.conv3.weight"], state["layer3.22.conv3.weight"])
        assert torch.equal(model_state["roi_heads.res5.2.conv3.norm.bias"], state["layer4.2.bn3.bias"])
