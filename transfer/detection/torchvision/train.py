"""Fine-tuning loop of the torchvision engine: DDP, AMP, resumable checkpoints, periodic evaluation.

One run writes into ``output_dir``: ``config.yaml`` (resolved), ``checkpoint.pth`` (atomic, every
``solver.checkpoint_period`` iterations and at the end) and ``results.json`` (``core.results``
schema, engine ``torchvision``). Running the same command again resumes from ``checkpoint.pth``; a
finished run returns its results without training again.

Reproducible across interruption: the batch of iteration ``i`` and its images' flips are a function of
(seed, i, image index) (``sampler``, ``core.sampling.SeededSamples``), and the global generators, which
the model draws from (training resolution per image, RPN and ROI-head sampling), are seeded from (seed,
i, rank) at each iteration; so a run resumed from a checkpoint ends bit-identical (on CPU) to an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from core.checkpoint import CheckpointError, file_sha256, load_backbone_state_dict, load_checkpoint, save_checkpoint
from core.config import ConfigError, config_to_dict, save_config
from core.resume import check_resume
from core.sampling import SeededSamples, sample_seed
from transfer.detection.torchvision.config import DetectionConfig, SolverConfig, scale_to_world_size
from transfer.detection.torchvision.datasets import DatasetError, DetectionDataset, build_dataset
from core.distributed import DistributedContext, barrier, init_distributed
from transfer.detection.torchvision.evaluate import METRIC_DEFINITIONS, evaluate
from transfer.detection.torchvision.model import build_detector, set_test_resolution, set_train_resolution
from transfer.detection.torchvision.optim import build_optimizer, set_learning_rate
from transfer.detection.torchvision.sampler import GroupedInfiniteBatchSampler
from transfer.detection.torchvision.transforms import RandomHorizontalFlip
from core.results import TaskResult, read_result, write_result

CHECKPOINT_FORMAT = "torchvision-detection-checkpoint"
CHECKPOINT_NAME = "checkpoint.pth"
RESULTS_NAME = "results.json"

logger = logging.getLogger(__name__)


def _as_lists(batch: list) -> tuple:
    return tuple(zip(*batch))


@dataclasses.dataclass
class TrainingState:
    """What a checkpoint restores besides the weights."""

    iteration: int = 0
    curves: dict[str, list[list[float]]] = dataclasses.field(default_factory=lambda: {"loss": []})


def load_datasets(config: DetectionConfig) -> tuple[DetectionDataset, DetectionDataset]:
    """Training (with flips) and test datasets; their classes must agree."""
    with_masks = config.model.meta_arch == "mask_rcnn"
    train_set = build_dataset(config.data, training=True, with_masks=with_masks, transform=RandomHorizontalFlip())
    test_set = build_dataset(config.data, training=False, with_masks=False)
    if train_set.class_names != test_set.class_names:
        raise DatasetError(f"training classes {train_set.class_names} differ from test classes {test_set.class_names}")
    return train_set, test_set


def prepare_model(config: DetectionConfig, num_classes: int, context: DistributedContext) -> tuple[nn.Module, nn.Module]:
    """(model to call, unwrapped model): SyncBN conversion and DDP wrapping under multi-GPU runs."""
    model = build_detector(config.model, num_classes).to(context.device)
    if context.is_distributed and config.model.norm == "syncbn" and context.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if not context.is_distributed:
        return model, model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids), model


# Settings that may change between a run and its resumption (solver.max_iter: extending a finished run);
# every other key must match the checkpoint's.
RESUME_FREE_KEYS = frozenset({"output_dir", "log_period", "eval_period", "device", "data.num_workers",
                              "solver.max_iter"})


def restore(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
            config: DetectionConfig) -> TrainingState:
    """Loads a training checkpoint into the model, optimizer and scaler, if it was made with the same settings
    (weights, data, model, solver, seed); otherwise refuses, naming the keys that differ."""
    checkpoint = load_checkpoint(path)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint of the torchvision detection engine")
    check_resume(checkpoint.get("config", {}), config_to_dict(config), RESUME_FREE_KEYS, source=str(path))
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scaler.load_state_dict(checkpoint["scaler"])
    return TrainingState(int(checkpoint["iteration"]), checkpoint["curves"])


def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                     state: TrainingState, config: DetectionConfig) -> dict:
    """Everything ``restore`` needs, plus the config for provenance."""
    return {"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(), "iteration": state.iteration, "curves": state.curves,
            "config": config_to_dict(config)}


def _mean_over_processes(value: torch.Tensor, context: DistributedContext) -> float:
    if context.is_distributed:
        value = value.clone()
        torch.distributed.all_reduce(value)
        value /= context.world_size
    return float(value)


def train_iterations(config: DetectionConfig, solver: SolverConfig, eval_period: int, model: nn.Module,
                     unwrapped: nn.Module, train_set: DetectionDataset, test_set: DetectionDataset,
                     state: TrainingState, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                     context: DistributedContext, checkpoint_path: Path) -> None:
    """Runs iterations ``state.iteration .. solver.max_iter - 1``, checkpointing and evaluating on schedule."""
    use_amp = solver.amp and context.device.type == "cuda"
    sampler = GroupedInfiniteBatchSampler(
        len(train_set), solver.ims_per_batch // context.world_size, seed=config.seed, rank=context.rank,
        world_size=context.world_size, start_batch=state.iteration,
        group_of=train_set.aspect_ratio_is_wide if config.data.aspect_ratio_grouping else None)
    loader = torch.utils.data.DataLoader(SeededSamples(train_set, config.seed), batch_sampler=sampler,
                                         num_workers=config.data.num_workers, collate_fn=_as_lists)
    batches = iter(loader)
    model.train()
    progress = tqdm(range(state.iteration, solver.max_iter), initial=state.iteration, total=solver.max_iter,
                    desc="train", disable=not context.is_main, dynamic_ncols=True)
    running_loss = 0.0
    for iteration in progress:
        images, targets = next(batches)
        images = [image.to(context.device, non_blocking=True) for image in images]
        targets = [{key: value.to(context.device, non_blocking=True) for key, value in target.items()} for target in targets]
        lr = set_learning_rate(optimizer, iteration, solver)
        torch.manual_seed(sample_seed(config.seed, iteration, context.rank))
        with torch.autocast(context.device.type, enabled=use_amp):
            loss_dict = model(images, targets)
        loss = sum(loss_dict.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {float(loss)} at iteration {iteration}: "
                                     + ", ".join(f"{key}={float(value):.4g}" for key, value in loss_dict.items()))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        state.iteration = iteration + 1
        running_loss += _mean_over_processes(loss.detach(), context)
        if state.iteration % config.log_period == 0 or state.iteration == solver.max_iter:
            logged_iterations = (state.iteration - 1) % config.log_period + 1
            state.curves["loss"].append([state.iteration, running_loss / logged_iterations])
            progress.set_postfix(loss=f"{running_loss / logged_iterations:.3f}", lr=f"{lr:.2e}")
            running_loss = 0.0
        if state.iteration % solver.checkpoint_period == 0 or state.iteration == solver.max_iter:
            if context.is_main:
                save_checkpoint(checkpoint_state(unwrapped, optimizer, scaler, state, config), checkpoint_path)
            barrier(context)
        if eval_period and state.iteration % eval_period == 0 and state.iteration < solver.max_iter:
            metrics, _ = run_evaluation(config, unwrapped, test_set, context)
            for key, value in metrics.items():
                state.curves.setdefault(f"eval_{key}", []).append([state.iteration, value])
            model.train()
    progress.close()


def run_evaluation(config: DetectionConfig, model: nn.Module, test_set: DetectionDataset,
                   context: DistributedContext) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Test-set metrics at the test resolution (main process; empty elsewhere)."""
    set_test_resolution(model, config.model)
    try:
        metrics, per_class = evaluate(model, test_set, config.data.format, context, config.solver.amp,
                                      config.data.num_workers)
    finally:
        set_train_resolution(model, config.model)
    if context.is_main:
        logger.info("evaluation: %s", ", ".join(f"{key}={value:.2f}" for key, value in metrics.items()))
    return metrics, per_class


