"""The one checkpoint loader: every supported file layout, and clear refusals."""

import collections
import hashlib

import pytest
import torch
import torchvision

from core.checkpoint import (
    PRETRAIN_CHECKPOINT_FORMAT,
    CheckpointError,
    file_sha256,
    load_backbone_state_dict,
    load_checkpoint,
    load_latest_checkpoint,
    previous_generation,
    save_checkpoint,
)

ARCH = "resnet18"  # the layouts are the same for every ResNet; resnet18 keeps files small


class NotATensor:
    """Stands for any arbitrary object inside a pickle."""


@pytest.fixture(scope="module")
def torchvision_state():
    torch.manual_seed(0)
    return torchvision.models.resnet18().state_dict()


def trunk(state):
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def projector_state():
    return {"projector.0.weight": torch.randn(8, 512), "projector.1.weight": torch.ones(8),
            "projector.1.bias": torch.zeros(8), "projector.1.running_mean": torch.zeros(8),
            "projector.1.running_var": torch.ones(8), "projector.1.num_batches_tracked": torch.tensor(3),
            "projector.3.weight": torch.randn(8, 8), "bn.running_mean": torch.zeros(8),
            "bn.running_var": torch.ones(8), "bn.num_batches_tracked": torch.tensor(3)}


def layouts(state):
    backbone = {f"backbone.{key}": value for key, value in trunk(state).items()}
    model = {**backbone, **projector_state()}
    return {
        "torchvision-state-dict": state,
        "exported": trunk(state),
        "pretrain-checkpoint": {"format": PRETRAIN_CHECKPOINT_FORMAT, "model": model, "epoch": 3, "step": 40,
                                "optimizer": {"state": {}, "param_groups": []}, "config": {"arch": ARCH}},
        "official-checkpoint": {"epoch": 1000, "model": {f"module.{key}": value for key, value in model.items()},
                                "optimizer": {"state": {0: {"mu": torch.zeros(2)}}, "param_groups": []}},
        "state-dict-wrapper": {"state_dict": {f"module.{key}": value for key, value in state.items()}},
    }


EXPECTED_FORMAT = {"torchvision-state-dict": "torchvision", "exported": "torchvision",
                   "pretrain-checkpoint": "pretrain-checkpoint", "official-checkpoint": "ddp-backbone",
                   "state-dict-wrapper": "ddp-torchvision"}


@pytest.mark.parametrize("layout", sorted(EXPECTED_FORMAT))
def test_every_layout_gives_the_torchvision_trunk(tmp_path, torchvision_state, layout):
    path = tmp_path / f"{layout}.pth"
    torch.save(layouts(torchvision_state)[layout], path)
    state, detected = load_backbone_state_dict(path, ARCH)
    assert detected == EXPECTED_FORMAT[layout]
    assert set(state) == set(trunk(torchvision_state))
    for key, value in trunk(torchvision_state).items():
        assert torch.equal(state[key], value), key
    model = torchvision.models.resnet18()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []


def test_missing_tensor_is_named(tmp_path, torchvision_state):
    state = trunk(torchvision_state)
    del state["layer3.1.conv2.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing.*layer3\.1\.conv2\.weight"):
        load_backbone_state_dict(tmp_path / "missing.pth", ARCH)


def test_misshaped_tensor_is_named(tmp_path, torchvision_state):
    state = dict(trunk(torchvision_state))
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, tmp_path / "misshaped.pth")
    with pytest.raises(CheckpointError, match=r"layer1\.0\.conv1\.weight \(64, 64, 1, 1\) \(expected \(64, 64, 3, 3\)\)"):
        load_backbone_state_dict(tmp_path / "misshaped.pth", ARCH)


def test_wrong_architecture_is_refused(tmp_path, torchvision_state):
    torch.save(torchvision_state, tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="resnet50"):
        load_backbone_state_dict(tmp_path / "r18.pth", "resnet50")


def test_non_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.txt is not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "notes.txt")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pth")
    torch.save({"optimizer": {"lr": 0.1}}, tmp_path / "unknown.pth")
    with pytest.raises(CheckpointError, match="unknown.pth: unrecognised checkpoint layout"):
        load_backbone_state_dict(tmp_path / "unknown.pth", ARCH)


def test_arbitrary_pickles_are_refused_not_executed(tmp_path):
    torch.save({"model": NotATensor()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="arbitrary unpickling"):
        load_checkpoint(tmp_path / "evil.pth")


def test_save_round_trip_and_hash(tmp_path):
    state = {"format": PRETRAIN_CHECKPOINT_FORMAT, "step": 7, "rng": [torch.get_rng_state()],
             "ordered": collections.OrderedDict(a=torch.ones(2))}
    save_checkpoint(state, tmp_path / "checkpoint.pth")
    loaded = load_checkpoint(tmp_path / "checkpoint.pth")
    assert loaded["step"] == 7 and torch.equal(loaded["ordered"]["a"], torch.ones(2))
    digest = hashlib.sha256((tmp_path / "checkpoint.pth").read_bytes()).hexdigest()
    assert file_sha256(tmp_path / "checkpoint.pth", chunk_bytes=1000) == digest


def test_generations_fall_back_to_the_previous_file(tmp_path, caplog):
    path = tmp_path / "checkpoint.pth"
    for step in (1, 2):
        save_checkpoint({"step": step}, path, keep_previous=True)
    assert load_checkpoint(previous_generation(path))["step"] == 1
    assert previous_generation(path).name == "checkpoint.prev.pth"
    assert load_latest_checkpoint(path) == ({"step": 2}, path)
    path.write_bytes(path.read_bytes()[:40])  # truncated newest generation
    with caplog.at_level("WARNING"):
        assert load_latest_checkpoint(path) == ({"step": 1}, previous_generation(path))
    assert len(caplog.records) == 1 and "resuming from the previous generation" in caplog.records[0].message


def test_caller_check_rejects_a_generation_and_missing_files(tmp_path):
    path = tmp_path / "checkpoint.pth"
    assert load_latest_checkpoint(path) is None
    save_checkpoint({"step": 1}, path, keep_previous=True)
    save_checkpoint({"step": 2}, path, keep_previous=True)

    def refuse_step_2(checkpoint, source):
        if checkpoint["step"] == 2:
            raise CheckpointError(f"{source} is poisoned")

    assert load_latest_checkpoint(path, refuse_step_2)[0] == {"step": 1}
    path.unlink()  # killed between the two renames of a save: only the previous generation is left
    assert load_latest_checkpoint(path)[0] == {"step": 1}
    previous_generation(path).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no usable checkpoint generation: .*checkpoint.prev.pth is not a"):
        load_latest_checkpoint(path)
