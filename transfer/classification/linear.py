"""Linear classifiers on a frozen or fine-tuned trunk: VISSL Places/iNat, official ImageNet linear, semi-supervised.

One training loop serves every protocol; the configs in ``configs/transfer/`` fix the numbers:

* VISSL linear (Places205/365, iNat18): BatchNorm + Linear head (VISSL's ``eval_mlp``) on the pooled res5
  features (``features.layer``: global average pool by default, or VISSL's 8192-d ``res5_vissl8k``), SGD
  with Nesterov momentum 0.9, weight decay 5e-4 (not on BatchNorm), LR 0.01 x batch/256 with x0.1 steps.
* Official ImageNet linear (``evaluate.py --weights freeze``): Linear head (N(0, 0.01) weights, zero bias),
  SGD momentum 0.9, LR 0.3, weight decay 1e-6, cosine over 100 epochs, batch 256, best top-1/top-5.
* Semi-supervised (``--weights finetune``): the trunk trains too (own LR, train mode) on a subset.
* mix-bt's small-image linear.py (CIFAR): Linear head, Adam LR 0.01 decayed exponentially to 1e-6 over 200
  epochs, weight decay 5e-6, batch 512, training images with colour augmentation, and the frozen trunk in
  train mode (its BatchNorm uses batch statistics, ``trunk_batchnorm: batch``), top-1 after the last epoch.

Train transform RandomResizedCrop + flip (``augmentation``), test Resize + CenterCrop (Resize for small
images). ``mode: features`` is the fast mode: the head trains on cached features (test transform, no
augmentation). ``torchrun`` runs it with DDP (the head's BatchNorm synchronised on GPUs, as VISSL's SyncBN).
The state is checkpointed each epoch and a rerun resumes from it; a rerun whose protocol differs from the
checkpoint's is refused (only ``epochs`` of a multistep schedule may grow).

Reproducible across interruption: an epoch's batches are a function of (seed, epoch) and each image's
crop and flip a function of (seed, epoch, index) (``core.sampling``), never of the global generators, so a
run resumed from its last checkpoint ends bit-identical (on CPU) to an uninterrupted one. A last batch of
one image per process is dropped (BatchNorm cannot train on it); a ``batch_size`` above the number of
training images is refused.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset, TensorDataset
from tqdm import tqdm

from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import config_to_dict
from core.resume import check_resume
from core.distributed import DistributedContext, gather_to_all, sum_over_processes
from core.backbone import LoadedBackbone, freeze
from core.sampling import EpochBatchSampler, SeededSamples
from transfer.classification.datasets import ItemsWithPath, build_dataset, subset_by_file_names
from transfer.classification.features import (cached_features, evaluation_transform, layer_channels, layer_spec,
                                              pooled_positions, trunk_feature_maps)
from transfer.classification.linear_config import LinearConfig, train_transform
from transfer.classification.linear_optimizer import build_optimizer
from transfer.classification.skipped_images import SkippedImages

logger = logging.getLogger(__name__)


class PooledBatchNormLinear(nn.Module):
    """VISSL's ``eval_mlp``: BatchNorm over the channels of the pooled map (shared by its positions), then Linear.

    Input: N x (channels * positions) features flattened channel-major; with one position (global average
    pooling) this is BatchNorm1d + Linear.
    """

    def __init__(self, channels: int, positions: int, num_classes: int) -> None:
        super().__init__()
        self.channels, self.positions = channels, positions
        self.norm = nn.BatchNorm1d(channels)
        self.linear = nn.Linear(channels * positions, num_classes)

    def forward(self, features: Tensor) -> Tensor:
        normed = self.norm(features.reshape(features.shape[0], self.channels, self.positions))
        return self.linear(normed.flatten(1))


def build_head(kind: str, channels: int, positions: int, num_classes: int) -> nn.Module:
    """``bn_linear`` (VISSL ``eval_mlp``) or ``linear`` (official evaluate.py: N(0, 0.01) weights, zero bias)."""
    if kind == "bn_linear":
        return PooledBatchNormLinear(channels, positions, num_classes)
    if kind != "linear":
        raise ValueError(f"unknown head {kind!r}; valid: bn_linear, linear")
    linear = nn.Linear(channels * positions, num_classes)
    nn.init.normal_(linear.weight, std=0.01)
    nn.init.zeros_(linear.bias)
    return linear


class TrunkClassifier(nn.Module):
    """Trunk (pooled as ``layer``) + head; a frozen trunk runs without gradients, in eval mode unless
    ``batch_statistics`` (then its BatchNorm normalises with, and keeps running averages of, the training batches)."""

    def __init__(self, trunk: nn.Module, head: nn.Module, finetune: bool, layer: str = "res5",
                 batch_statistics: bool = False) -> None:
        super().__init__()
        self.trunk, self.head, self.finetune = trunk, head, finetune
        self.batch_statistics = batch_statistics  # a frozen trunk's BatchNorm in train mode (mix-bt's linear.py)
        self.spec = layer_spec(layer)

    def train(self, mode: bool = True) -> "TrunkClassifier":
        super().train(mode)
        if not self.finetune and not self.batch_statistics:
            self.trunk.eval()  # frozen trunk: BatchNorm statistics stay as pretrained
        return self

    def forward(self, images: Tensor) -> Tensor:
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            maps = trunk_feature_maps(self.trunk, images, self.spec.last_stage)
            features = self.spec.pool(maps).flatten(1)
        return self.head(features.float())


def topk_correct(logits: Tensor, targets: Tensor, ks: tuple[int, ...] = (1, 5)) -> list[float]:
    """Number of rows whose target is among the top-k logits, for each k (k capped at the class count)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == targets.view(-1, 1)
    return [float(hits[:, :k].any(dim=1).sum()) for k in ks]


