"""The Barlow Twins objective: standardised embeddings, their cross-correlation, and the loss on it.

Matches ``BarlowTwins.forward`` of the official facebookresearch/barlowtwins ``main.py`` (values and
gradients), also on CPU/gloo process groups where ``nn.SyncBatchNorm`` is unavailable.

All of it runs in float32, even inside an autocast region: the cross-correlation sums ``batch`` products
per entry and the loss sums ``d * d`` squared entries (67M for an 8192-d projector); in float16/bfloat16
the diagonal terms ``(1 - c_ii)^2`` near convergence and the tiny off-diagonal terms would be lost to
rounding, so the loss (and its gradient) would be dominated by precision noise.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as differentiable_dist
from torch import Tensor, nn

from core.distributed import world_size


def off_diagonal(matrix: Tensor) -> Tensor:
    """Flattened (row-major) off-diagonal elements of a square matrix, as a view where possible."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"off_diagonal expects a square matrix, got shape {tuple(matrix.shape)}")
    size = matrix.shape[0]
    # Dropping the last element and viewing as (n-1, n+1) puts every diagonal element in column 0.
    return matrix.flatten()[:-1].view(size - 1, size + 1)[:, 1:].flatten()


def batch_standardize(z: Tensor, bn: nn.BatchNorm1d) -> Tensor:
    """Normalises embeddings ``z`` (batch, dim) with ``bn`` using statistics of the GLOBAL batch.

    With an ``nn.SyncBatchNorm``, a single process, or ``bn`` in eval mode with running statistics, this
    is just ``bn(z)``. Otherwise (several CPU/gloo processes, where SyncBatchNorm is unsupported) the mean
    and biased variance are all-reduced differentiably, so the value, the gradient and the running-stat
    update are those SyncBatchNorm would give.
    """
    uses_running_stats = not bn.training and bn.track_running_stats
    if isinstance(bn, nn.SyncBatchNorm) or uses_running_stats or world_size() == 1:
        return bn(z)

    local_count = z.new_tensor([z.shape[0]])
    sums_and_count = differentiable_dist.all_reduce(torch.cat([z.sum(dim=0), local_count]))
    count = sums_and_count[-1].detach()
    if count.item() < 2:
        raise ValueError(f"batch_standardize needs more than 1 sample in the global batch, got {int(count.item())}")
    mean = sums_and_count[:-1] / count
    centered = z - mean
    variance = differentiable_dist.all_reduce((centered * centered).sum(dim=0)) / count
    normalized = centered * torch.rsqrt(variance + bn.eps)
    if bn.affine:
        normalized = normalized * bn.weight + bn.bias
    if bn.training and bn.track_running_stats:
        _update_running_stats(bn, mean.detach(), variance.detach(), count)
    return normalized


@torch.no_grad()
def _update_running_stats(bn: nn.BatchNorm1d, mean: Tensor, biased_variance: Tensor, count: Tensor) -> None:
    """BatchNorm's running-statistics update: exponential (or cumulative) average, unbiased variance."""
    bn.num_batches_tracked.add_(1)
    factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
    unbiased_variance = biased_variance * (count / (count - 1))
    bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype), alpha=factor)
    bn.running_var.mul_(1 - factor).add_(unbiased_variance.to(bn.running_var.dtype), alpha=factor)


class _SumOverProcessesLocalGradient(torch.autograd.Function):
    """All-reduce (sum) whose backward passes the incoming gradient through unchanged.

    This is what the official ``torch.distributed.all_reduce(c)`` (in place, not differentiable) does
    under autograd: each rank back-propagates dL/dc into its OWN local term of ``c``. Because every rank
    evaluates the same loss, that local gradient is exactly the rank's share of the true gradient of the
    global loss; DistributedDataParallel then averages, giving grad(L) / world_size as in official training.
    ``torch.distributed.nn.functional.all_reduce`` would instead sum the identical gradients of all ranks
    in backward, i.e. world_size times larger gradients than the official code.
    """

    @staticmethod
    def forward(ctx, local: Tensor) -> Tensor:  # noqa: D102 (autograd protocol)
        total = local.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad_total: Tensor) -> Tensor:  # noqa: D102
        return grad_total


def cross_correlation(z1_norm: Tensor, z2_norm: Tensor, batch_size: int) -> Tensor:
    """Empirical cross-correlation ``z1_norm.T @ z2_norm / batch_size``, summed over all processes.

    ``batch_size`` is the GLOBAL batch size. Computed in float32 with autocast disabled (see module
    docstring); gradients follow the official code (see ``_SumOverProcessesLocalGradient``).
    """
    if z1_norm.shape != z2_norm.shape or z1_norm.ndim != 2:
        raise ValueError(f"cross_correlation expects two (batch, dim) tensors of one shape, got "
                         f"{tuple(z1_norm.shape)} and {tuple(z2_norm.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    with torch.autocast(device_type=z1_norm.device.type, enabled=False):
        correlation = z1_norm.float().T @ z2_norm.float() / batch_size
    if world_size() > 1:
        correlation = _SumOverProcessesLocalGradient.apply(correlation)
    return correlation


def barlow_twins_loss(cross_corr: Tensor, lambd: float) -> Tensor:
    """``sum_i (1 - c_ii)^2 + lambd * sum_{i != j} c_ij^2``: invariance plus redundancy reduction."""
    cross_corr = cross_corr.float()
    on_diagonal = (torch.diagonal(cross_corr) - 1).pow(2).sum()
    off_diagonal_terms = off_diagonal(cross_corr).pow(2).sum()
    return on_diagonal + lambd * off_diagonal_terms
