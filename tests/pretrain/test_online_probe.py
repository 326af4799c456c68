"""Online linear probe: trained inside the steps on labelled array data, logged, and resumed exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from pretrain.online_probe import OnlineProbe, build_online_probe
from pretrain.pretrain_config import ProbeConfig
from pretrain.stats import read_stats
from pretrain.train import pretrain


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory, make_demo_data_tool):
    out = tmp_path_factory.mktemp("cifar")
    make_demo_data_tool.make_demo_data(out, images_per_class=4, layouts="cifar10")
    return out / "cifar10"


def _config(tiny_config, root, output_dir, **changes):
    config = tiny_config(root, output_dir, **changes)
    config.model = dataclasses.replace(config.model, stem="small")
    config.data = dataclasses.replace(config.data, image_size=16)  # small stem: 16 px keeps the steps cheap
    return config


def _run(config):
    probe = build_online_probe(config)
    assert probe is not None
    return pretrain(config, callbacks=[probe], step_hooks=[probe]), probe


def test_probe_top1_is_logged_every_epoch_on_the_test_split(cifar_root, tmp_path, tiny_config):
    config = _config(tiny_config, cifar_root, tmp_path / "run", batch_size=8)  # 20 images: 3 steps per epoch
    outcome, probe = _run(config)
    assert outcome == "completed"
    probe_rows = [row for row in read_stats(tmp_path / "run" / "stats.jsonl") if "probe_top1" in row]
    assert [row["epoch"] for row in probe_rows] == [0, 1]
    # 10 test images (2 per class): top-1 is a multiple of 10 %.
    assert all(row["probe_top1"] in {10.0 * k for k in range(11)} for row in probe_rows)
    assert probe.head.out_features == 5 and len(probe.heldout) == 10


def test_resumed_run_ends_with_the_same_probe_and_backbone(cifar_root, tmp_path, tiny_config):
    whole = _config(tiny_config, cifar_root, tmp_path / "whole", batch_size=8)
    _run(whole)
    interrupted = _config(tiny_config, cifar_root, tmp_path / "parts", batch_size=8, stop_after_steps=4)
    assert _run(interrupted)[0] == "preempted"  # mid-epoch 1: the probe's state goes into the checkpoint
    assert "head" in load_checkpoint(tmp_path / "parts" / "checkpoint.pth")["step_hooks"][0]
    outcome, probe = _run(dataclasses.replace(interrupted, stop_after_steps=None))
    assert outcome == "completed"
    expected, resumed = (load_checkpoint(tmp_path / name / "checkpoint.pth") for name in ("whole", "parts"))
    for key, value in expected["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    for key, value in expected["step_hooks"][0]["head"].items():
        assert torch.equal(value, resumed["step_hooks"][0]["head"][key]), key


def test_probe_step_is_one_sgd_step_of_cross_entropy_ignoring_unlabelled():
    probe = OnlineProbe(3, 2, heldout=None, config=ProbeConfig(lr=0.5), labels=np.array([0, 1]))
    with torch.no_grad():
        probe.head.weight.zero_()
        probe.head.bias.zero_()
    features = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [5.0, 5.0, 5.0]])
    probe.after_step(features, torch.tensor([0, 1, -1]))
    # Zero head: softmax is (1/2, 1/2), so dCE/dlogits = p - onehot = (-1/2, 1/2) for label 0 and
    # (1/2, -1/2) for label 1, averaged over the 2 labelled rows; the unlabelled row adds nothing.
    expected_weight_grad = torch.tensor([[-0.5, 1.0, 0.0], [0.5, -1.0, 0.0]]) / 2
    torch.testing.assert_close(probe.head.weight, -0.5 * expected_weight_grad)
    torch.testing.assert_close(probe.head.bias, torch.zeros(2))


def test_unlabelled_flat_folder_gets_no_probe(tmp_path, tiny_config, write_images):
    write_images(tmp_path / "photos", 6)
    assert build_online_probe(tiny_config(tmp_path / "photos", tmp_path / "out")) is None
