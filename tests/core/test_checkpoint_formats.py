"""Every public release layout (tests/core/conftest.py) loads as the torchvision ResNet it holds; refusals are clear."""

import logging
import pickle

import numpy as np
import pytest
import torch

from core.checkpoint import CheckpointError, load_backbone_state_dict, save_safetensors
from core.checkpoint_formats import CHECKPOINT_FORMATS
from core.results import read_result
from core.safe_pickle import load_safe_pickle
from transfer.classification.__main__ import main as classify_main
from transfer.detection.detectron2.convert import convert_checkpoint, detectron2_name, verify_detectron2_resnet

ARCH = "resnet18"


def trunk(state):
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def assert_same_tensors(got, expected):
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype and torch.equal(got[key], value), key


def test_every_release_loads_as_its_torchvision_resnet_and_converts_for_detectron2(
        tmp_path, public_release, build_release, release_states):
    release = public_release
    checkpoint, family = build_release(release)
    torch.save(checkpoint, tmp_path / f"{release}.pth")
    state, detected = load_backbone_state_dict(tmp_path / f"{release}.pth", ARCH)
    assert detected == family
    expected = trunk(release_states[0])
    if release == "torchvision_legacy":
        expected = {key: value for key, value in expected.items() if not key.endswith("num_batches_tracked")}
    assert_same_tensors(state, expected)

    convert_checkpoint(tmp_path / f"{release}.pth", tmp_path / "d2.pkl", check_with_detectron2=False, arch=ARCH)
    model = load_safe_pickle(tmp_path / "d2.pkl")["model"]
    verify_detectron2_resnet(model, ARCH)
    for name, value in expected.items():  # the renaming is checked by verify_detectron2_resnet's shapes
        assert np.array_equal(model[detectron2_name(name)], value.numpy()), name


def test_every_family_has_a_release_and_vice_versa(release_families):
    assert set(release_families.values()) == set(CHECKPOINT_FORMATS)


@pytest.mark.parametrize("release, source, network", [
    ("moco_v2", None, 0), ("moco_v2", "key", 1), ("moco_v3", "momentum", 1), ("dino_full", None, 0),
    ("dino_full", "student", 1), ("dino_full_vit_style_teacher", "student", 1), ("solo_learn", "momentum", 1),
    ("mmselfsup_mocov2", "momentum", 1),
])
def test_source_picks_the_network(tmp_path, build_release, release_states, release, source, network, caplog):
    torch.save(build_release(release)[0], tmp_path / "two_networks.pth")
    with caplog.at_level(logging.INFO, logger="core.backbone_extraction"):
        state, _ = load_backbone_state_dict(tmp_path / "two_networks.pth", ARCH, source=source)
    assert_same_tensors(state, trunk(release_states[network]))
    said = [record.getMessage() for record in caplog.records]
    if source is None:  # the default is announced in one line naming the other network
        assert len(said) == 1 and "--source" in said[0] and ("key" in said[0] or "student" in said[0])
    else:
        assert said == []


def test_unknown_source_is_named(tmp_path, build_release):
    torch.save(build_release("moco_v2_cleaned")[0], tmp_path / "cleaned.pth")
    with pytest.raises(CheckpointError, match="holds no 'key' network"):
        load_backbone_state_dict(tmp_path / "cleaned.pth", ARCH, source="key")
    with pytest.raises(CheckpointError, match="has no source 'student'; its sources: query, key"):
        load_backbone_state_dict(tmp_path / "cleaned.pth", ARCH, source="student")


