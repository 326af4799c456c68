"""The Barlow Twins pretraining loop: distributed, mixed precision, resumable mid-epoch, pre-emption safe.

One call of ``pretrain(config)`` trains until ``config.epochs`` are done (returns ``"completed"`` and writes
``<arch>.pth``) or until a stop is requested by SIGTERM/SIGUSR1 or ``stop_after_steps`` (checkpoints at the
step boundary and returns ``"preempted"``). Running it again with the same ``output_dir`` resumes from
``checkpoint.pth`` at the exact batch, with the same schedule, data order and augmentations.

The hot path has no host-device synchronisation: the loss is read (``.item()``) and checked for NaN/inf only
at logging and checkpoint steps. A non-finite loss raises ``NonFiniteLossError`` before anything is saved,
and so do weights that are NaN/inf or exploded (``training_state.divergence``, checked before each save:
the loss of a step is computed before its update, so it can still be finite when the update blew up):
``checkpoint.pth`` keeps the last good state. Each save keeps the generation it replaces as
``checkpoint.prev.pth``; a resume falls back to it when ``checkpoint.pth`` is missing, unreadable or diverged.
The output folder is locked for the run (``core.lock``): a second run on it refuses to start.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.checkpoint import load_latest_checkpoint, save_checkpoint
from core.config import ConfigError, config_to_dict, save_config
from core.distributed import (DistributedContext, any_process, barrier, init_distributed, shutdown_distributed,
                              sum_over_processes)
from core.lock import exclusive_output
from pretrain.loaders import TrainingData, build_training_data
from pretrain.export import backbone_state_from_model, save_backbone
from pretrain.model import BarlowTwins
from pretrain.optim import LARS, param_groups_weights_biases
from pretrain.pretrain_config import PretrainConfig
from pretrain.schedule import adjust_learning_rate
from pretrain.signals import StopRequest
from pretrain.stats import ProgressBar, StatsLogger
from core.resume import changed_settings, check_resume
from pretrain.training_state import (TrainingDivergedError, build_checkpoint,
                                     check_checkpoint_health, divergence, optimizer_tensors, restore_checkpoint)

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pth"
CONFIG_FILE = "config.yaml"
Outcome = Literal["completed", "preempted"]
EpochCallback = Callable[[nn.Module, int, torch.device], dict[str, float]]


class StepHook(Protocol):
    """Learns alongside pretraining from every step's detached first-view backbone features (an online probe).

    ``labels`` holds one label per training image (-1: none); the loop hands each batch's labels to
    ``after_step``. Its state is saved in, and restored from, the pretraining checkpoint.
    """

    labels: Any

    def bind(self, device: torch.device) -> None: ...
    def after_step(self, features: torch.Tensor, labels: torch.Tensor) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

# Settings that may change between a run and its resumption without changing what is trained.
RUNTIME_ONLY_KEYS = frozenset({"output_dir", "stop_after_steps", "progress_bar", "tensorboard", "log_every",
                               "checkpoint_every_steps", "checkpoint_every_epochs", "compile", "data.root",
                               "data.workers", "data.dali_threads", "knn", "probe"})
# Settings a resumed run may also change: learning rates and precision (to recover from a divergence) and epochs
# (to extend a run). They change how the rest of the run trains, so a resume that changes them says so. Every
# other setting (seed, batch, model, data, augmentations) must match the checkpoint's.
RECOVERY_KEYS = frozenset({"optim.lr_weights", "optim.lr_biases", "precision", "epochs"})

# Autocast dtype per precision name; None trains in float32.
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(TrainingDivergedError):
    """The loss became NaN or infinite; training stopped without saving the poisoned state."""


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` becomes bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU."""
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp16" and device.type != "cuda":
        raise ConfigError("config key 'precision' is 'fp16', which needs a GPU; use fp32 or bf16 on CPU")
    return name


