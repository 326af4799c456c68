"""What a pretraining checkpoint holds, and how a run is put back exactly where it stopped.

Layout (``torch.load(weights_only=True)`` can read it: tensors, numbers, strings, lists and dicts only)::

    format            PRETRAIN_CHECKPOINT_FORMAT
    model             BarlowTwins state dict (backbone.*, projector.*, bn.*), no DDP/compile prefixes
    optimizer         LARS state dict
    scaler            GradScaler state dict ({} unless fp16)
    epoch             epoch of the next step (== epochs when training is complete)
    step              optimizer steps completed (global over epochs)
    steps_per_epoch   batches per epoch per process when saved (a resume must see the same)
    skipped_images    unreadable images skipped so far (all processes)
    rng               torch / cuda / numpy / python generator states
    config            the resolved PretrainConfig as a dict

A checkpoint never holds a diverged state: before saving, ``check_trained_state`` reduces every floating
tensor of the model (parameters and BatchNorm statistics) and of the optimizer to its largest magnitude in
one fused pass (``torch._foreach_norm`` with ord=inf, one host-device sync, only at checkpoint steps) and
refuses NaN/inf anywhere, or a model value above ``EXPLODED_VALUE_LIMIT``.

Why 1e8: a healthy network trained with weight decay and LARS (whose trust ratio bounds each update of a
weight matrix to about ``lr * eta`` of its norm) has values of order 1 (ResNet weights and BatchNorm
affine parameters; running variances of order 1e0-1e3). A value of 1e8 is at least five orders of
magnitude beyond that, past what fp16 activations can hold (65504) and close to where squared activations
overflow bf16/fp32 sums in the cross-correlation; a learning rate large enough to get there (the reproduction
``optim.lr_weights=1e30`` reaches 4e25 in one step) has destroyed the network even while the loss computed
*before* the update was still finite. The optimizer state is only required to be finite: its momenta hold
raw gradients of the biases, whose scale follows the loss.
"""

from __future__ import annotations

import math
import random
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from core.checkpoint import PRETRAIN_CHECKPOINT_FORMAT, CheckpointError


EXPLODED_VALUE_LIMIT = 1e8


class TrainingDivergedError(RuntimeError):
    """Training diverged (NaN/inf loss or exploded weights); nothing poisoned was saved."""


def largest_magnitudes(tensor_groups: Iterable[Iterable[torch.Tensor]]) -> list[float]:
    """The largest |value| in each group of tensors (NaN if any is NaN), with one host-device sync."""
    maxima = []
    for tensors in tensor_groups:
        floating = [tensor.detach() for tensor in tensors if tensor.is_floating_point() and tensor.numel()]
        norms = torch._foreach_norm(floating, float("inf")) if floating else []
        maxima.append(torch.stack([norm.float() for norm in norms]).max() if norms else torch.zeros(()))
    return torch.stack([value.cpu() for value in maxima]).tolist()


def divergence(model_tensors: Iterable[torch.Tensor], optimizer_tensors: Iterable[torch.Tensor]) -> str | None:
    """Why a state must not be saved (NaN/inf, or a model value above ``EXPLODED_VALUE_LIMIT``), or None."""
    model_max, optimizer_max = largest_magnitudes([model_tensors, optimizer_tensors])
    if not math.isfinite(model_max):
        return "the weights hold NaN/inf"
    if not math.isfinite(optimizer_max):
        return "the optimizer state holds NaN/inf"
    if model_max > EXPLODED_VALUE_LIMIT:
        return f"the weights exploded (largest |value| {model_max:.3g} > {EXPLODED_VALUE_LIMIT:.0e})"
    return None


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every tensor of the optimizer's per-parameter state (LARS momenta)."""
    return [value for state in optimizer.state.values() for value in state.values() if torch.is_tensor(value)]


def check_checkpoint_health(checkpoint: dict[str, Any], source: str) -> None:
    """Raises ``CheckpointError`` if a loaded pretraining checkpoint holds a diverged state (see ``divergence``)."""
    model_state = checkpoint.get("model")
    if not isinstance(model_state, dict):
        return  # not this project's layout: restore_checkpoint names the problem
    optimizer_state = checkpoint.get("optimizer", {}).get("state", {})
    momenta = [value for state in optimizer_state.values() for value in state.values() if torch.is_tensor(value)]
    problem = divergence(model_state.values(), momenta)
    if problem:
        raise CheckpointError(f"{source} holds a diverged state ({problem})")


def capture_rng_states() -> dict[str, Any]:
    """Every random generator's state, in weights-only-loadable form."""
    _name, numpy_keys, numpy_pos, numpy_has_gauss, numpy_gauss = np.random.get_state()
    python_version, python_internal, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(numpy_keys.astype(np.int64)), "pos": int(numpy_pos),
                  "has_gauss": int(numpy_has_gauss), "cached_gaussian": float(numpy_gauss)},
        "python": {"version": python_version, "internal": list(python_internal), "gauss_next": python_gauss},
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    """Puts back the generator states saved by ``capture_rng_states``."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    numpy_state = states["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = states["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"]))


def build_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, step: int,
                     steps_per_epoch: int, skipped_images: int, config: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint dict of the (unwrapped) ``model`` after ``step`` optimizer steps."""
    return {
        "format": PRETRAIN_CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
        "epoch": step // steps_per_epoch,
        "step": step,
        "steps_per_epoch": steps_per_epoch,
        "skipped_images": skipped_images,
        "rng": capture_rng_states(),
        "config": config,
    }


def restore_checkpoint(checkpoint: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                       scaler: torch.amp.GradScaler, steps_per_epoch: int, source: str) -> tuple[int, int]:
    """Loads model/optimizer/scaler/RNG states; returns (steps completed, images skipped so far)."""
    if checkpoint.get("format") != PRETRAIN_CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source} is not a pretraining checkpoint of this project (format "
                              f"{checkpoint.get('format')!r}); move it away or choose another output_dir")
    if checkpoint["steps_per_epoch"] != steps_per_epoch:
        raise CheckpointError(
            f"{source} was written with {checkpoint['steps_per_epoch']} steps per epoch but this run has "
            f"{steps_per_epoch} (the data folder, batch_size or number of processes changed); resuming would "
            f"not continue the same schedule. Restore the original setup or use a new output_dir.")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scaler.is_enabled() and checkpoint["scaler"]:
        scaler.load_state_dict(checkpoint["scaler"])
    restore_rng_states(checkpoint["rng"])
    return int(checkpoint["step"]), int(checkpoint["skipped_images"])