def test_a_file_two_formats_match_is_refused_until_format_is_chosen(tmp_path, release_states):
    query, other = release_states
    both = {"state_dict": {**{f"module.encoder_q.{k}": v for k, v in trunk(query).items()},
                           **{f"module.{k}": v for k, v in trunk(other).items()}}}
    torch.save(both, tmp_path / "both.pth")
    with pytest.raises(CheckpointError, match=r"layouts of 2 formats \(ddp-torchvision, moco\).*"
                                              r"--format ddp-torchvision or --format moco"):
        load_backbone_state_dict(tmp_path / "both.pth", ARCH)
    state, detected = load_backbone_state_dict(tmp_path / "both.pth", ARCH, format_name="moco")
    assert detected == "moco"
    assert_same_tensors(state, trunk(query))
    with pytest.raises(CheckpointError, match="not a 'vissl' file"):
        load_backbone_state_dict(tmp_path / "both.pth", ARCH, format_name="vissl")
    with pytest.raises(CheckpointError, match="unknown format 'mocov9'"):
        load_backbone_state_dict(tmp_path / "both.pth", ARCH, format_name="mocov9")


def test_unknown_layout_names_the_closest_format_and_what_it_lacked(tmp_path, release_states):
    state = trunk(release_states[0])
    renamed = {f"module.encoder_q.{key}": value for key, value in state.items()
               if not key.startswith("conv1")}  # a MoCo file whose stem is missing
    torch.save({"epoch": 1, "state_dict": renamed}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError) as raised:
        load_backbone_state_dict(tmp_path / "odd.pth", ARCH)
    message = str(raised.value)
    assert "unrecognised checkpoint layout (top-level keys: epoch, state_dict)" in message
    assert all(name in message for name in CHECKPOINT_FORMATS)  # the formats tried
    tensors = len([key for key in state if not key.endswith("num_batches_tracked")])
    assert (f"closest: moco (['state_dict'] keys 'module.encoder_q.*'): it had {tensors - 1} of its {tensors} "
            "backbone tensors and lacked e.g. module.encoder_q.conv1.weight") in message


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".pkl"])
def test_truncated_files_are_refused(tmp_path, release_states, suffix):
    path = tmp_path / f"cut{suffix}"
    state = trunk(release_states[0])
    if suffix == ".safetensors":
        save_safetensors(state, path, {"arch": ARCH})
    elif suffix == ".pkl":
        path.write_bytes(pickle.dumps({"model": {k: v.numpy() for k, v in state.items()}}))
    else:
        torch.save(state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"cut{suffix} is not a readable"):
        load_backbone_state_dict(path, ARCH)


def test_safetensors_and_numpy_pickles_load_like_torch_files(tmp_path, release_states):
    state = trunk(release_states[0])
    save_safetensors(state, tmp_path / "w.safetensors", {"arch": ARCH})
    assert_same_tensors(load_backbone_state_dict(tmp_path / "w.safetensors", ARCH)[0], state)
    with open(tmp_path / "w.pkl", "wb") as handle:
        pickle.dump({"state_dict": {k: v.numpy() for k, v in state.items()}}, handle, protocol=2)
    loaded, detected = load_backbone_state_dict(tmp_path / "w.pkl", ARCH)
    assert detected == "torchvision"
    assert_same_tensors(loaded, state)


def test_wrong_arch_error_names_the_arch_that_fits(tmp_path, release_states):
    torch.save(trunk(release_states[0]), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="fits resnet18: pass --arch resnet18"):
        load_backbone_state_dict(tmp_path / "r18.pth", "resnet50")


KNN = ["features.image_size=64", "features.batch_size=8", "features.num_workers=0", "features.chunk_batches=1",
       "dataset=imagefolder", "k=3"]


@pytest.mark.parametrize("release, source", [("moco_v2", None), ("dino_full", "student"), ("lightly_lightning", None)])
def test_knn_runs_on_representative_releases(tmp_path, small_demo_data, build_release, release, source):
    checkpoint, family = build_release(release)
    torch.save(checkpoint, tmp_path / f"{release}.pth")
    argv = ["knn", "--weights", str(tmp_path / f"{release}.pth"), "--arch", ARCH, "--data-root",
            str(small_demo_data / "imagefolder"), "--output", str(tmp_path / "knn"), *KNN,
            *(["--source", source] if source else [])]
    assert classify_main(argv) == 0
    result = read_result(tmp_path / "knn" / "results.json")
    assert result.config["weights_format"] == family and 0.0 <= result.metrics["top1"] <= 100.0
    assert result.config.get("weights_source") == source
