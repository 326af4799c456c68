"""The whole-training-step part of the pretraining benchmark: loader + forward + backward + LARS, end to end.

Official: its ``Transform`` DataLoader, ``BarlowTwins``, ``LARS``, schedule and fp16 autocast step
(``bench_official.OfficialStep``). Project: a loader of ``pretrain.loaders`` feeding ``pretrain.model``'s
``BarlowTwins`` with bf16 autocast and channels_last, as ``pretrain.train`` does (channels_last on CPU too,
so both devices measure the same setting). Either model may be wrapped in ``torch.compile``; compilation
happens in the warm-up steps, which are not timed.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

import torch

from bench_official import OfficialStep, official_args, official_loader, official_model, official_optimizer
from core.distributed import DistributedContext
from pretrain.loaders import TrainingData, build_training_data
from pretrain.model import BarlowTwins
from pretrain.optim import LARS, param_groups_weights_biases
from pretrain.pretrain_config import DataConfig, ModelConfig, OptimConfig, PretrainConfig
from pretrain.schedule import adjust_learning_rate

WARMUP_STEPS = 2


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_steps(batches: Iterator, step: Callable[[torch.Tensor, torch.Tensor, int], None], steps: int,
                 device: torch.device) -> float:
    """Images/s of ``steps`` steps after ``WARMUP_STEPS`` untimed ones (allocations, autotuning, compile)."""
    for number in range(WARMUP_STEPS):
        step(*next(batches), number)
    _synchronize(device)
    images, start = 0, time.perf_counter()
    for number in range(WARMUP_STEPS, WARMUP_STEPS + steps):
        view1, view2 = next(batches)
        step(view1, view2, number)
        images += view1.shape[0]
    _synchronize(device)
    return images / (time.perf_counter() - start)


def official_whole_step(module: ModuleType, train_root: Path, arch: str, projector: str, batch: int, size: int,
                        workers: int, steps: int, device: torch.device, compile_model: bool) -> float:
    """Images/s of the official loop (its loader, model, LARS, schedule, fp16 step)."""
    args = official_args(projector, batch)
    torch.manual_seed(0)
    model = official_model(module, arch, args).to(device)
    optimizer = official_optimizer(module, model, args)
    loader = official_loader(module, train_root, batch, workers, size)
    network = torch.compile(model) if compile_model else model
    official_step = OfficialStep(module, network, optimizer, args, steps_per_epoch=len(loader))

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            for (y1, y2), _labels in loader:
                yield y1.to(device, non_blocking=True), y2.to(device, non_blocking=True)

    return _timed_steps(batches(), official_step, steps, device)


def project_whole_step(train_root: Path, loader_kind: str, arch: str, projector: str, batch: int, size: int,
                       workers: int, steps: int, device: torch.device, compile_model: bool) -> float:
    """Images/s of the project's loop: ``loader_kind`` loader, bf16 autocast + channels_last, LARS."""
    config = PretrainConfig(batch_size=batch, model=ModelConfig(arch=arch, projector=projector),
                            optim=OptimConfig(), data=DataConfig(root=str(train_root), image_size=size,
                                                                  workers=workers, loader=loader_kind))
    context = DistributedContext(rank=0, local_rank=0, world_size=1, device=device)
    data = build_training_data(config, context, output_dtype=torch.bfloat16)
    torch.manual_seed(0)
    model = BarlowTwins(arch, projector, batch_size=batch).to(device, memory_format=torch.channels_last)
    optimizer = LARS(param_groups_weights_biases(model), lr=0, weight_decay=config.optim.weight_decay,
                     weight_decay_filter=True, lars_adaptation_filter=True)
    network = torch.compile(model) if compile_model else model

    def step(view1: torch.Tensor, view2: torch.Tensor, number: int) -> None:
        adjust_learning_rate(optimizer, number, data.batches_per_epoch, config.epochs, batch)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = network(view1, view2)
        loss.backward()
        optimizer.step()

    return _timed_steps(_project_batches(data, device), step, steps, device)


def _project_batches(data: TrainingData, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    epoch = 0
    while True:
        data.set_epoch(epoch, 0)
        for view1, view2, _skipped in data.batches:
            yield (view1.to(device, non_blocking=True, memory_format=torch.channels_last),
                   view2.to(device, non_blocking=True, memory_format=torch.channels_last))
        epoch += 1
