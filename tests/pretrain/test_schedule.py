"""The official warm-up + cosine learning-rate schedule at hand-computed steps."""

import math

import pytest
import torch

from pretrain.schedule import adjust_learning_rate, learning_rate

# 10 steps per epoch, 100 epochs, batch 512 (base multiplier 2), 10 warm-up epochs = 100 warm-up steps.
SETUP = dict(steps_per_epoch=10, epochs=100, batch_size=512)


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),                                    # warm-up starts at 0
    (50, 1.0),                                   # half-way through warm-up: 2 * 50/100
    (100, 2.0),                                  # end of warm-up: cosine at q = 1
    (550, 2 * 0.5 + 0.002 * 0.5),                # middle of the cosine part: q = 0.5
    (999, 2 * (1 + math.cos(math.pi * 899 / 900)) / 2 + 0.002 * (1 - (1 + math.cos(math.pi * 899 / 900)) / 2)),
    (1000, 0.002),                               # the end: base * end_factor
])
def test_learning_rate_at_key_steps(step, expected):
    assert learning_rate(step, **SETUP) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_adjust_learning_rate_sets_both_groups():
    optimizer = torch.optim.SGD([{"params": [torch.zeros(2, 2)]}, {"params": [torch.zeros(2)]}], lr=0)
    weights_lr, biases_lr = adjust_learning_rate(optimizer, 550, **SETUP)
    assert weights_lr == pytest.approx(1.001 * 0.2) and biases_lr == pytest.approx(1.001 * 0.0048)
    assert optimizer.param_groups[0]["lr"] == weights_lr and optimizer.param_groups[1]["lr"] == biases_lr


def test_no_warmup_and_custom_end_factor():
    assert learning_rate(0, 10, 5, 256, warmup_epochs=0, end_factor=0.5) == 1.0
    assert learning_rate(50, 10, 5, 256, warmup_epochs=0, end_factor=0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("arguments, message", [
    (dict(step=0, steps_per_epoch=10, epochs=10, batch_size=256), "epochs"),
    (dict(step=0, steps_per_epoch=0, epochs=100, batch_size=256), "steps_per_epoch"),
    (dict(step=-1, steps_per_epoch=10, epochs=100, batch_size=256), "step"),
    (dict(step=1001, steps_per_epoch=10, epochs=100, batch_size=256), "step"),
    (dict(step=0, steps_per_epoch=10, epochs=100, batch_size=0), "batch_size"),
    (dict(step=0, steps_per_epoch=10, epochs=100, batch_size=256, warmup_epochs=-1), "warmup_epochs"),
])
def test_invalid_arguments_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        learning_rate(**arguments)