def build_result(config: DetectionConfig, solver: SolverConfig, context: DistributedContext, metrics: dict,
                 per_class: dict, state: TrainingState, wall_time_s: float) -> TaskResult:
    """The results-schema record of a finished run."""
    weights = config.model.weights
    use_weights = weights is not None and not config.model.random_init
    recorded = config_to_dict(config)
    recorded.update({
        "scaled_solver": dataclasses.asdict(solver), "world_size": context.world_size,
        "metric_definitions": METRIC_DEFINITIONS[config.data.format],
        "weights_format": load_backbone_state_dict(weights, config.model.arch)[1] if use_weights else None,
    })
    return TaskResult(
        task=config.task, dataset=config.data.dataset_name, split=config.data.split_name,
        weights=str(weights) if use_weights else "random-init",
        weights_sha256=file_sha256(weights) if use_weights else None, engine="torchvision", layer=None,
        metrics=metrics, per_class=per_class, curves=state.curves, config=recorded, seed=config.seed,
        wall_time_s=round(wall_time_s, 3), protocol=protocol_facts(config, solver, context),
        baseline=config.baseline or not use_weights)


def protocol_facts(config: DetectionConfig, solver: SolverConfig, context: DistributedContext) -> dict:
    """The values this run trained with, after scaling to the number of processes (``transfer.protocol``)."""
    detector = {"faster_rcnn": "Faster R-CNN", "mask_rcnn": "Mask R-CNN"}[config.model.meta_arch]
    norm = {"syncbn": "SyncBN" if context.is_distributed and context.device.type == "cuda" else "BN",
            "bn": "BN", "frozen_bn": "FrozenBN"}[config.model.norm]
    return {"arch": config.model.arch, "engine": "torchvision", "processes": context.world_size,
            "model": f"{detector} R{config.model.arch.removeprefix('resnet')}-FPN", "norm": norm,
            "total_batch": solver.ims_per_batch, "iterations": solver.max_iter, "base_lr": solver.base_lr}