@dataclass
class Run:
    """The pieces of one training run that the loop and the checkpoint code share."""

    config: PretrainConfig
    context: DistributedContext
    model: BarlowTwins  # unwrapped: its state dict has no DDP/compile prefixes
    network: nn.Module  # what is called in the loop (DDP and/or compiled wrapper of ``model``)
    optimizer: LARS
    scaler: torch.amp.GradScaler
    autocast_dtype: torch.dtype | None
    steps_per_epoch: int
    checkpoint_path: Path
    step_hooks: Sequence[StepHook] = ()
    step: int = 0
    skipped_images: int = 0
    saved_file: Path | None = None  # the last good checkpoint on disk (checkpoint.pth, or .prev.pth after a fallback)
    saved_step: int = 0

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    def save(self) -> None:
        """Writes ``checkpoint.pth`` (main process; the one it replaces becomes ``checkpoint.prev.pth``), then
        waits so no process exits before it is on disk. A diverged state raises ``TrainingDivergedError`` on
        every process (all hold the same weights) and is not written."""
        problem = divergence(self.model.state_dict().values(), optimizer_tensors(self.optimizer))
        if problem:
            kept = f"{self.last_good()} is the last good checkpoint"
            raise TrainingDivergedError(
                f"step {self.step}: {problem}; not saved, {kept}. Lower optim.lr_weights/optim.lr_biases (or use "
                f"precision=fp32) and rerun the same command to resume from it.")
        if self.context.is_main:
            checkpoint = build_checkpoint(self.model, self.optimizer, self.scaler, self.step, self.steps_per_epoch,
                                          self.skipped_images, config_to_dict(self.config))
            checkpoint["step_hooks"] = [hook.state_dict() for hook in self.step_hooks]
            save_checkpoint(checkpoint,
                            # after a fallback, checkpoint.pth is the bad file: replace it, keep the good .prev
                            self.checkpoint_path, keep_previous=self.saved_file in (None, self.checkpoint_path))
        self.saved_file, self.saved_step = self.checkpoint_path, self.step
        barrier(self.context)

    def last_good(self) -> str:
        """The last good checkpoint, for messages: ``FILE (step N)``."""
        return f"{self.saved_file} (step {self.saved_step})" if self.saved_file else "no checkpoint (none saved yet)"


def pretrain(config: PretrainConfig, callbacks: Sequence[EpochCallback] = (),
             step_hooks: Sequence[StepHook] = ()) -> Outcome:
    """Trains (or resumes training) as described by ``config``; see the module docstring.

    ``callbacks`` are called at the end of every epoch with the backbone (in eval mode), the epoch and the
    device; the scalars they return are logged to ``stats.jsonl`` (e.g. ``pretrain.knn_monitor.KnnMonitor``).
    ``step_hooks`` get every step's detached first-view features and labels (``pretrain.online_probe``).
    """
    context = init_distributed()
    try:
        return _pretrain(config, context, callbacks, step_hooks)
    finally:
        shutdown_distributed()


def _pretrain(config: PretrainConfig, context: DistributedContext, callbacks: Sequence[EpochCallback],
              step_hooks: Sequence[StepHook]) -> Outcome:
    if config.batch_size % context.world_size:
        raise ConfigError(f"config key 'batch_size' ({config.batch_size}) must be divisible by the number of "
                         f"processes ({context.world_size})")
    autocast_dtype = PRECISIONS[resolve_precision(config.precision, context.device)]
    data = build_training_data(config, context, output_dtype=autocast_dtype or torch.float32,
                               labels=step_hooks[0].labels if step_hooks else None)
    with exclusive_output(config.output_dir, "pretraining", context):
        return _train(config, context, data, callbacks, step_hooks)


def _train(config: PretrainConfig, context: DistributedContext, data: TrainingData,
           callbacks: Sequence[EpochCallback], step_hooks: Sequence[StepHook]) -> Outcome:
    """Builds or resumes the run in the (locked) output folder and trains it; see ``pretrain``."""
    run = _build_run(config, context, data.batches_per_epoch, step_hooks)
    output_dir = Path(config.output_dir)
    if context.is_main:
        save_config(config, output_dir / CONFIG_FILE)
    stats = StatsLogger(output_dir, context.is_main, config.tensorboard, resume_step=run.step)
    progress = ProgressBar(run.total_steps, run.step, context.is_main and config.progress_bar)
    try:
        with StopRequest() as stop:
            if _train_epochs(run, data, stats, progress, stop, callbacks) == "preempted":
                return "preempted"
    finally:
        progress.close()
        stats.close()
    if context.is_main:
        backbone_path = output_dir / f"{config.model.arch}.pth"
        save_backbone(backbone_state_from_model(run.model.state_dict(), config.model.arch), backbone_path,
                      config.model.arch)
        logger.info("training complete: backbone weights in %s", backbone_path)
    return "completed"


