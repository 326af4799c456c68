"""LARS, the optimiser of the official Barlow Twins code, and its weights/biases parameter groups.

Per parameter ``p`` with gradient ``g`` (parameters without a gradient are skipped):

    dp = g + weight_decay * p                 (not for 1-d params when weight_decay_filter)
    dp = dp * q,  q = eta * |p| / |dp| if |p| > 0 and |dp| > 0 else 1
                                              (not for 1-d params when lars_adaptation_filter)
    mu = momentum * mu + dp ;  p = p - lr * mu

``clip_lr`` (solo-learn's LARS option, used by its CIFAR/ImageNet-100 recipes) caps the adapted rate:
``q = min(q, lr) / lr``, so a layer never moves faster than plain SGD at ``lr`` would move it.

The filters are booleans here; the official code passes ``exclude_bias_and_norm`` (``p.ndim == 1``), which
is what a true value selects (a callable read back from an official optimizer state is also truthy).
The update runs with multi-tensor ``torch._foreach_*`` kernels, one batch per kind of parameter.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling with momentum, as in facebookresearch/barlowtwins (state key ``mu``)."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float, weight_decay: float = 0,
                 momentum: float = 0.9, eta: float = 0.001, weight_decay_filter: bool = False,
                 lars_adaptation_filter: bool = False, clip_lr: bool = False) -> None:
        for name, value in (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum), ("eta", eta)):
            if value < 0:
                raise ValueError(f"LARS {name} must be >= 0, got {value}")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta,
                        weight_decay_filter=weight_decay_filter, lars_adaptation_filter=lars_adaptation_filter,
                        clip_lr=clip_lr)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Performs one LARS update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for (decays, adapts, _device, _dtype), params in self._kinds(group).items():
                self._update(group, params, decays, adapts)
        return loss

    @staticmethod
    def _kinds(group: dict[str, Any]) -> dict[tuple[bool, bool, torch.device, torch.dtype], list[Tensor]]:
        """Parameters with a gradient, keyed by (weight decay applies, LARS adaptation applies, device, dtype)."""
        kinds: dict[tuple[bool, bool, torch.device, torch.dtype], list[Tensor]] = defaultdict(list)
        for param in group["params"]:
            if param.grad is None:
                continue
            is_vector = param.ndim == 1
            decays = not (group["weight_decay_filter"] and is_vector)
            adapts = not (group["lars_adaptation_filter"] and is_vector)
            kinds[(decays, adapts, param.device, param.dtype)].append(param)
        return kinds

    def _update(self, group: dict[str, Any], params: list[Tensor], decays: bool, adapts: bool) -> None:
        grads = [param.grad for param in params]
        if decays:
            updates = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        else:
            updates = grads
        if adapts:
            param_norms = torch.stack(torch._foreach_norm(params))
            update_norms = torch.stack(torch._foreach_norm(updates))
            trust_ratio = group["eta"] * param_norms / update_norms
            if group.get("clip_lr", False) and group["lr"] > 0:  # optimizer states saved before clip_lr lack it
                trust_ratio = (trust_ratio / group["lr"]).clamp_(max=1)
            trust_ratio = torch.where((param_norms > 0) & (update_norms > 0), trust_ratio, torch.ones_like(param_norms))
            updates = torch._foreach_mul(updates, list(trust_ratio.unbind()))
        momenta = []
        for param in params:
            state = self.state[param]
            if "mu" not in state:
                state["mu"] = torch.zeros_like(param)
            momenta.append(state["mu"])
        torch._foreach_mul_(momenta, group["momentum"])
        torch._foreach_add_(momenta, updates)
        torch._foreach_add_(params, momenta, alpha=-group["lr"])


def param_groups_weights_biases(model: nn.Module) -> list[dict[str, Any]]:
    """The official two groups, in ``model.parameters()`` order: weights (not 1-d), then biases and norm (1-d).

    Group 0 is named ``"weights"``, group 1 ``"biases and norm"``; ``adjust_learning_rate`` sets their lrs.
    """
    weights, biases = [], []
    for param in model.parameters():
        (biases if param.ndim == 1 else weights).append(param)
    return [{"name": "weights", "params": weights}, {"name": "biases and norm", "params": biases}]
