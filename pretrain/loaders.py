"""Chooses and builds the pretraining data loader: ``data.loader`` (torch or dali) x layout (folder or shards).

Every loader yields ``(view1, view2, skipped)`` batches of one rank, resumable at any batch with
``set_epoch(epoch, start_batch)``; order and augmentations depend only on (seed, epoch, rank, sample), and
both loaders read the same samples in the same order (they differ only in the numerics of the views).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterable

import numpy as np
import torch

from core.config import ConfigError
from core.image_arrays import ARRAY_FORMATS
from pretrain.data import (DataError, EpochBatchSampler, TwoViewDataset, build_loader, detect_layout, list_images,
                           read_bytes, read_rgb)
from pretrain.decode_views import DecodingTwoViewTransform
from pretrain.transforms import CROP_SCALE, VIEW_RECIPES, BarlowTwinsTransform, ViewRecipe
from core.distributed import DistributedContext
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


def build_transform(config: PretrainConfig) -> BarlowTwinsTransform:
    """The two-view augmentation of ``config.augment`` at ``config.data.image_size``."""
    augment = config.augment
    recipes = tuple(ViewRecipe(blur, solarize)
                    for blur, solarize in zip(augment.blur_probability, augment.solarize_probability))
    return BarlowTwinsTransform(config.data.image_size, crop_scale=(augment.crop_min_scale, 1.0),
                                view_recipes=recipes)


def build_training_data(config: PretrainConfig, context: DistributedContext,
                        output_dtype: torch.dtype = torch.float32, labels: np.ndarray | None = None) -> TrainingData:
    """The loader ``config.data`` asks for, over the folder, shard set or array download at ``data.root``.

    ``output_dtype`` is the dtype of the DALI loader's views (bfloat16 under bf16 autocast); the torch
    loader always returns float32 on the CPU. ``labels`` (one per image) make every batch end with the
    images' labels, for an online probe (folders and array layouts).
    """
    data = config.data
    layout = detect_layout(data.root)
    per_device_batch = config.batch_size // context.world_size
    views = build_transform(config)
    transform = DecodingTwoViewTransform(data.image_size, views=views)
    if data.loader == "dali" and (views.view_recipes != VIEW_RECIPES or config.augment.crop_min_scale != CROP_SCALE[0]):
        raise ConfigError("data.loader=dali builds the paper's augmentations; the augment.* settings differ from "
                          "them: use data.loader=torch")
    pin_memory = context.device.type == "cuda"
    if layout == "shards":
        try:
            index = read_index(data.root)
        except ShardIndexError as error:
            raise DataError(str(error)) from error
        stream = ShardTwoViewStream(index, transform, config.seed, per_device_batch, context.world_size,
                                    context.rank, data.shuffle_buffer)
        description = f"{index.total} images in {len(index.shards)} shards in {data.root}"
        if data.loader == "dali":
            batches = _dali_loader(lambda dali: dali.ShardSource(stream), config, context, output_dtype)
        else:
            batches = build_shard_loader(stream, data.workers, pin_memory)
        training = TrainingData(batches, stream.batches_per_epoch, stream.set_epoch, description)
    else:
        paths, layout = list_images(data.root)
        in_memory = layout in ARRAY_FORMATS  # decoded images: the PIL-input chain, no file reads
        dataset = TwoViewDataset(paths, views if in_memory else transform, seed=config.seed,
                                 read=read_rgb if in_memory else read_bytes, labels=labels)
        sampler = EpochBatchSampler(dataset, per_device_batch, context.world_size, context.rank, seed=config.seed)
        description = f"{len(paths)} images in {data.root} ({layout} layout)"
        if data.loader == "dali":
            if in_memory or labels is not None:
                raise DataError(f"data.loader=dali reads image files; {data.root} ({layout}) "
                                f"{'is decoded in memory' if in_memory else 'feeds an online probe'}: use "
                                f"data.loader=torch")
            batches = _dali_loader(lambda dali: dali.FolderSource(paths, sampler, config.seed), config, context,
                                   output_dtype)
        else:
            batches = build_loader(dataset, sampler, data.workers, pin_memory)
        training = TrainingData(batches, sampler.batches_per_epoch, sampler.set_epoch, description)
    if training.batches_per_epoch == 0:
        raise DataError(f"{data.root}: {training.description} give no batch of at least 2 per process "
                        f"({context.world_size} process(es)); add images")
    logger.info("data: %s, %s loader", training.description, data.loader)
    return training


def _dali_loader(make_source: Callable[[ModuleType], object], config: PretrainConfig, context: DistributedContext,
                 output_dtype: torch.dtype) -> Iterable[Batch]:
    """The DALI loader over the source ``make_source(pretrain.dali_loader)`` (imported only here: optional)."""
    try:
        from pretrain import dali_loader
    except ImportError as error:
        raise ConfigError(f"config key 'data.loader' is 'dali' but NVIDIA DALI cannot be imported ({error}); "
                          f"install it with: pip install -e .[dali]") from error
    return dali_loader.DaliTwoViewLoader(make_source(dali_loader), config.data.image_size, config.data.dali_threads,
                                         context.device, output_dtype, config.seed,
                                         config.batch_size // context.world_size)
