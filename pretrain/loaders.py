"""Chooses and builds the pretraining data loader: ``data.loader`` (torch or dali) x layout (folder or shards).

Every loader yields ``(view1, view2, skipped)`` batches of one rank, resumable at any batch with
``set_epoch(epoch, start_batch)``, and depends only on (seed, epoch, rank) for its order and augmentations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from pretrain.data import (DataError, EpochBatchSampler, TwoViewDataset, build_loader, detect_layout, list_images,
                           read_bytes)
from pretrain.decode_views import DecodingTwoViewTransform
from pretrain.distributed import DistributedContext
from pretrain.pretrain_config import PretrainConfig
from pretrain.shard_loader import ShardTwoViewStream, build_shard_loader
from pretrain.shards import ShardIndexError, read_index

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class TrainingData:
    """A rank's batches: iterate ``batches`` after ``set_epoch(epoch, start_batch)``."""

    batches: Iterable[Batch]
    batches_per_epoch: int
    set_epoch: Callable[[int, int], None]
    description: str


def build_training_data(config: PretrainConfig, context: DistributedContext) -> TrainingData:
    """The loader ``config.data`` asks for, over the folder or shard set at ``data.root``."""
    data = config.data
    layout = detect_layout(data.root)
    per_device_batch = config.batch_size // context.world_size
    if data.loader == "dali":
        from pretrain.dali_loader import build_dali_data  # optional dependency: nvidia-dali

        training = build_dali_data(config, context, layout)
    elif layout == "shards":
        try:
            index = read_index(data.root)
        except ShardIndexError as error:
            raise DataError(str(error)) from error
        stream = ShardTwoViewStream(index, DecodingTwoViewTransform(data.image_size), config.seed, per_device_batch,
                                    context.world_size, context.rank, data.shuffle_buffer)
        training = TrainingData(build_shard_loader(stream, data.workers, pin_memory=context.device.type == "cuda"),
                                stream.batches_per_epoch, stream.set_epoch,
                                f"{index.total} images in {len(index.shards)} shards in {data.root}")
    else:
        paths, layout = list_images(data.root)
        dataset = TwoViewDataset(paths, DecodingTwoViewTransform(data.image_size), seed=config.seed, read=read_bytes)
        sampler = EpochBatchSampler(dataset, per_device_batch, context.world_size, context.rank, seed=config.seed)
        training = TrainingData(build_loader(dataset, sampler, data.workers, pin_memory=context.device.type == "cuda"),
                                sampler.batches_per_epoch, sampler.set_epoch,
                                f"{len(paths)} images in {data.root} ({layout} layout)")
    if training.batches_per_epoch == 0:
        raise DataError(f"{data.root}: {training.description} give no batch of at least 2 per process "
                        f"({context.world_size} process(es)); add images")
    logger.info("data: %s, %s loader", training.description, data.loader)
    return training
