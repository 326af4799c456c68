"""Sharded training images: tar files in webdataset layout plus ``shards.json``, and each epoch's reading plan.

A shard folder holds ``<prefix>-000000.tar``, ... and ``shards.json`` (written last, atomically, so a folder
with an index is complete). Each sample is ``<key>.<ext>`` with the original image bytes (``jpg``, ``png``,
...) and, for ImageFolder sources, ``<key>.cls`` with the class index as text. Keys are the sample's
position in the whole set, zero-padded, so they give per-sample augmentation seeds.

Each epoch (``epoch_plan``) the shards are shuffled by (seed, epoch); their samples, concatenated, form the
epoch's stream, and rank ``r`` reads the ``r``-th contiguous slice of it (``ceil(total / world_size)``
samples, wrapping around to pad like ``DistributedSampler``), so every rank reads about 1/world of the bytes
and has the same number of batches.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INDEX_FILE = "shards.json"
INDEX_FORMAT = "barlowtwins-shards"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp")


class ShardIndexError(ValueError):
    """``shards.json`` is missing, malformed, or does not match the shard files."""


@dataclass(frozen=True)
class Shard:
    """One tar file of the set, with the number of samples it holds."""

    name: str
    count: int


@dataclass(frozen=True)
class ShardIndex:
    """The content of ``shards.json``: shards in writing order, class names (empty for flat sources)."""

    root: Path
    shards: tuple[Shard, ...]
    classes: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(shard.count for shard in self.shards)

    def path(self, shard: Shard) -> Path:
        return self.root / shard.name


@dataclass(frozen=True)
class Piece:
    """Samples ``skip`` .. ``skip + take - 1`` (in file order) of one shard."""

    shard: Shard
    skip: int
    take: int


def is_shard_folder(root: str | Path) -> bool:
    return (Path(root) / INDEX_FILE).is_file()


def index_dict(shards: list[Shard], classes: list[str], source: str) -> dict:
    """The JSON object ``shards.json`` holds."""
    return {"format": INDEX_FORMAT, "version": 1, "source": source, "count": sum(s.count for s in shards),
            "classes": classes, "shards": [{"name": shard.name, "count": shard.count} for shard in shards]}


def read_index(root: str | Path) -> ShardIndex:
    """Reads and checks ``root/shards.json``; every listed shard must exist."""
    path = Path(root) / INDEX_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ShardIndexError(f"shard index not found: {path} (write shards with tools/make_shards.py)") from error
    except json.JSONDecodeError as error:
        raise ShardIndexError(f"shard index {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        raise ShardIndexError(f"{path} is not a shard index (expected \"format\": \"{INDEX_FORMAT}\")")
    try:
        shards = tuple(Shard(str(item["name"]), int(item["count"])) for item in data["shards"])
        classes = tuple(str(name) for name in data.get("classes", []))
    except (KeyError, TypeError, ValueError) as error:
        raise ShardIndexError(f"{path}: malformed 'shards' entry ({type(error).__name__}: {error})") from error
    missing = [shard.name for shard in shards if not (Path(root) / shard.name).is_file()]
    if missing:
        raise ShardIndexError(f"{path} lists shard(s) missing from {root}: {', '.join(missing[:5])}")
    if not shards or sum(shard.count for shard in shards) == 0:
        raise ShardIndexError(f"{path} lists no samples")
    return ShardIndex(Path(root), shards, classes)


def samples_per_rank(total: int, world_size: int) -> int:
    return math.ceil(total / world_size)


def epoch_plan(index: ShardIndex, seed: int, epoch: int, world_size: int, rank: int) -> list[Piece]:
    """The pieces of shards rank ``rank`` reads in ``epoch``, in reading order (see the module docstring)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(index.shards))
    shards = [index.shards[position] for position in order]
    per_rank = samples_per_rank(index.total, world_size)
    start = rank * per_rank
    pieces: list[Piece] = []
    while per_rank > 0:  # at most two passes over the stream: the slice may wrap around its end
        offset = 0
        for shard in shards:
            begin, end = max(start, offset), min(start + per_rank, offset + shard.count)
            if begin < end:
                pieces.append(Piece(shard, begin - offset, end - begin))
                per_rank -= end - begin
                start = end
            offset += shard.count
        start -= index.total
    return pieces