def _build_run(config: PretrainConfig, context: DistributedContext, steps_per_epoch: int,
               step_hooks: Sequence[StepHook] = ()) -> Run:
    """Model, optimizer and scaler on the right device, restored from ``checkpoint.pth`` when present."""
    torch.manual_seed(config.seed)
    device = context.device
    model = BarlowTwins(config.model.arch, config.model.projector, config.model.lambd, batch_size=config.batch_size,
                        stem=config.model.stem, scale_loss=config.model.scale_loss)
    if device.type == "cuda" and context.is_distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if device.type == "cuda" and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optim = config.optim
    optimizer = LARS(param_groups_weights_biases(model), lr=0, weight_decay=optim.weight_decay,
                     momentum=optim.momentum, eta=optim.eta, weight_decay_filter=True, lars_adaptation_filter=True,
                     clip_lr=optim.clip_lr)
    precision = resolve_precision(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    checkpoint_path = Path(config.output_dir) / CHECKPOINT_FILE
    step, skipped, source = 0, 0, None
    for hook in step_hooks:
        hook.bind(device)
    latest = load_latest_checkpoint(checkpoint_path, check=check_checkpoint_health)
    if latest is not None:
        checkpoint, source = latest
        saved_config, current = checkpoint.get("config", {}), config_to_dict(config)
        check_resume(saved_config, current, RUNTIME_ONLY_KEYS | RECOVERY_KEYS, source=str(source))
        step, skipped = restore_checkpoint(checkpoint, model, optimizer, scaler, steps_per_epoch, str(source))
        _restore_step_hooks(step_hooks, checkpoint.get("step_hooks", []), source)
        logger.info("resuming from %s at step %d (epoch %d)", source, step, step // steps_per_epoch)
        recovery = changed_settings(saved_config, current, RUNTIME_ONLY_KEYS)
        if recovery:
            logger.warning("resuming with other %s: %s", "/".join(sorted(RECOVERY_KEYS)), "; ".join(recovery))
    network: nn.Module = model
    if context.is_distributed:
        network = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        network = torch.compile(network)
    logger.info("precision %s on %s, %d process(es), %d steps per epoch", precision, device, context.world_size,
                steps_per_epoch)
    return Run(config, context, model, network, optimizer, scaler, PRECISIONS[precision], steps_per_epoch,
               checkpoint_path, step_hooks, step=step, skipped_images=skipped, saved_file=source, saved_step=step)


def _restore_step_hooks(step_hooks: Sequence[StepHook], states: list[dict[str, Any]], source: Path) -> None:
    """Puts back each hook's saved state; a hook the checkpoint has no state for starts afresh (warned)."""
    for index, hook in enumerate(step_hooks):
        if index < len(states):
            hook.load_state_dict(states[index])
        else:
            logger.warning("%s holds no state for step hook %s; it starts afresh", source, type(hook).__name__)


@dataclass
class _Window:
    """Counts since the last logging step: images trained (throughput) and unreadable images skipped."""

    start: float
    images: int = 0
    skipped: int = 0

    def add_skipped_to(self, run: Run) -> None:
        """Moves this window's skipped count (summed over processes) into the run's total."""
        run.skipped_images += int(sum_over_processes([self.skipped], run.context)[0])
        self.skipped = 0


def _train_epochs(run: Run, data: TrainingData, stats: StatsLogger, progress: ProgressBar, stop: StopRequest,
                  callbacks: Sequence[EpochCallback]) -> Outcome:
    config, device = run.config, run.context.device
    memory_format = torch.channels_last if device.type == "cuda" and config.channels_last else torch.preserve_format
    nonfinite_losses = torch.zeros((), dtype=torch.int64, device=device)
    steps_this_process = 0
    run_start = time.perf_counter()
    window = _Window(start=run_start)
    for epoch in range(run.step // run.steps_per_epoch, config.epochs):
        data.set_epoch(epoch, run.step - epoch * run.steps_per_epoch)
        run.network.train()
        for view1, view2, skipped, *labels in data.batches:
            learning_rates = adjust_learning_rate(
                run.optimizer, run.step, run.steps_per_epoch, config.epochs, config.batch_size,
                warmup_epochs=config.optim.warmup_epochs, end_factor=config.optim.end_factor,
                lr_weights=config.optim.lr_weights, lr_biases=config.optim.lr_biases)
            loss = _train_step(run, view1.to(device, non_blocking=True, memory_format=memory_format),
                               view2.to(device, non_blocking=True, memory_format=memory_format),
                               labels[0].to(device, non_blocking=True) if labels else None)
            nonfinite_losses += (~torch.isfinite(loss)).long()
            run.step += 1
            steps_this_process += 1
            window.images += view1.shape[0]
            window.skipped += int(skipped.sum())
            progress.update()
            end_of_epoch = run.step % run.steps_per_epoch == 0
            if run.step % config.log_every == 0 or end_of_epoch:
                loss_value = _checked_loss(loss, nonfinite_losses, run)
                now = time.perf_counter()
                images = sum_over_processes([window.images], run.context)[0]
                window.add_skipped_to(run)
                record = {"step": run.step, "epoch": epoch, "loss": loss_value, "lr_weights": learning_rates[0],
                          "lr_biases": learning_rates[1], "images_per_s": images / max(now - window.start, 1e-9),
                          "skipped_images": run.skipped_images, "time": round(now - run_start, 3)}
                stats.log(record)
                progress.show(loss=loss_value, images_per_s=record["images_per_s"])
                window = _Window(start=now)
            if config.stop_after_steps is not None and steps_this_process >= config.stop_after_steps:
                stop.request(f"stop_after_steps={config.stop_after_steps} reached")
            stopping = any_process(stop.reason is not None, run.context)
            if stopping or _checkpoint_due(config, run.step, epoch, end_of_epoch):
                _checked_loss(loss, nonfinite_losses, run)
                window.add_skipped_to(run)
                run.save()
            if stopping:
                logger.warning("stopping at step %d (%s); checkpoint saved to %s; run the same command to resume",
                               run.step, stop.reason or "another process was asked to stop", run.checkpoint_path)
                return "preempted"
        _run_epoch_callbacks(run, epoch, stats, callbacks)
    return "completed"


def _checkpoint_due(config: PretrainConfig, step: int, epoch: int, end_of_epoch: bool) -> bool:
    """Every ``checkpoint_every_steps`` steps, every ``checkpoint_every_epochs`` epoch ends, and at the end."""
    if step % config.checkpoint_every_steps == 0:
        return True
    return end_of_epoch and ((epoch + 1) % config.checkpoint_every_epochs == 0 or epoch + 1 == config.epochs)


def _train_step(run: Run, view1: torch.Tensor, view2: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """One optimizer step on a batch of view pairs (then the step hooks'); returns the detached loss."""
    run.optimizer.zero_grad(set_to_none=True)
    dtype = run.autocast_dtype
    with torch.autocast(device_type=view1.device.type, dtype=dtype, enabled=dtype is not None):
        if run.step_hooks:
            loss, features = run.network(view1, view2, return_features=True)
        else:
            loss = run.network(view1, view2)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    for hook in run.step_hooks:
        hook.after_step(features.flatten(1), labels)
    return loss.detach()


def _checked_loss(loss: torch.Tensor, nonfinite_losses: torch.Tensor, run: Run) -> float:
    """The loss as a float (a host-device sync), after checking no loss since the last check was NaN/inf."""
    value = loss.item()
    count = int(nonfinite_losses.item())
    if count or not math.isfinite(value):
        raise NonFiniteLossError(
            f"the loss became NaN/inf ({count} non-finite step(s) before step {run.step}, last loss {value}); "
            f"stopped without saving; {run.last_good()} keeps the last good state. "
            f"Lower optim.lr_weights/optim.lr_biases or use precision=fp32, then rerun to resume from it.")
    return value


def _run_epoch_callbacks(run: Run, epoch: int, stats: StatsLogger, callbacks: Sequence[EpochCallback]) -> None:
    """Calls each epoch-end callback on the backbone (main process; the others wait) and logs what it returns."""
    if run.context.is_main and callbacks:
        run.model.eval()
        for callback in callbacks:
            values = callback(run.model.backbone, epoch, run.context.device)
            if values:
                stats.log({"step": run.step, "epoch": epoch, **{key: float(value) for key, value in values.items()}})
                logger.info("epoch %d: %s", epoch, ", ".join(f"{key} {value:.2f}" for key, value in values.items()))
        run.model.train()
    barrier(run.context)
