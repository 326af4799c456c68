"""mix-bt's small-image linear protocol (linear.py) as the shipped CIFAR configs build it: Adam over the head with
weight decay 5e-6, LR 0.01 x (1e-6 / 1e-2)^(epoch / 200), colour-augmented training images, and a frozen trunk
whose BatchNorm trains on batch statistics."""

import math
from pathlib import Path

import pytest
import torch
from torchvision import transforms

from core.backbone import build_backbone, freeze
from transfer.classification.linear import TrunkClassifier, build_head
from transfer.classification.linear_config import TRAIN_AUGMENTATIONS, LinearConfig
from transfer.classification.linear_optimizer import build_optimizer
from transfer.classification.task_setup import load_task_config
from transfer.classification.tasks.linear import LinearTaskConfig
from transfer.registry import TaskRun, get_task

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("task", ["cifar10_linear", "cifar100_linear", "stl10_linear"])
def test_adam_and_exponential_decay_from_001_to_1e6_in_200_epochs(task):
    run = TaskRun(weights=None, data_root=REPO, output_dir=REPO)
    config = load_task_config(LinearTaskConfig, get_task(task), run)
    head = build_head(config.head, 512, 1, 10)
    optimizer, scheduler = build_optimizer(head, config)
    assert isinstance(optimizer, torch.optim.Adam)
    assert all(group["weight_decay"] == 5e-6 for group in optimizer.param_groups)  # weight and bias, as mix-bt
    rates = []
    for _ in range(200):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    for epoch in (0, 1, 57, 199):  # mix-bt: gamma = (lr_end / lr_start) ** (1 / epochs), one step per epoch
        assert rates[epoch] == pytest.approx(0.01 * (1e-6 / 1e-2) ** (epoch / 200), rel=1e-9)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-6, rel=1e-9)  # after the last epoch
    assert config.batch_size == 512 and not config.scale_lr_with_batch and config.report == "last"


def test_exponential_needs_a_final_lr_below_lr():
    with pytest.raises(ValueError, match="final_lr"):
        LinearConfig(schedule="exponential", lr=0.01, final_lr=0.0)
    with pytest.raises(ValueError, match="optimizer"):
        LinearConfig(optimizer="rmsprop")


def test_colour_augmentation_is_mixbt_cifar_train_transform():
    steps = TRAIN_AUGMENTATIONS["crop_flip_color"](32)
    crop, flip, jitter, gray = steps
    assert isinstance(crop, transforms.RandomResizedCrop) and crop.size == (32, 32)
    assert crop.scale == (0.08, 1.0) and crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert isinstance(flip, transforms.RandomHorizontalFlip) and flip.p == 0.5
    assert isinstance(jitter, transforms.RandomApply) and jitter.p == 0.8
    colour = jitter.transforms[0]
    assert (colour.brightness, colour.contrast, colour.saturation, colour.hue) == (
        (0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))  # ColorJitter(0.4, 0.4, 0.4, 0.1)
    assert isinstance(gray, transforms.RandomGrayscale) and gray.p == 0.2


@pytest.mark.parametrize("batch_statistics", [False, True])
def test_frozen_trunk_batchnorm_follows_trunk_batchnorm(batch_statistics):
    torch.manual_seed(0)
    trunk = freeze(build_backbone("resnet18", "small"))
    weights_before = trunk.conv1.weight.clone()
    mean_before = trunk.bn1.running_mean.clone()
    model = TrunkClassifier(trunk, build_head("linear", 512, 1, 10), finetune=False,
                            batch_statistics=batch_statistics).train()
    model(torch.randn(4, 3, 32, 32) + 3.0).sum().backward()
    assert trunk.training == batch_statistics
    assert torch.equal(trunk.conv1.weight, weights_before) and trunk.conv1.weight.grad is None
    # linear.py's net.train(): the frozen trunk's BatchNorm moves its running mean towards the batch's
    assert (not torch.equal(trunk.bn1.running_mean, mean_before)) == batch_statistics
    model.eval()
    assert not trunk.training
    with torch.no_grad():
        assert math.isfinite(float(model(torch.randn(2, 3, 32, 32)).sum()))