def _batches(loader: DataLoader, device: torch.device, skipped: SkippedImages):
    """(inputs, targets) on ``device``; images flagged unreadable (``ItemsWithPath``) are dropped into ``skipped``."""
    for batch in loader:
        inputs, targets = batch[0], torch.as_tensor(batch[1]).long()
        if len(batch) == 4:
            ok, paths = batch[2], batch[3]
            skipped.add(path for path, readable in zip(paths, ok.tolist()) if not readable)
            inputs, targets = inputs[ok], targets[ok]
        if len(targets):
            yield inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, context: DistributedContext, amp: bool,
             skipped: SkippedImages | None = None) -> dict[str, float]:
    """Top-1 / top-5 (percent) over this process's shard, summed over processes."""
    model.eval()
    correct1 = correct5 = count = 0.0
    for inputs, targets in _batches(loader, context.device, skipped if skipped is not None else SkippedImages()):
        with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(inputs)
        hits = topk_correct(logits.float(), targets)
        correct1, correct5, count = correct1 + hits[0], correct5 + hits[1], count + len(targets)
    correct1, correct5, count = sum_over_processes([correct1, correct5, count], context)
    return {"top1": 100.0 * correct1 / max(count, 1), "top5": 100.0 * correct5 / max(count, 1)}


def _data(config: LinearConfig, loaded: LoadedBackbone, arch: str, dataset: str, data_root: str,
          output_dir: Path, context: DistributedContext, skipped: SkippedImages) -> tuple:
    """Train/val data sets (images or cached features), the number of classes and the pooled positions."""
    if config.mode == "features":
        cache_root = config.features.cache_dir or str(output_dir / "feature_cache")
        splits = [cached_features(loaded, arch, dataset, data_root, split, config.features, cache_root, context.device,
                                  context.rank, context.world_size, progress=context.is_main, skipped=skipped)
                  for split in (config.train_split, config.val_split)]
        tensors = [tuple(torch.from_numpy(array) for array in cached.valid_rows()) for cached in splits]
        num_classes = int(max(t[1].max() for t in tensors)) + 1
        positions = tensors[0][0].shape[1] // layer_channels(config.features.layer, arch)
        return TensorDataset(*tensors[0]), TensorDataset(*tensors[1]), num_classes, positions
    skip = config.features.skip_unreadable
    train_set = build_dataset(dataset, data_root, config.train_split, train_transform(config.image_size, config.augmentation), skip)
    if config.train_subset:
        train_set = subset_by_file_names(train_set, config.train_subset)
    val_set = build_dataset(dataset, data_root, config.val_split,
                            evaluation_transform(config.test_transform, config.image_size), skip)
    return (ItemsWithPath(train_set), ItemsWithPath(val_set), len(train_set.classes),
            pooled_positions(config.features.layer, config.image_size))


def _check_batch_size(config: LinearConfig, num_train: int, world_size: int) -> int:
    """The per-process batch. A batch larger than the training set makes each epoch one step over all of it:
    refused when the LR is scaled with ``batch_size`` (it would be scaled for images that do not exist),
    a warning otherwise (full-batch steps on a small subset). Fewer than two images per process (BatchNorm
    cannot train on one) are refused."""
    if config.batch_size > num_train:
        message = (f"batch_size {config.batch_size} exceeds the {num_train} training images "
                   f"({config.train_subset or config.train_split})")
        if config.scale_lr_with_batch:
            raise ValueError(f"{message}, but the LR is scaled by batch_size/256 (scale_lr_with_batch=true); "
                             f"use batch_size <= {num_train}")
        logger.warning("%s: each epoch is a single step over all of them", message)
    if min(config.batch_size, num_train) // world_size < 2:
        raise ValueError(f"batch_size {config.batch_size} over {num_train} training images and {world_size} "
                         f"process(es) leaves fewer than 2 images per process (BatchNorm cannot train on one)")
    return config.batch_size // world_size