def train_and_evaluate(config: DetectionConfig, resume: bool = True, eval_only: bool = False) -> TaskResult | None:
    """Fine-tunes and evaluates as ``config`` says; returns the result on the main process (None elsewhere)."""
    start_time = time.time()
    context = init_distributed(config.device)
    solver, eval_period = scale_to_world_size(config.solver, config.eval_period, context.world_size)
    if solver.ims_per_batch % context.world_size:
        raise ConfigError(f"solver.ims_per_batch={solver.ims_per_batch} is not divisible by the "
                          f"{context.world_size} processes")
    output_dir = Path(config.output_dir)
    checkpoint_path, results_path = output_dir / CHECKPOINT_NAME, output_dir / RESULTS_NAME
    torch.manual_seed(config.seed + context.rank)
    train_set, test_set = load_datasets(config)
    model, unwrapped = prepare_model(config, len(train_set.class_names), context)
    optimizer = build_optimizer(unwrapped, solver)
    scaler = torch.amp.GradScaler(context.device.type, enabled=solver.amp and context.device.type == "cuda")
    state = TrainingState()
    if (resume or eval_only) and checkpoint_path.is_file():
        state = restore(checkpoint_path, unwrapped, optimizer, scaler, config)
        logger.info("resumed from %s at iteration %d", checkpoint_path, state.iteration)
    elif eval_only:
        raise CheckpointError(f"--eval-only needs a trained model: {checkpoint_path} does not exist")
    if state.iteration >= solver.max_iter and results_path.is_file() and not eval_only:
        logger.info("%s is complete (iteration %d); returning its results", output_dir, state.iteration)
        return read_result(results_path) if context.is_main else None
    if context.is_main:
        save_config(config, output_dir / "config.yaml")
    if not eval_only:
        train_iterations(config, solver, eval_period, model, unwrapped, train_set, test_set, state, optimizer,
                         scaler, context, checkpoint_path)
    metrics, per_class = run_evaluation(config, unwrapped, test_set, context)
    if not context.is_main:
        return None
    if not all(math.isfinite(value) for value in metrics.values()):
        raise FloatingPointError(f"non-finite evaluation metrics: {metrics}")
    result = build_result(config, solver, context, metrics, per_class, state, time.time() - start_time)
    write_result(result, results_path)
    logger.info("wrote %s", results_path)
    return result
