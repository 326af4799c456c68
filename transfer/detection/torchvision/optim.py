"""SGD parameter groups and detectron2's ``WarmupMultiStepLR`` schedule (per iteration)."""

from __future__ import annotations

import bisect

import torch
from torch import nn

from transfer.detection.torchvision.config import SolverConfig

NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def build_optimizer(model: nn.Module, solver: SolverConfig) -> torch.optim.SGD:
    """SGD with momentum; normalisation parameters get ``weight_decay_norm`` (detectron2's WEIGHT_DECAY_NORM)."""
    norm_params, other_params = [], []
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            if parameter.requires_grad:
                (norm_params if isinstance(module, NORM_TYPES) else other_params).append(parameter)
    groups = [{"params": other_params, "weight_decay": solver.weight_decay}]
    if norm_params:
        groups.append({"params": norm_params, "weight_decay": solver.weight_decay_norm})
    return torch.optim.SGD(groups, lr=solver.base_lr, momentum=solver.momentum)


def lr_factor(iteration: int, solver: SolverConfig) -> float:
    """Multiplier of ``base_lr`` at (0-based) ``iteration``: linear warm-up from ``warmup_factor``, then
    ``gamma`` at each of ``steps``."""
    decay = solver.gamma ** bisect.bisect_right(solver.steps, iteration)
    if iteration >= solver.warmup_iters:
        return decay
    progress = iteration / solver.warmup_iters
    return decay * (solver.warmup_factor * (1 - progress) + progress)


def set_learning_rate(optimizer: torch.optim.Optimizer, iteration: int, solver: SolverConfig) -> float:
    """Sets every group's LR for ``iteration`` and returns it."""
    lr = solver.base_lr * lr_factor(iteration, solver)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
