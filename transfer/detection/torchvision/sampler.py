"""Endless training batches: a seeded shuffle shared by all processes, sharded by rank, and grouped
by aspect ratio (as detectron2's ``TrainingSampler`` + ``AspectRatioGroupedDataset``) so that padded
batches of wide and tall images do not waste memory.

The stream is a function of the seed alone, and batch ``i`` is the one trained on at iteration ``i``: a
run resumed at iteration ``i`` regenerates the stream (indices only, no image is read) and starts there,
so it trains on exactly the batches an uninterrupted run would. Each index comes as a key
``(iteration, index)`` so that ``core.sampling.SeededSamples`` seeds the sample's random flip by both.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from core.sampling import SampleKey


class GroupedInfiniteBatchSampler(torch.utils.data.Sampler[list[SampleKey]]):
    """Yields lists of ``batch_size`` keys ``(iteration, dataset index)`` forever, from ``start_batch`` on.

    Every process draws the same permutation of ``range(size)`` per pass and keeps every
    ``world_size``-th index from ``rank``; indices are buffered per group (``group_of(index)``) and a
    batch is emitted when a group's buffer is full.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 group_of: Callable[[int], object] | None = None, start_batch: int = 0) -> None:
        if size < world_size:
            raise ValueError(f"cannot shard {size} training images over {world_size} processes")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.group_of = group_of or (lambda index: None)
        self.start_batch = start_batch

    def _indices(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            permutation = torch.randperm(self.size, generator=generator).tolist()
            yield from permutation[self.rank::self.world_size]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        buffers: dict[object, list[int]] = {}
        iteration = 0
        for index in self._indices():
            buffer = buffers.setdefault(self.group_of(index), [])
            buffer.append(index)
            if len(buffer) == self.batch_size:
                if iteration >= self.start_batch:
                    yield [(iteration, buffered) for buffered in buffer]
                iteration += 1
                buffer.clear()