def protocol_fingerprint(config: LinearConfig, loaded: LoadedBackbone) -> dict:
    """The settings and backbone a resumed run must share with its checkpoint (``epochs`` may grow for
    multistep schedules)."""
    settings = {key: value for key, value in config_to_dict(config).items()
                if key not in ("num_workers", "features", "val_split", "test_transform", "dataset", "report")}
    if config.schedule != "cosine":
        del settings["epochs"]
    settings["features.layer"] = config.features.layer
    settings["backbone"] = loaded.weights_sha256 or loaded.weights
    if loaded.source:  # another network of the same file (--source) is another backbone
        settings["backbone_source"] = loaded.source
    return settings


def _resume(path: Path, config: LinearConfig, loaded: LoadedBackbone, model: nn.Module,
            optimizer: torch.optim.Optimizer, scheduler: object) -> dict | None:
    """Loads ``path`` into model/optimizer/scheduler and returns its progress (None if there is no checkpoint)."""
    if not path.is_file():
        return None
    saved = load_checkpoint(path)
    check_resume(saved.get("protocol", {}), protocol_fingerprint(config, loaded), source=str(path))
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    return saved["state"]


def _broadcast_buffers(model: nn.Module, context: DistributedContext) -> None:
    """Every process evaluates its shard with the main process's BatchNorm statistics (the checkpointed model)."""
    if context.is_distributed:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)


def train_linear(config: LinearConfig, loaded: LoadedBackbone, arch: str, dataset: str, data_root: str,
                 output_dir: str | Path, context: DistributedContext, progress: bool = True,
                 skipped: SkippedImages | None = None) -> dict:
    """Trains the head (and trunk, if ``lr_backbone > 0``); returns best and final top-1/top-5 and curves.

    Images skipped as unreadable (``features.skip_unreadable``) by any process are added to ``skipped``.
    """
    output_dir = Path(output_dir)
    skipped_here = SkippedImages()
    train_set, val_set, num_classes, positions = _data(config, loaded, arch, dataset, data_root, output_dir, context,
                                                       skipped_here)
    local_batch = _check_batch_size(config, len(train_set), context.world_size)
    torch.manual_seed(config.seed)  # after _data: a cache miss (extraction) must not change the head's init
    finetune = config.lr_backbone > 0
    head = build_head(config.head, layer_channels(config.features.layer, arch), positions, num_classes)
    if context.is_distributed and context.device.type == "cuda":
        head = nn.SyncBatchNorm.convert_sync_batchnorm(head)  # VISSL: head BatchNorm over the global batch
    if config.mode == "features":
        model = head.to(context.device)
    else:
        trunk = loaded.model if finetune else freeze(loaded.model)
        trunk.requires_grad_(finetune)
        model = TrunkClassifier(trunk, head, finetune, config.features.layer,
                                batch_statistics=config.trunk_batchnorm == "batch").to(context.device)
    optimizer, scheduler = build_optimizer(model, config)
    checkpoint_path = output_dir / "checkpoint.pth"
    state = _resume(checkpoint_path, config, loaded, model, optimizer, scheduler) or {
        "epoch": 0, "best": {"top1": 0.0, "top5": 0.0}, "last": {"top1": 0.0, "top5": 0.0},
        "curves": {"top1": [], "loss": []}}
    wrapped = DistributedDataParallel(model) if context.is_distributed else model
    sampler = EpochBatchSampler(train_set, local_batch, context.world_size, context.rank, config.seed)
    workers = 0 if config.mode == "features" else config.num_workers
    train_loader = DataLoader(SeededSamples(train_set, config.seed), batch_sampler=sampler, num_workers=workers,
                              pin_memory=context.device.type == "cuda", persistent_workers=workers > 0)
    val_shard = Subset(val_set, range(context.rank, len(val_set), context.world_size))
    val_loader = DataLoader(val_shard, batch_size=local_batch, num_workers=workers)
    amp = config.amp and context.device.type == "cuda"
    for epoch in range(state["epoch"], config.epochs):
        sampler.set_epoch(epoch)
        wrapped.train()
        losses = []
        for inputs, targets in tqdm(_batches(train_loader, context.device, skipped_here), total=len(train_loader),
                                    desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False):
            with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(wrapped(inputs).float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        _broadcast_buffers(model, context)
        last = evaluate(model, val_loader, context, amp, skipped_here)
        state["best"] = {key: max(state["best"][key], last[key]) for key in last}
        state["last"] = last
        state["curves"]["top1"].append([epoch + 1, last["top1"]])
        state["curves"]["loss"].append([epoch + 1, sum(losses) / max(len(losses), 1)])
        state["epoch"] = epoch + 1
        if not math.isfinite(state["curves"]["loss"][-1][1]):
            raise FloatingPointError(f"training loss is not finite at epoch {epoch + 1}")
        if context.is_main:
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "state": state,
                             "protocol": protocol_fingerprint(config, loaded)}, checkpoint_path)
    everywhere = gather_to_all(context, skipped_here.paths)
    if skipped is not None:
        skipped.add(everywhere, warn=False)
    return {"best": state["best"], "last": state["last"], "curves": state["curves"], "num_classes": num_classes}
