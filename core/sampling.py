"""Reproducible data order and augmentation: a pure function of (seed, epoch or iteration, sample index).

Every trainer that resumes from a checkpoint (pretraining, linear / semi-supervised classification,
torchvision detection) draws its randomness from here instead of the global generators, whose state
is not checkpointed and which each DataLoader worker seeds on its own:

* ``EpochBatchSampler``: the batches of one epoch in ``DistributedSampler``'s seeded order, as
  ``(epoch, index)`` keys, startable at any batch;
* ``SeededSamples``: a dataset addressed by such keys whose random transform runs under a generator
  seeded by ``sample_seed(seed, epoch, index)``, so a sample is augmented identically in any worker
  and after any resume.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator, Sized

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

# A sample is addressed by (epoch or iteration, index) so that its augmentation seed is known in any worker.
SampleKey = tuple[int, int]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends only on (seed, epoch, index), mixed so neighbouring keys are unrelated."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


@contextlib.contextmanager
def seeded_randomness(seed: int) -> Iterator[None]:
    """Seeds torch's CPU generator and Python's ``random`` for the block, then restores both.

    Only the CPU generator: ``torch.manual_seed`` would also queue seeds for every accelerator backend,
    which costs ~0.5 ms, as much as a tenth of a sample's decoding and augmentation.
    """
    python_state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)


class SeededSamples(Dataset):
    """``dataset[index]`` for key ``(epoch, index)``, computed under ``seeded_randomness(sample_seed(...))``.

    Wraps any map-style dataset whose random transform draws from torch's or Python's generator
    (torchvision transforms do): its output becomes a function of (seed, epoch, index) alone.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> Any:
        epoch, index = key
        with seeded_randomness(sample_seed(self.seed, epoch, index)):
            return self.dataset[index]


class EpochBatchSampler(Sampler[list[SampleKey]]):
    """Per-process batches of one epoch, resumable at any batch without touching the skipped ones.

    The order is ``DistributedSampler``'s (shuffle seeded by seed + epoch, padded to a multiple of the
    world size, every ``world_size``-th index for this rank), cut into batches of ``per_device_batch``.
    As in the official code the last, smaller batch is kept, unless it would hold a single sample
    (BatchNorm cannot normalise one sample), in which case it is dropped.
    """

    def __init__(self, dataset: Sized, per_device_batch: int, world_size: int, rank: int, seed: int) -> None:
        super().__init__()
        self.order = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.per_device_batch = per_device_batch
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        full, remainder = divmod(self.order.num_samples, self.per_device_batch)
        return full + (1 if remainder > 1 else 0)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Selects the epoch to iterate and the first batch to yield (for mid-epoch resume)."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} outside [0, {self.batches_per_epoch}]")
        self.order.set_epoch(epoch)
        self.epoch = epoch
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[list[SampleKey]]:
        indices = list(self.order)
        for batch_number in range(self.start_batch, self.batches_per_epoch):
            batch = indices[batch_number * self.per_device_batch:(batch_number + 1) * self.per_device_batch]
            yield [(self.epoch, index) for index in batch]

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch
