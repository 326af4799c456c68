"""Barlow Twins loss pieces against hand formulas, and 2 gloo processes against 1 process on the whole batch."""

import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from pretrain.loss import barlow_twins_loss, batch_standardize, cross_correlation, off_diagonal

LAMBD = 0.0051
EPS = 1e-5


def reference_loss(z1: np.ndarray, z2: np.ndarray, lambd: float) -> float:
    """Explicit loops in float64: per-dimension standardisation (biased variance), correlation, loss."""
    batch, dim = z1.shape

    def standardize(z):
        out = np.empty_like(z)
        for j in range(dim):
            mean = sum(z[b, j] for b in range(batch)) / batch
            variance = sum((z[b, j] - mean) ** 2 for b in range(batch)) / batch
            for b in range(batch):
                out[b, j] = (z[b, j] - mean) / np.sqrt(variance + EPS)
        return out

    n1, n2 = standardize(z1), standardize(z2)
    loss = 0.0
    for i in range(dim):
        for j in range(dim):
            c_ij = sum(n1[b, i] * n2[b, j] for b in range(batch)) / batch
            loss += (1 - c_ij) ** 2 if i == j else lambd * c_ij ** 2
    return loss


def single_process_loss(z1, z2, bn, batch_size=None):
    batch_size = batch_size or z1.shape[0]
    correlation = cross_correlation(batch_standardize(z1, bn), batch_standardize(z2, bn), batch_size)
    return barlow_twins_loss(correlation, LAMBD)


def test_off_diagonal_hand_case():
    matrix = torch.arange(16.0).view(4, 4)
    assert off_diagonal(matrix).tolist() == [1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14]
    with pytest.raises(ValueError, match="square"):
        off_diagonal(torch.zeros(2, 3))


def test_loss_on_hand_correlation_matrix():
    correlation = torch.tensor([[0.5, 0.2], [-0.1, 1.0]])
    expected = (1 - 0.5) ** 2 + 0.0 + 0.3 * (0.2 ** 2 + 0.1 ** 2)
    assert barlow_twins_loss(correlation, 0.3).item() == pytest.approx(expected, rel=1e-6)


def test_loss_equals_loop_reference():
    generator = np.random.default_rng(0)
    z1 = generator.normal(size=(7, 5)) * 3 + 1
    z2 = 0.5 * z1 + generator.normal(size=(7, 5))
    bn = nn.BatchNorm1d(5, affine=False)
    loss = single_process_loss(torch.tensor(z1, dtype=torch.float32), torch.tensor(z2, dtype=torch.float32), bn)
    assert loss.item() == pytest.approx(reference_loss(z1, z2, LAMBD), rel=1e-5)


def test_loss_stays_float32_under_autocast():
    torch.manual_seed(0)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    expected = single_process_loss(z1, z2, nn.BatchNorm1d(8, affine=False))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        correlation = cross_correlation(z1, z2, 16)
        loss = single_process_loss(z1, z2, nn.BatchNorm1d(8, affine=False))
    assert correlation.dtype == torch.float32 and loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected)


def _official_pattern_loss(z1, z2, bn, batch_size):
    """The official forward's loss part: in-place division and non-differentiable all_reduce of ``c``."""
    c = batch_standardize(z1, bn).T @ batch_standardize(z2, bn)
    c.div_(batch_size)
    dist.all_reduce(c)
    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    off_diag = off_diagonal(c).pow_(2).sum()
    return on_diag + LAMBD * off_diag


def _distributed_worker(rank, world_size, init_file, z1_all, z2_all, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        local = slice(rank * z1_all.shape[0] // world_size, (rank + 1) * z1_all.shape[0] // world_size)
        results = {}
        for name, loss_fn in (("ours", single_process_loss), ("official", _official_pattern_loss)):
            z1 = z1_all[local].clone().requires_grad_()
            z2 = z2_all[local].clone().requires_grad_()
            bn = nn.BatchNorm1d(z1.shape[1], affine=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the official pattern back-props through c10d::allreduce_
                loss = loss_fn(z1, z2, bn, z1_all.shape[0])
                loss.backward()
            results[name] = dict(loss=loss.detach(), grad1=z1.grad, grad2=z2.grad,
                                 running_mean=bn.running_mean, running_var=bn.running_var)
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process_on_concatenated_batch(tmp_path):
    torch.manual_seed(0)
    world_size, batch, dim = 2, 12, 6
    z1_all = torch.randn(batch, dim) * 2 + 0.5
    z2_all = 0.7 * z1_all + torch.randn(batch, dim)
    mp.spawn(_distributed_worker, args=(world_size, tmp_path / "init", z1_all, z2_all, str(tmp_path)),
             nprocs=world_size)

    z1 = z1_all.clone().requires_grad_()
    z2 = z2_all.clone().requires_grad_()
    bn = nn.BatchNorm1d(dim, affine=False)
    expected_loss = single_process_loss(z1, z2, bn)
    expected_loss.backward()

    half = batch // world_size
    for rank in range(world_size):
        results = torch.load(tmp_path / f"rank{rank}.pt")
        ours, official = results["ours"], results["official"]
        local = slice(rank * half, (rank + 1) * half)
        torch.testing.assert_close(ours["loss"], expected_loss.detach())
        torch.testing.assert_close(official["loss"], expected_loss.detach())
        # Documented behaviour: each rank gets its slice of the true gradient of the global loss (the
        # official non-differentiable all_reduce); DDP's averaging then divides by the world size.
        torch.testing.assert_close(ours["grad1"], z1.grad[local])
        torch.testing.assert_close(ours["grad2"], z2.grad[local])
        torch.testing.assert_close(ours["grad1"], official["grad1"])
        torch.testing.assert_close(ours["grad2"], official["grad2"])
        # Running statistics as SyncBatchNorm would keep them (global batch, unbiased variance).
        torch.testing.assert_close(ours["running_mean"], bn.running_mean)
        torch.testing.assert_close(ours["running_var"], bn.running_var)
