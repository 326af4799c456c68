"""Process-group setup for ``torchrun`` launches (one process per GPU, or CPU processes on gloo).

``torchrun`` (and ``srun`` + ``torchrun`` on SLURM) export ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; a plain ``python -m pretrain`` run is a world of one process.

Besides the training group (nccl on GPUs, gloo on CPUs) a gloo "control" group carries the small CPU-side
agreements (stop requested? images skipped?) so that they never wait for, or stall, the GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job and which device it trains on."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    control_group: Any = None  # gloo group for CPU tensors; None in a world of one

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


DEVICE_CHOICES = {"auto": None, "cuda": True, "cpu": False}


def init_distributed(use_cuda: bool | str | None = None) -> DistributedContext:
    """Joins the process group described by the ``torchrun`` environment (a no-op for a single process).

    ``use_cuda`` None picks CUDA when available; True without CUDA is an error. A process that already joined
    a group (a second task in the same ``torchrun`` job) gets the context of that group.
    """
    if isinstance(use_cuda, str):
        if use_cuda not in DEVICE_CHOICES:
            raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)}, got {use_cuda!r}")
        use_cuda = DEVICE_CHOICES[use_cuda]
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but is not available")
    use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} visible GPU(s); "
                               f"use --nproc_per_node <= the number of GPUs")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if processes == 1:
        return DistributedContext(rank=0, local_rank=0, world_size=1, device=device)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=device if use_cuda else None)
    control_group = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD
    return DistributedContext(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size(), device=device,
                              control_group=control_group)


def world_size() -> int:
    """Number of processes in the default process group (1 when torch.distributed is not initialised)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def shutdown_distributed() -> None:
    """Leaves the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def any_process(flag: bool, context: DistributedContext) -> bool:
    """True on every process if ``flag`` is true on at least one (a CPU-only collective)."""
    if not context.is_distributed:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=context.control_group)
    return bool(value.item())


def sum_over_processes(values: Sequence[float], context: DistributedContext) -> list[float]:
    """Element-wise sum of ``values`` over all processes (a CPU-only collective)."""
    if not context.is_distributed:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(tensor, group=context.control_group)
    return tensor.tolist()


def barrier(context: DistributedContext | None = None) -> None:
    """Waits until every process arrives: on the context's CPU control group (no GPU work involved), or on the
    default group when no context is given; a no-op in a world of one."""
    if context is not None:
        if context.is_distributed:
            dist.barrier(group=context.control_group)
    elif world_size() > 1:
        dist.barrier()


def gather_to_all(context: DistributedContext, items: list[Any]) -> list[Any]:
    """Concatenation of every process's ``items`` (rank order), available on every process."""
    if not context.is_distributed:
        return list(items)
    gathered: list[list[Any]] = [[] for _ in range(context.world_size)]
    dist.all_gather_object(gathered, items, group=context.control_group)
    return [item for part in gathered for item in part]
