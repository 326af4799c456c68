"""The official Barlow Twins learning-rate schedule: linear warm-up, then cosine decay to ``end_factor``.

``lr(step) = batch_size / 256 * schedule(step)`` with ``schedule`` rising linearly from 0 over
``warmup_epochs`` epochs, then ``q + end_factor * (1 - q)``, ``q = (1 + cos(pi * t)) / 2`` for ``t`` going
from 0 to 1 over the remaining steps. Weights use ``lr * lr_weights``, biases/norm ``lr * lr_biases``.
"""

from __future__ import annotations

import math

import torch


def _validate(step: int, steps_per_epoch: int, epochs: int, batch_size: int, warmup_epochs: int) -> None:
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
    if epochs <= warmup_epochs:
        raise ValueError(f"epochs ({epochs}) must be greater than warmup_epochs ({warmup_epochs})")
    total_steps = epochs * steps_per_epoch
    if not 0 <= step <= total_steps:
        raise ValueError(f"step must be in [0, {total_steps}] (epochs * steps_per_epoch), got {step}")


def learning_rate(step: int, steps_per_epoch: int, epochs: int, batch_size: int, warmup_epochs: int = 10,
                  end_factor: float = 0.001) -> float:
    """Base learning-rate multiplier at global ``step`` (0-based), before the per-group base rates."""
    _validate(step, steps_per_epoch, epochs, batch_size, warmup_epochs)
    base = batch_size / 256
    warmup_steps = warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        return base * step / warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (epochs * steps_per_epoch - warmup_steps)))
    return base * cosine + base * end_factor * (1 - cosine)


def adjust_learning_rate(optimizer: torch.optim.Optimizer, step: int, steps_per_epoch: int, epochs: int,
                         batch_size: int, warmup_epochs: int = 10, end_factor: float = 0.001,
                         lr_weights: float = 0.2, lr_biases: float = 0.0048) -> tuple[float, float]:
    """Sets param group 0 (weights) and 1 (biases and norm) to their scheduled rates and returns them."""
    if len(optimizer.param_groups) != 2:
        raise ValueError(f"expected 2 param groups (weights, biases and norm), got {len(optimizer.param_groups)}")
    base = learning_rate(step, steps_per_epoch, epochs, batch_size, warmup_epochs, end_factor)
    lr_weight_group, lr_bias_group = base * lr_weights, base * lr_biases
    optimizer.param_groups[0]["lr"] = lr_weight_group
    optimizer.param_groups[1]["lr"] = lr_bias_group
    return lr_weight_group, lr_bias_group
