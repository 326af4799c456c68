"""Frozen-trunk feature extraction with an on-disk cache (``python -m transfer.classification.features``).

Layers (``FEATURE_LAYERS``): ``res5`` = global-average-pooled last stage (2048-d for ResNet-50, the
default), and VISSL's pooled variants ``res5_vissl8k`` (AvgPool2d(6, stride 1) on the 7x7 res5 map:
2x2x2048 = 8192-d) and ``res4_vissl9k`` (AvgPool2d(8, stride 3) on the 14x14 res4 map: 3x3x1024 = 9216-d).
Test transforms (``TEST_TRANSFORMS``): ``center_crop`` = Resize(256) + CenterCrop(224) and VISSL's
``vissl_resize`` = Resize(256) + Resize((224, 224)), scaled for other image sizes, and ``resize`` = Resize((s, s))
for small images evaluated at their own size (a no-op on CIFAR at 32 px). The trunk runs in eval
mode, under AMP and channels_last on GPU; with ``torchrun`` each process fills its own chunks of the cache.

    torchrun --nproc_per_node 8 -m transfer.classification.features --weights resnet50.pth --dataset voc2007 \
        --data-root /data/VOCdevkit/VOC2007 --split trainval --cache-dir features/ [layer=res5 dtype=float16]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from tqdm import tqdm

from core.backbone import LoadedBackbone, freeze
from core.config import require_value
from core.distributed import barrier
from transfer.classification.datasets import ImageListDataset, UnreadableImageError, build_dataset
from transfer.classification.feature_cache import DTYPES, CachedFeatures, FeatureCache
from transfer.classification.skipped_images import SkippedImages

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _resize_size(image_size: int) -> int:
    return round(image_size * 256 / 224)


TEST_TRANSFORMS: dict[str, Callable[[int], list]] = {
    "center_crop": lambda size: [transforms.Resize(_resize_size(size)), transforms.CenterCrop(size)],
    "vissl_resize": lambda size: [transforms.Resize(_resize_size(size)), transforms.Resize((size, size))],
    # Small images at their own size (CIFAR's 32 px, STL-10's 96 px pass unchanged; others are squashed to it).
    "resize": lambda size: [transforms.Resize((size, size))],
}


def evaluation_transform(name: str, image_size: int = 224) -> transforms.Compose:
    """A deterministic evaluation transform from ``TEST_TRANSFORMS``, then ImageNet normalisation."""
    if name not in TEST_TRANSFORMS:
        raise ValueError(f"unknown test transform {name!r}; valid: {', '.join(TEST_TRANSFORMS)}")
    return transforms.Compose([*TEST_TRANSFORMS[name](image_size), transforms.ToTensor(),
                               transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class LayerSpec(NamedTuple):
    """Which ResNet stage is pooled, and how (the pooled map is flattened channel-major, as in VISSL)."""

    last_stage: int  # the ResNet stage whose output is pooled (3 = res4 / layer3, 4 = res5 / layer4)
    pool: Callable[[Tensor], Tensor]  # N x C x H x W maps -> N x C x h x w pooled maps
    min_map: int  # smallest feature map side the pooling accepts


FEATURE_LAYERS: dict[str, LayerSpec] = {
    "res5": LayerSpec(4, lambda maps: F.adaptive_avg_pool2d(maps, 1), 1),
    "res5_vissl8k": LayerSpec(4, lambda maps: F.avg_pool2d(maps, 6, stride=1), 6),
    "res4_vissl9k": LayerSpec(3, lambda maps: F.avg_pool2d(maps, 8, stride=3), 8),
}


def layer_spec(layer: str) -> LayerSpec:
    """The ``FEATURE_LAYERS`` entry of ``layer``, or an error listing the valid names."""
    if layer not in FEATURE_LAYERS:
        raise ValueError(f"unknown feature layer {layer!r}; valid: {', '.join(FEATURE_LAYERS)}")
    return FEATURE_LAYERS[layer]


def layer_channels(layer: str, arch: str) -> int:
    """Channels of the pooled stage: the trunk width for res5, half of it for res4 (every torchvision ResNet)."""
    from core.backbone import backbone_width

    return backbone_width(arch) // 2 ** (4 - layer_spec(layer).last_stage)


def pooled_positions(layer: str, image_size: int) -> int:
    """Spatial positions per channel after pooling ``layer`` for square ``image_size`` inputs (1 for GAP).

    A torchvision ResNet halves the map (rounding up) five times up to res5, four times up to res4.
    """
    spec = layer_spec(layer)
    side = -(-image_size // 2 ** (spec.last_stage + 1))
    if side < spec.min_map:
        raise ValueError(f"layer {layer} needs feature maps of at least {spec.min_map}x{spec.min_map}, "
                         f"image_size {image_size} gives {side}x{side}: use image_size >= 224")
    return spec.pool(torch.zeros(1, 1, side, side)).numel()


def trunk_feature_maps(backbone: nn.Module, images: Tensor, last_stage: int) -> Tensor:
    """Feature maps of a torchvision ResNet after stage ``last_stage`` (``layer<last_stage>``)."""
    maps = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(images))))
    for stage in range(1, last_stage + 1):
        maps = getattr(backbone, f"layer{stage}")(maps)
    return maps


class FeatureExtractor:
    """Pooled features of a frozen trunk for batches of normalised images (float32 on the CPU)."""

    def __init__(self, backbone: nn.Module, layer: str = "res5", device: torch.device | str = "cpu",
                 amp: bool | None = None, channels_last: bool | None = None) -> None:
        self.layer, self.spec = layer, layer_spec(layer)
        self.device = torch.device(device)
        on_gpu = self.device.type == "cuda"
        self.amp = on_gpu and (amp is None or amp)
        self.channels_last = on_gpu and (channels_last is None or channels_last)
        self.backbone = getattr(backbone, "module", backbone).to(self.device).eval()
        if self.channels_last:
            self.backbone = self.backbone.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, enabled=self.amp):
            maps = trunk_feature_maps(self.backbone, images, self.spec.last_stage)
        if min(maps.shape[-2:]) < self.spec.min_map:
            side = self.spec.min_map
            raise ValueError(f"layer {self.layer} needs feature maps of at least {side}x{side}, "
                             f"got {tuple(maps.shape[-2:])}: use image_size >= 224")
        return self.spec.pool(maps.float()).flatten(1).cpu()


def _loader(dataset, batch_size: int, num_workers: int, device: torch.device) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=device.type == "cuda", persistent_workers=False)


def extract_in_memory(extractor: FeatureExtractor, dataset: ImageListDataset, batch_size: int = 256,
                      num_workers: int = 0) -> tuple[Tensor, Tensor]:
    """Features and targets of a whole (small) data set, readable images only."""
    features, targets = [], []
    for images, batch_targets, ok in tqdm(_loader(dataset, batch_size, num_workers, extractor.device),
                                          desc=f"features {dataset.name}/{dataset.split}", leave=False):
        features.append(extractor(images)[ok])
        targets.append(torch.as_tensor(batch_targets)[ok])
    return torch.cat(features), torch.cat(targets)


def extract_to_cache(extractor: FeatureExtractor, dataset: ImageListDataset, cache: FeatureCache, batch_size: int,
                     num_workers: int = 0, dtype: str = "float16", chunk_batches: int = 16, rank: int = 0,
                     world_size: int = 1, progress: bool = True) -> CachedFeatures:
    """Fills (or resumes) ``cache`` with the features of ``dataset``; chunks are ``chunk_batches`` batches."""
    chunk_size = batch_size * chunk_batches
    if rank == 0:
        dim = extractor(dataset[0][0].unsqueeze(0)).shape[1]
        cache.prepare(len(dataset), dim, dtype, dataset.targets, chunk_size)
    barrier()
    pending = cache.pending_chunks(rank, world_size)
    if pending:
        features = cache.open_for_writing()
        rows = np.concatenate([np.asarray(cache.chunk_rows(chunk)) for chunk in pending])
        batches = iter(_loader(Subset(dataset, rows.tolist()), batch_size, num_workers, extractor.device))
        bar = tqdm(total=len(rows), desc=f"features {dataset.name}/{dataset.split}", unit="img",
                   disable=not progress, position=rank)
        for chunk in pending:
            chunk_rows = np.asarray(cache.chunk_rows(chunk))
            valid = []
            for start in range(0, len(chunk_rows), batch_size):
                images, _, ok = next(batches)
                features[chunk_rows[start:start + len(images)]] = extractor(images).numpy().astype(features.dtype)
                valid.append(ok.numpy())
                bar.update(len(images))
            cache.write_chunk(features, chunk, chunk_rows, np.concatenate(valid))
        bar.close()
        del features
    barrier()
    if rank == 0 and not cache.complete:
        cache.finalize()
    barrier()
    return cache.load()


@dataclasses.dataclass
class FeatureConfig:
    """How features are extracted and cached (a section of every frozen-feature task config)."""

    layer: str = "res5"
    transform: str = "center_crop"
    image_size: int = 224
    dtype: str = "float16"
    batch_size: int = 64
    num_workers: int = 8
    chunk_batches: int = 16
    amp: bool = True
    channels_last: bool = True
    skip_unreadable: bool = False
    cache_dir: str = ""  # empty: <output_dir>/feature_cache

    def __post_init__(self) -> None:
        for key, choices in (("layer", FEATURE_LAYERS), ("transform", TEST_TRANSFORMS), ("dtype", DTYPES)):
            value = getattr(self, key)
            require_value(value in choices, f"features.{key}", value, f"one of {', '.join(choices)}")
        require_value(self.image_size >= 32, "features.image_size", self.image_size,
                      ">= 32 (a ResNet halves it 5 times)")
        for key, minimum in (("batch_size", 1), ("num_workers", 0), ("chunk_batches", 1)):
            require_value(getattr(self, key) >= minimum, f"features.{key}", getattr(self, key), f">= {minimum}")


def cached_features(loaded: LoadedBackbone, arch: str, dataset_name: str, data_root: str | Path, split: str,
                    config: FeatureConfig, cache_root: str | Path, device: torch.device, rank: int = 0,
                    world_size: int = 1, progress: bool = True, skipped: SkippedImages | None = None) -> CachedFeatures:
    """Features of one data set split: loaded from the cache when the key matches, else extracted (or resumed).

    Images the entry holds as unreadable are added to ``skipped`` (warned about on rank 0); without
    ``skip_unreadable`` they are an error, also when the entry was made by a run that skipped them.
    """
    key = {"weights_sha256": loaded.weights_sha256 or loaded.weights, "arch": arch, "dataset": dataset_name,
           **({"weights_source": loaded.source} if loaded.source else {}),
           **({"stem": loaded.stem} if loaded.stem != "imagenet" else {}),  # random trunks differ only by stem
           "data_root": str(Path(data_root).resolve()), "split": split, "layer": config.layer,
           "transform": config.transform, "image_size": config.image_size, "dtype": config.dtype}
    cache = FeatureCache(cache_root, key)
    dataset = None
    if cache.complete:
        cached = cache.load()
    else:
        dataset = build_dataset(dataset_name, data_root, split,
                                evaluation_transform(config.transform, config.image_size),
                                skip_unreadable=config.skip_unreadable)
        extractor = FeatureExtractor(freeze(loaded.model), config.layer, device, config.amp, config.channels_last)
        cached = extract_to_cache(extractor, dataset, cache, config.batch_size, config.num_workers, config.dtype,
                                  config.chunk_batches, rank, world_size, progress)
    unreadable_rows = np.flatnonzero(~np.asarray(cached.valid))
    if len(unreadable_rows):
        all_paths = (dataset if dataset is not None else build_dataset(dataset_name, data_root, split)).paths
        paths = [all_paths[row] for row in unreadable_rows]
        if not config.skip_unreadable:
            raise UnreadableImageError(f"{dataset_name}/{split}: the feature cache {cache.directory} holds "
                                       f"{len(paths)} unreadable image(s), e.g. {paths[0]}; set "
                                       f"features.skip_unreadable=true to skip them")
        if skipped is not None:
            skipped.add(paths, warn=rank == 0)
    return cached


def main(argv: Sequence[str] | None = None) -> None:
    from core.config import load_config
    from core.distributed import init_distributed, shutdown_distributed
    from core.backbone import load_backbone
    from core.checkpoint_formats import add_checkpoint_arguments
    from transfer.classification.datasets import DATASETS

    parser = argparse.ArgumentParser(prog="python -m transfer.classification.features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="backbone weights (.pth); omit with --random-init")
    parser.add_argument("--random-init", action="store_true", help="randomly initialised trunk (baseline)")
    parser.add_argument("--arch", default="resnet50")
    add_checkpoint_arguments(parser)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("overrides", nargs="*", help="FeatureConfig key=value (layer=res5 dtype=float32 ...)")
    args = parser.parse_intermixed_args(argv)
    config = load_config(FeatureConfig, None, args.overrides)
    context = init_distributed()
    try:
        loaded = load_backbone(args.weights, args.arch, args.random_init, source=args.source,
                               format_name=args.checkpoint_format)
        cached = cached_features(loaded, args.arch, args.dataset, args.data_root, args.split, config, args.cache_dir,
                                 context.device, context.rank, context.world_size, progress=context.is_main,
                                 skipped=SkippedImages())
        if context.is_main:
            print(f"{cached.features.shape[0]} x {cached.features.shape[1]} features "
                  f"({cached.meta.get('num_skipped', 0)} skipped) in {Path(args.cache_dir).resolve()}")
    finally:
        shutdown_distributed()


if __name__ == "__main__":
    main()
