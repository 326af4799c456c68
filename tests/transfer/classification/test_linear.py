"""Linear protocols against the official numbers: VISSL Places/iNat, barlowtwins evaluate.py linear and
semi-supervised; VISSL's eval_mlp head; frozen trunk; fast mode on cached features; resume."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.distributed import DistributedContext
from core.backbone import build_backbone
from core.backbone import LoadedBackbone
from transfer.classification.features import FeatureConfig
from transfer.classification.linear import (PooledBatchNormLinear, TrunkClassifier, build_head, topk_correct,
                                            train_linear)
from transfer.classification.linear_config import LinearConfig
from transfer.classification.linear_optimizer import build_optimizer
from transfer.classification.task_setup import load_task_config
from transfer.classification.tasks.linear import LinearTaskConfig
from transfer.registry import TaskRun, get_task

REPO = Path(__file__).resolve().parents[3]
CPU = DistributedContext(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


def protocol(task: str, *overrides: str) -> LinearTaskConfig:
    """The shipped ``configs/transfer/<task>.yaml`` with ``overrides``."""
    run = TaskRun(weights=None, data_root=REPO, output_dir=REPO, overrides=tuple(overrides))
    return load_task_config(LinearTaskConfig, get_task(task), run)


def lr_per_epoch(optimizer, scheduler, epochs: int) -> list[list[float]]:
    """LR of every parameter group for each epoch (the scheduler steps once per epoch, as in training)."""
    rates = []
    for _ in range(epochs):
        rates.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return rates


def group_of(optimizer) -> dict[int, tuple[float, float]]:
    """``id(parameter) -> (lr, weight_decay)`` over all parameter groups."""
    return {id(p): (group["lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}


def test_places205_vissl_optimizer_groups_and_steps():
    config = protocol("places205_linear", "batch_size=512")
    head = build_head(config.head, 8, 1, 5)
    optimizer, scheduler = build_optimizer(head, config)
    assert isinstance(optimizer, torch.optim.SGD)
    assert all(group["momentum"] == 0.9 and group["nesterov"] for group in optimizer.param_groups)
    base = 0.01 * 512 / 256  # VISSL auto_lr_scaling: base_value 0.01 x batch / 256
    groups = group_of(optimizer)
    assert groups[id(head.linear.weight)] == groups[id(head.linear.bias)] == (pytest.approx(base), 5e-4)
    # VISSL regularize_bn: False, regularize_bias: True
    assert groups[id(head.norm.weight)] == groups[id(head.norm.bias)] == (pytest.approx(base), 0.0)
    assert len(groups) == len(list(head.parameters()))
    # VISSL multistep: values [0.01, 0.001, 0.0001, 0.00001] (x batch/256), milestones [4, 8, 12], 14 epochs
    expected = [base * value for value in [1] * 4 + [0.1] * 4 + [0.01] * 4 + [0.001] * 2]
    assert config.epochs == 14
    rates = lr_per_epoch(optimizer, scheduler, config.epochs)
    assert [row[0] for row in rates] == pytest.approx(expected)


def test_weight_decay_skips_batchnorm_in_an_actual_step():
    config = protocol("places205_linear")
    head = build_head(config.head, 4, 1, 3)
    optimizer, _ = build_optimizer(head, config)
    for parameter in head.parameters():
        nn.init.constant_(parameter, 0.5)
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    # first Nesterov step with zero gradient: buffer = wd * p, update = (1 + momentum) * buffer
    decayed = 0.5 - 0.01 * (1 + 0.9) * 5e-4 * 0.5
    assert torch.allclose(head.linear.weight, torch.full_like(head.linear.weight, decayed))
    assert torch.allclose(head.linear.bias, torch.full_like(head.linear.bias, decayed))
    assert torch.equal(head.norm.weight, torch.full_like(head.norm.weight, 0.5))
    assert torch.equal(head.norm.bias, torch.full_like(head.norm.bias, 0.5))


def test_inat18_84_epochs_with_steps_at_equal_intervals():
    config = protocol("inat18_linear")
    optimizer, scheduler = build_optimizer(build_head(config.head, 4, 1, 3), config)
    assert config.epochs == 84 and config.milestones == [24, 48, 72]
    rates = [row[0] for row in lr_per_epoch(optimizer, scheduler, 84)]
    for epoch, value in {0: 0.01, 23: 0.01, 24: 1e-3, 47: 1e-3, 48: 1e-4, 71: 1e-4, 72: 1e-5, 83: 1e-5}.items():
        assert rates[epoch] == pytest.approx(value), epoch


def test_imagenet_linear_follows_official_evaluate_py():
    config = protocol("imagenet_linear")
    trunk = build_backbone("resnet18")
    head = build_head(config.head, 512, 1, 1000)
    # evaluate.py: fc.weight ~ N(0, 0.01), fc.bias = 0
    assert head.weight.std().item() == pytest.approx(0.01, rel=0.05) and abs(head.weight.mean().item()) < 1e-3
    assert torch.count_nonzero(head.bias) == 0
    model = TrunkClassifier(trunk.requires_grad_(False), head, finetune=False)
    optimizer, scheduler = build_optimizer(model, config)
    groups = group_of(optimizer)
    assert set(groups) == {id(head.weight), id(head.bias)}  # only the classifier is optimised
    assert set(groups.values()) == {(0.3, 1e-6)}
    assert all(group["momentum"] == 0.9 and not group["nesterov"] for group in optimizer.param_groups)
    assert config.epochs == 100 and config.batch_size == 256 and config.report == "best"
    rates = [row[0] for row in lr_per_epoch(optimizer, scheduler, 100)]
    assert rates == pytest.approx([0.3 * (1 + math.cos(math.pi * epoch / 100)) / 2 for epoch in range(100)])


@pytest.mark.parametrize("task, subset", [("imagenet_semisup_1pct", "1percent"),
                                          ("imagenet_semisup_10pct", "10percent")])
def test_semi_supervised_fine_tuning_groups(task, subset):
    config = protocol(task)
    assert config.train_subset == f"subsets/{subset}.txt" and config.epochs == 20
    trunk, head = build_backbone("resnet18"), build_head(config.head, 512, 1, 10)
    model = TrunkClassifier(trunk, head, finetune=True)
    optimizer, scheduler = build_optimizer(model, config)
    groups = group_of(optimizer)
    assert {groups[id(p)] for p in head.parameters()} == {(0.5, 0.0)}
    assert {groups[id(p)] for p in trunk.parameters()} == {(0.002, 0.0)}  # BatchNorm included, no weight decay
    assert len(groups) == len(list(model.parameters()))


def test_semi_supervised_official_readme_variant():
    config = protocol("imagenet_semisup_1pct", "lr_backbone=0.005", "schedule=cosine")
    trunk, head = build_backbone("resnet18"), build_head(config.head, 512, 1, 10)
    optimizer, scheduler = build_optimizer(TrunkClassifier(trunk, head, finetune=True), config)
    rates = lr_per_epoch(optimizer, scheduler, 20)
    for epoch, (head_lr, trunk_lr) in enumerate((row[0], row[-1]) for row in rates):
        factor = (1 + math.cos(math.pi * epoch / 20)) / 2
        assert (head_lr, trunk_lr) == (pytest.approx(0.5 * factor), pytest.approx(0.005 * factor))


@pytest.mark.parametrize("task", ["imagenet_semisup_1pct", "imagenet_semisup_10pct"])
def test_semi_supervised_default_is_the_paper_schedule(task):
    """Paper App. B.2: 0.002 (trunk) / 0.5 (head), multiplied by 0.2 after epochs 12 and 16."""
    config = protocol(task)
    model = TrunkClassifier(build_backbone("resnet18"), build_head(config.head, 512, 1, 10), finetune=True)
    optimizer, scheduler = build_optimizer(model, config)
    rates = lr_per_epoch(optimizer, scheduler, 20)
    for epoch, row in enumerate(rates):
        factor = 1.0 if epoch < 12 else 0.2 if epoch < 16 else 0.04
        assert row[0] == pytest.approx(0.5 * factor) and row[-1] == pytest.approx(0.002 * factor)


@pytest.mark.parametrize("training", [True, False])
def test_pooled_bn_linear_is_vissl_eval_mlp(training):
    torch.manual_seed(0)
    maps = torch.randn(6, 4, 2, 2) * 3 + 1  # pooled res5 map: 4 channels x 2 x 2 positions
    head = PooledBatchNormLinear(4, 4, 3)
    reference_norm, reference_linear = nn.BatchNorm2d(4), nn.Linear(16, 3)
    reference_linear.load_state_dict(head.linear.state_dict())
    with torch.no_grad():
        for module in (head.norm, reference_norm):
            module.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
            module.bias.copy_(torch.tensor([0.1, 0.0, -0.2, 0.3]))
            module.running_mean.copy_(torch.tensor([1.0, 0.5, 0.0, -0.5]))
            module.running_var.copy_(torch.tensor([4.0, 2.0, 1.0, 9.0]))
    head.train(training)
    reference_norm.train(training)
    expected = reference_linear(reference_norm(maps).flatten(1))  # VISSL: BatchNorm2d, flatten, Linear
    assert torch.allclose(head(maps.flatten(1)), expected, atol=1e-5)
    assert torch.allclose(head.norm.running_mean, reference_norm.running_mean)


def test_vissl_8k_head_on_the_trunk_is_vissl_eval_mlp():
    torch.manual_seed(0)
    trunk = build_backbone("resnet18").eval()
    head = build_head("bn_linear", 512, 4, 5).eval()
    with torch.no_grad():
        head.norm.running_mean.uniform_(-0.5, 0.5)
        head.norm.running_var.uniform_(0.5, 2.0)
    model = TrunkClassifier(trunk, head, finetune=False, layer="res5_vissl8k").eval()
    images = torch.randn(2, 3, 224, 224)
    # VISSL: res5 -> AvgPool2d((6, 6), 1, 0) -> eval_mlp (BatchNorm2d(2048 channels), flatten, Linear(8192, ...))
    reference_norm = nn.BatchNorm2d(512).eval()
    reference_norm.load_state_dict(head.norm.state_dict())
    with torch.no_grad():
        res5 = trunk.layer4(trunk.layer3(trunk.layer2(trunk.layer1(trunk.maxpool(trunk.relu(trunk.bn1(
            trunk.conv1(images))))))))
        expected = head.linear(reference_norm(nn.AvgPool2d((6, 6), 1, 0)(res5)).flatten(1))
        assert torch.allclose(model(images), expected, atol=1e-4)


def test_topk_correct_by_hand():
    logits = torch.tensor([[0.1, 0.9, 0.0, 0.2, 0.3, 0.4],
                           [0.9, 0.1, 0.8, 0.7, 0.6, 0.5],
                           [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]])
    targets = torch.tensor([1, 1, 0])  # row 0: rank 1; row 1: rank 6; row 2: rank 6
    assert topk_correct(logits, targets) == [1.0, 1.0]
    assert topk_correct(logits, torch.tensor([3, 4, 5]), ks=(1, 2, 5)) == [1.0, 1.0, 3.0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """ImageFolder train/val splits: 3 colour classes, 4 + 2 images each, 32 px."""
    root = tmp_path_factory.mktemp("linear")
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for label, colour in enumerate([(220, 30, 30), (30, 220, 30), (30, 30, 220)]):
            (root / split / f"class{label}").mkdir(parents=True)
            for index in range(count):
                pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / f"class{label}" / f"{index}.png")
    return root


def small_config(cache_dir: str = "", **changes) -> LinearConfig:
    features = FeatureConfig(image_size=32, batch_size=4, num_workers=0, chunk_batches=1, dtype="float32",
                             cache_dir=cache_dir)
    return LinearConfig(**{"epochs": 1, "batch_size": 4, "num_workers": 0, "image_size": 32, "features": features,
                           **changes})


def backbone() -> LoadedBackbone:
    torch.manual_seed(0)
    return LoadedBackbone(build_backbone("resnet18"), "w.pth", "0123abcd", "torchvision")


@pytest.mark.parametrize("finetune", [False, True])
def test_trunk_is_frozen_unless_fine_tuned(folder, tmp_path, finetune):
    loaded = backbone()
    before = {key: value.clone() for key, value in loaded.model.state_dict().items()}
    config = small_config(head="linear", lr=0.1, lr_backbone=0.01 if finetune else 0.0)
    outcome = train_linear(config, loaded, "resnet18", "imagefolder", str(folder), tmp_path, CPU, progress=False)
    after = loaded.model.state_dict()
    unchanged = [key for key in before if torch.equal(before[key], after[key])]
    if finetune:
        assert not torch.equal(before["conv1.weight"], after["conv1.weight"])
        assert not torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])  # trunk in train mode
    else:
        assert len(unchanged) == len(before)  # evaluate.py's sanity check: weights and BN statistics as loaded
    assert 0 <= outcome["best"]["top1"] <= 100 and outcome["num_classes"] == 3


def _numpy_head_accuracy(checkpoint_path, cache_root, split: str) -> float:
    """Top-1 of the saved BN + Linear head on the cached ``split`` features, computed with numpy only."""
    state = torch.load(checkpoint_path, weights_only=True)["model"]
    entry = next(path for path in cache_root.iterdir() if json.loads((path / "meta.json").read_text())["key"]["split"]
                 == split)
    features, labels = np.load(entry / "features.npy").astype(np.float64), np.load(entry / "labels.npy")
    mean, var = state["norm.running_mean"].double().numpy(), state["norm.running_var"].double().numpy()
    normed = (features - mean) / np.sqrt(var + 1e-5) * state["norm.weight"].double().numpy() \
        + state["norm.bias"].double().numpy()
    logits = normed @ state["linear.weight"].double().numpy().T + state["linear.bias"].double().numpy()
    return 100.0 * float(np.mean(logits.argmax(axis=1) == labels))


def test_fast_mode_trains_the_head_on_cached_features(folder, tmp_path):
    config = small_config(mode="features", epochs=3, lr=0.5)
    outcome = train_linear(config, backbone(), "resnet18", "imagefolder", str(folder), tmp_path, CPU, progress=False)
    cache_root = tmp_path / "feature_cache"
    entries = sorted(json.loads((path / "meta.json").read_text())["key"]["split"] for path in cache_root.iterdir())
    assert entries == ["train", "val"]
    assert outcome["last"]["top1"] == pytest.approx(_numpy_head_accuracy(tmp_path / "checkpoint.pth", cache_root,
                                                                         "val"))
    assert [epoch for epoch, _ in outcome["curves"]["loss"]] == [1, 2, 3]


INTERRUPTIBLE = {
    "features": dict(mode="features", epochs=3, lr=0.5, milestones=[2]),
    # semi-supervised: trunk fine-tuned on random crops and flips of the images, last batch of 2 (12 = 5 + 5 + 2)
    "semisup_images": dict(mode="images", head="linear", epochs=3, lr=0.1, lr_backbone=0.01, batch_size=5,
                           schedule="cosine", scale_lr_with_batch=False),
}


@pytest.mark.parametrize("protocol_name", sorted(INTERRUPTIBLE))
def test_interrupted_training_resumes_bit_identical_to_the_uninterrupted_run(folder, tmp_path, monkeypatch,
                                                                            protocol_name):
    config = small_config(str(tmp_path / "cache"), **INTERRUPTIBLE[protocol_name])
    reference = train_linear(config, backbone(), "resnet18", "imagefolder", str(folder), tmp_path / "a", CPU,
                             progress=False)
    import transfer.classification.linear as linear

    evaluate, calls = linear.evaluate, []

    def interrupted_evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated interruption in epoch 2")
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(linear, "evaluate", interrupted_evaluate)
    with pytest.raises(KeyboardInterrupt):
        train_linear(config, backbone(), "resnet18", "imagefolder", str(folder), tmp_path / "b", CPU, progress=False)
    saved = torch.load(tmp_path / "b" / "checkpoint.pth", weights_only=True)
    assert saved["state"]["epoch"] == 1
    monkeypatch.setattr(linear, "evaluate", evaluate)
    torch.manual_seed(1234)  # a new process: the global generators are in another state than the first run's
    resumed = train_linear(config, backbone(), "resnet18", "imagefolder", str(folder), tmp_path / "b", CPU,
                           progress=False)
    assert resumed["curves"] == reference["curves"] and resumed["best"] == reference["best"]
    final_a = torch.load(tmp_path / "a" / "checkpoint.pth", weights_only=True)
    final_b = torch.load(tmp_path / "b" / "checkpoint.pth", weights_only=True)
    assert final_a["model"].keys() == final_b["model"].keys()
    for key, value in final_a["model"].items():
        assert torch.equal(value, final_b["model"][key]), key
    if protocol_name == "features":  # the LR schedule went on where it stopped: x0.1 from epoch 3 (milestone 2)
        assert final_b["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.5 * 4 / 256 * 0.1)


def test_a_last_batch_of_one_image_is_dropped(folder, tmp_path):
    """12 training images in batches of 11: the trunk's BatchNorm (1x1 res5 maps at 32 px) cannot train on the
    remaining single image, so that batch is left out instead of crashing the epoch."""
    config = small_config(head="linear", lr=0.1, lr_backbone=0.01, batch_size=11, scale_lr_with_batch=False)
    outcome = train_linear(config, backbone(), "resnet18", "imagefolder", str(folder), tmp_path, CPU, progress=False)
    assert [epoch for epoch, _ in outcome["curves"]["loss"]] == [1] and math.isfinite(outcome["curves"]["loss"][0][1])


def test_resume_refuses_a_changed_protocol(folder, tmp_path):
    train_linear(small_config(mode="features"), backbone(), "resnet18", "imagefolder", str(folder), tmp_path, CPU,
                 progress=False)
    with pytest.raises(ValueError, match=r"checkpoint\.pth was made with other settings \(lr: 0\.01 -> 0\.02"):
        train_linear(small_config(mode="features", lr=0.02), backbone(), "resnet18", "imagefolder", str(folder),
                     tmp_path, CPU, progress=False)


def test_resume_refuses_another_backbone(folder, tmp_path):
    train_linear(small_config(mode="features"), backbone(), "resnet18", "imagefolder", str(folder), tmp_path, CPU,
                 progress=False)
    other = LoadedBackbone(build_backbone("resnet18"), "other.pth", "4567ef01", "torchvision")
    with pytest.raises(ValueError, match=r"other settings \(backbone: '0123abcd' -> '4567ef01'\)"):
        train_linear(small_config(mode="features"), other, "resnet18", "imagefolder", str(folder), tmp_path, CPU,
                     progress=False)
    key_encoder = LoadedBackbone(build_backbone("resnet18"), "w.pth", "0123abcd", "moco", source="key")
    with pytest.raises(ValueError, match=r"other settings \(backbone_source: None -> 'key'\)"):
        train_linear(small_config(mode="features"), key_encoder, "resnet18", "imagefolder", str(folder), tmp_path, CPU,
                     progress=False)


def test_bad_protocol_values():
    with pytest.raises(ValueError, match="lr_backbone"):
        LinearConfig(mode="features", lr_backbone=0.1)
    with pytest.raises(ValueError, match="unknown head"):
        build_head("mlp", 4, 1, 2)


def test_two_process_torchrun_training_evaluates_the_whole_val_split(folder, tmp_path):
    torch.manual_seed(0)
    torch.save(build_backbone("resnet18").state_dict(), tmp_path / "resnet18.pth")
    overrides = ["dataset=imagefolder", "mode=features", "epochs=2", "batch_size=4", "lr=0.5", "num_workers=0",
                 "features.layer=res5", "features.image_size=32", "features.batch_size=2", "features.num_workers=0", "features.dtype=float32"]
    environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "transfer.classification", "places205_linear", "--weights", str(tmp_path / "resnet18.pth"), "--arch",
         "resnet18", "--data-root", str(folder), "--output", str(tmp_path / "out"), *overrides],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    last = result["config"]["last_epoch"]["top1"]
    # the two processes' shards of the 6 val images, summed: equal to the saved head on all cached val features
    assert last == pytest.approx(_numpy_head_accuracy(tmp_path / "out" / "checkpoint.pth",
                                                      tmp_path / "out" / "feature_cache", "val"))
    assert [epoch for epoch, _ in result["curves"]["top1"]] == [1, 2]


def test_semi_supervised_run_killed_mid_epoch_resumes_bit_identical(small_demo_data, tmp_path):
    """SIGKILL in epoch 2 of ``imagenet_semisup_1pct`` (trunk fine-tuned on augmented images), then the same
    command again: the final weights and metrics equal an uninterrupted run's."""
    from core.results import read_result
    from transfer.registry import TaskRun, get_task, run_task

    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(build_backbone("resnet18").state_dict(), weights)
    overrides = ["epochs=3", "image_size=32", "batch_size=8", "num_workers=0", "amp=false", 'train_subset=""']
    arguments = ["imagenet_semisup_1pct", "--weights", str(weights), "--arch", "resnet18",
                 "--data-root", str(small_demo_data / "imagenet"), "--output", str(tmp_path / "killed"), *overrides]
    environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "transfer.classification", *arguments], cwd=tmp_path,
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "killed" / "checkpoint.pth"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    assert torch.load(checkpoint, weights_only=True)["state"]["epoch"] < 3
    assert not (tmp_path / "killed" / "results.json").exists()

    def run(output: str):
        return run_task(get_task("imagenet_semisup_1pct"),
                        TaskRun(weights=str(weights), data_root=small_demo_data / "imagenet",
                                output_dir=tmp_path / output, arch="resnet18", overrides=tuple(overrides)))

    resumed, reference = run("killed"), run("uninterrupted")
    assert resumed.metrics == reference.metrics and resumed.curves == reference.curves
    assert read_result(tmp_path / "killed" / "results.json").metrics == reference.metrics
    final = [torch.load(tmp_path / output / "checkpoint.pth", weights_only=True)["model"]
             for output in ("killed", "uninterrupted")]
    assert final[0].keys() == final[1].keys()
    assert all(torch.equal(final[0][key], final[1][key]) for key in final[0])
