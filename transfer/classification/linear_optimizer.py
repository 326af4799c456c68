"""The optimizer and per-epoch learning-rate schedule of a linear-classification protocol (``LinearConfig``).

SGD (VISSL, the official evaluate.py, semi-supervised fine-tuning) or Adam (mix-bt's small-image linear.py);
multistep, cosine over ``epochs``, or exponential from ``lr`` to ``final_lr`` at the last epoch (mix-bt).
"""

from __future__ import annotations

import torch
from torch import nn

from transfer.classification.linear_config import LinearConfig


def parameter_groups(model: nn.Module, config: LinearConfig, lr_scale: float) -> list[dict]:
    """Head (and trunk, when fine-tuned) groups; BatchNorm parameters without weight decay unless configured."""
    groups = []
    for name, lr in (("head", config.lr), ("trunk", config.lr_backbone)):
        module = getattr(model, name, model if name == "head" else None)  # a bare head in features mode
        if module is None or lr == 0:
            continue
        decayed, undecayed = [], []
        for submodule in module.modules():
            is_norm = isinstance(submodule, nn.modules.batchnorm._BatchNorm)
            for parameter in submodule.parameters(recurse=False):
                (undecayed if is_norm and not config.decay_batchnorm else decayed).append(parameter)
        groups.append({"params": decayed, "lr": lr * lr_scale, "weight_decay": config.weight_decay})
        if undecayed:
            groups.append({"params": undecayed, "lr": lr * lr_scale, "weight_decay": 0.0})
    return groups


def exponential_gamma(config: LinearConfig) -> float:
    """The per-epoch factor that takes ``lr`` to ``final_lr`` in ``epochs`` steps (mix-bt's linear.py)."""
    return (config.final_lr / config.lr) ** (1 / config.epochs)


def build_optimizer(model: nn.Module, config: LinearConfig) -> tuple[torch.optim.Optimizer, object]:
    """SGD or Adam over ``parameter_groups`` and the per-epoch LR schedule of ``config.schedule``."""
    lr_scale = config.batch_size / 256 if config.scale_lr_with_batch else 1.0
    groups = parameter_groups(model, config, lr_scale)
    if config.optimizer == "adam":  # torch's Adam: L2 weight decay added to the gradient, as mix-bt uses it
        optimizer: torch.optim.Optimizer = torch.optim.Adam(groups, lr=0.0)
    else:
        optimizer = torch.optim.SGD(groups, lr=0.0, momentum=config.momentum, nesterov=config.nesterov)
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs)
    elif config.schedule == "exponential":
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, exponential_gamma(config))
    else:
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, config.milestones, config.gamma)
    return optimizer, scheduler
