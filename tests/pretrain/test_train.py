"""The pretraining runner: exact mid-epoch resume, outputs, NaN stop, bad inputs, CLI and pre-emption."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision

from pretrain.__main__ import main
from core.checkpoint import PRETRAIN_CHECKPOINT_FORMAT
from core.config import load_config
from pretrain.data import DataError
from pretrain.model import BarlowTwins
from pretrain.pretrain_config import PretrainConfig
from pretrain.stats import read_stats
from pretrain.train import NonFiniteLossError, pretrain


REPO = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH = 3  # 12 images, batch 4


def load_weights_only(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_config, write_images):
    """One uninterrupted 2-epoch run (with TensorBoard), shared by the tests below."""
    root = tmp_path_factory.mktemp("data") / "train"
    write_images(root / "circle", 6, seed=1)
    write_images(root / "square", 6, seed=2, start=6)
    output = tmp_path_factory.mktemp("uninterrupted")
    assert pretrain(tiny_config(root, output, tensorboard=True)) == "completed"
    return root, output


def test_resume_mid_epoch_gives_identical_weights(uninterrupted, tmp_path, tiny_config):
    root, reference_dir = uninterrupted
    output = tmp_path / "interrupted"
    # Stop after 4 steps: in the middle of epoch 1 (3 steps per epoch).
    assert pretrain(tiny_config(root, output, stop_after_steps=4)) == "preempted"
    stopped = load_weights_only(output / "checkpoint.pth")
    assert (stopped["step"], stopped["epoch"]) == (4, 1)
    # Same command again, now with data-loader workers: augmentations must not depend on who decodes.
    config = tiny_config(root, output)
    config.data = dataclasses.replace(config.data, workers=2)
    assert pretrain(config) == "completed"

    resumed = load_weights_only(output / "checkpoint.pth")
    reference = load_weights_only(reference_dir / "checkpoint.pth")
    assert resumed["step"] == reference["step"] == 2 * STEPS_PER_EPOCH
    assert resumed["model"].keys() == reference["model"].keys()
    for key, tensor in reference["model"].items():
        assert torch.equal(resumed["model"][key], tensor), key
    for index, state in reference["optimizer"]["state"].items():
        assert torch.equal(resumed["optimizer"]["state"][index]["mu"], state["mu"])
    # The logs read like one run: every step once, in order.
    assert [record["step"] for record in read_stats(output / "stats.jsonl")] == list(range(1, 7))


def test_outputs_of_a_completed_run(uninterrupted, tiny_config):
    root, output = uninterrupted
    records = read_stats(output / "stats.jsonl")
    assert [record["step"] for record in records] == list(range(1, 7))
    for record in records:
        assert {"step", "epoch", "loss", "lr_weights", "lr_biases", "images_per_s", "skipped_images",
                "time"} <= record.keys()
        assert math.isfinite(record["loss"]) and record["images_per_s"] > 0 and record["skipped_images"] == 0
    assert [record["epoch"] for record in records] == [0, 0, 0, 1, 1, 1]
    # Warm-up over epoch 0 (3 steps): lr = batch/256 * 0.2 * step/3 for the steps 0, 1, 2.
    peak = 4 / 256
    assert records[1]["lr_weights"] == pytest.approx(peak * 0.2 * 1 / 3)
    assert records[2]["lr_biases"] == pytest.approx(peak * 0.0048 * 2 / 3)
    assert list((output / "tensorboard").glob("events.out.tfevents.*"))

    saved = load_config(PretrainConfig, output / "config.yaml")
    assert saved == tiny_config(root, output, tensorboard=True)

    checkpoint = load_weights_only(output / "checkpoint.pth")
    assert checkpoint["format"] == PRETRAIN_CHECKPOINT_FORMAT
    assert {"model", "optimizer", "scaler", "epoch", "step", "rng", "config"} <= checkpoint.keys()
    assert {key.split(".")[0] for key in checkpoint["model"]} == {"backbone", "projector", "bn"}
    assert checkpoint["epoch"] == 2 and checkpoint["config"]["model"]["arch"] == "resnet18"
    assert set(checkpoint["rng"]) == {"torch", "cuda", "numpy", "python"}

    backbone = load_weights_only(output / "resnet18.pth")
    network = torchvision.models.resnet18()
    result = network.load_state_dict(backbone, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys
    for key, tensor in backbone.items():
        assert torch.equal(tensor, checkpoint["model"][f"backbone.{key}"])


def test_rerunning_a_completed_run_does_not_train_again(uninterrupted, tiny_config):
    root, output = uninterrupted
    before = (output / "checkpoint.pth").stat().st_mtime_ns
    lines = len(read_stats(output / "stats.jsonl"))
    assert pretrain(tiny_config(root, output, tensorboard=True)) == "completed"
    assert (output / "checkpoint.pth").stat().st_mtime_ns == before
    assert len(read_stats(output / "stats.jsonl")) == lines


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(image_folder, tmp_path, monkeypatch, tiny_config):
    original_forward = BarlowTwins.forward
    calls = {"count": 0}

    def poisoned_forward(self, y1, y2):  # the 4th step's loss (and so its gradients and weights) turn NaN
        calls["count"] += 1
        loss = original_forward(self, y1, y2)
        return loss * float("nan") if calls["count"] == 4 else loss

    monkeypatch.setattr(BarlowTwins, "forward", poisoned_forward)
    output = tmp_path / "run"
    config = tiny_config(image_folder, output, log_every=100, checkpoint_every_steps=2)
    # Checkpoints at steps 2 and 3 (epoch end); the NaN of step 4 is found at the step-4 checkpoint, unsaved.
    with pytest.raises(NonFiniteLossError, match="NaN/inf.*stopped without saving"):
        pretrain(config)
    checkpoint = load_weights_only(output / "checkpoint.pth")
    assert checkpoint["step"] == 3
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["model"].values() if tensor.is_floating_point())


def test_nan_found_at_a_logging_step(image_folder, tmp_path, monkeypatch, tiny_config):
    original_forward = BarlowTwins.forward
    monkeypatch.setattr(BarlowTwins, "forward", lambda self, y1, y2: original_forward(self, y1, y2) * float("inf"))
    with pytest.raises(NonFiniteLossError):
        pretrain(tiny_config(image_folder, tmp_path / "run", log_every=1))
    assert not (tmp_path / "run" / "checkpoint.pth").exists()


def test_corrupt_images_are_skipped_and_counted(tmp_path, tiny_config, write_images):
    root = tmp_path / "flat"
    write_images(root, 11)
    (root / "broken.jpg").write_bytes(b"this is not a JPEG")
    output = tmp_path / "run"
    assert pretrain(tiny_config(root, output)) == "completed"
    # 12 files, batch 4, one process: every file is visited once per epoch, so 2 epochs skip it twice.
    assert read_stats(output / "stats.jsonl")[-1]["skipped_images"] == 2
    assert load_weights_only(output / "checkpoint.pth")["skipped_images"] == 2


@pytest.mark.parametrize("make_root, fragment", [
    (lambda tmp: tmp / "does_not_exist", "data folder not found"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "holds no images"),
])
def test_missing_or_empty_data_folder_fails_before_any_work(tmp_path, make_root, fragment, tiny_config):
    root = make_root(tmp_path)
    with pytest.raises(DataError, match=fragment) as error:
        pretrain(tiny_config(root, tmp_path / "run"))
    assert str(root) in str(error.value)
    assert not (tmp_path / "run").exists()


def test_cli_rejects_unknown_key_and_wrong_type(tmp_path, capsys):
    config_path = REPO / "configs" / "pretrain" / "demo.yaml"
    assert main([str(config_path), "optim.lr_weigths=0.3"]) == 2
    assert "unknown config key 'optim.lr_weigths'" in capsys.readouterr().err
    assert main([str(config_path), "epochs=ten"]) == 2
    assert "config key 'epochs' has value 'ten', expected int" in capsys.readouterr().err
    assert main([str(config_path), f"data.root={tmp_path / 'nowhere'}"]) == 2
    assert "data folder not found" in capsys.readouterr().err


def test_sigterm_checkpoints_at_a_step_boundary_and_exits_75(image_folder, tmp_path):
    """SIGTERM to the whole process group (as SLURM signals every process of a step, data workers included)."""
    output = tmp_path / "run"
    arguments = [f"output_dir={output}", f"data.root={image_folder}", "epochs=400", "batch_size=4",
                 "data.image_size=32", "data.workers=1", "model.arch=resnet18", "model.projector=64-64",
                 "log_every=1", "progress_bar=false", "tensorboard=false", "knn.every_epochs=0"]
    environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "pretrain", str(REPO / "configs/pretrain/demo.yaml"),
                                *arguments], cwd=tmp_path, env=environment, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while not read_stats(output / "stats.jsonl") and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 75, stderr
    checkpoint = load_weights_only(output / "checkpoint.pth")
    assert checkpoint["step"] >= 1
    assert json.loads((output / "stats.jsonl").read_text().splitlines()[-1])["step"] == checkpoint["step"]
    assert "received SIGTERM" in stderr
