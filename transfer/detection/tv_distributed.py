"""Process-group set-up for ``torchrun`` launches (NCCL on GPU, Gloo on CPU) and object gathering."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessContext:
    """This process's place in the run and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_process(device_choice: str = "auto") -> ProcessContext:
    """Joins the ``torchrun`` process group when ``WORLD_SIZE > 1``; a plain launch is a group of one."""
    use_cuda = torch.cuda.is_available() if device_choice == "auto" else device_choice == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for but CUDA is not available")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return ProcessContext(rank, world_size, device)


def gather_to_all(context: ProcessContext, items: list[Any]) -> list[Any]:
    """Concatenation of every process's ``items`` (rank order), available on every process."""
    if not context.distributed:
        return list(items)
    gathered: list[list[Any]] = [[] for _ in range(context.world_size)]
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]


def barrier(context: ProcessContext) -> None:
    """Waits for every process (no-op when alone)."""
    if context.distributed:
        dist.barrier()


def close_process(context: ProcessContext) -> None:
    """Leaves the process group if this module joined one."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()
