"""Collectives the torchvision detection engine needs on top of ``pretrain.distributed`` (the one process-group
set-up of the project: NCCL on GPU, Gloo on CPU)."""

from __future__ import annotations

from typing import Any

import torch.distributed as dist

from pretrain.distributed import DistributedContext, init_distributed


def init_process(device_choice: str = "auto") -> DistributedContext:
    """Joins the ``torchrun`` process group when ``WORLD_SIZE > 1``; ``device_choice`` is auto, cuda or cpu."""
    return init_distributed(use_cuda={"auto": None, "cuda": True, "cpu": False}[device_choice])


def gather_to_all(context: DistributedContext, items: list[Any]) -> list[Any]:
    """Concatenation of every process's ``items`` (rank order), available on every process."""
    if not context.is_distributed:
        return list(items)
    gathered: list[list[Any]] = [[] for _ in range(context.world_size)]
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]


def barrier(context: DistributedContext) -> None:
    """Waits for every process (no-op when alone)."""
    if context.is_distributed:
        dist.barrier()
