"""The torch loader over a shard folder: webdataset reads the tar files, DataLoader workers decode.

Order: each epoch, rank ``r`` reads its slice of the shuffled shards (``pretrain.shards.epoch_plan``), the
samples pass through a ``webdataset.shuffle`` buffer seeded by (seed, epoch, rank), and consecutive samples
form batches. Augmentations are seeded by (seed, epoch, sample key). So the batches depend only on (seed,
epoch, rank, world size, batch size, buffer size), not on the number of workers: worker ``w`` of ``W`` reads
the same stream and decodes batches ``start_batch + w``, ``start_batch + w + W``, ..., which DataLoader
returns in turn. Resuming at batch ``b`` reads and drops the first ``b`` batches' samples without decoding.
The price of worker-independence is that each worker reads the rank's whole slice (from the page cache
after the first): W times the bytes, none of the decoding.

Robustness: a member that is not a readable image (or a shard cut short) is replaced by the next readable
sample of its batch, with its own augmentation seed, and counted in ``skipped``, as in the folder loader.
"""

from __future__ import annotations

import itertools
import logging
import random
from typing import Callable, Iterator

import torch
import webdataset
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pretrain.data import DECODE_ERRORS, DataError, sample_seed, seeded_randomness
from pretrain.shards import IMAGE_EXTENSIONS, Piece, ShardIndex, epoch_plan, samples_per_rank
from pretrain.signals import ignore_preemption_signals

logger = logging.getLogger(__name__)

# (augmentation seed key, encoded image or None when the member holds no image)
RawSample = tuple[int, bytes | None]


class ShardTwoViewStream(IterableDataset):
    """Yields ``(view1, view2, skipped)`` batches of one epoch of a shard set for one rank."""

    def __init__(self, index: ShardIndex, transform: Callable[[bytes], tuple[torch.Tensor, torch.Tensor]],
                 seed: int, per_device_batch: int, world_size: int, rank: int, shuffle_buffer: int) -> None:
        super().__init__()
        self.index = index
        self.transform = transform
        self.seed = seed
        self.per_device_batch = per_device_batch
        self.world_size = world_size
        self.rank = rank
        self.shuffle_buffer = shuffle_buffer
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        """As the folder loader: the last, smaller batch is kept unless it would hold one sample."""
        full, remainder = divmod(samples_per_rank(self.index.total, self.world_size), self.per_device_batch)
        return full + (1 if remainder > 1 else 0)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Selects the epoch to iterate and the first batch to yield (for mid-epoch resume)."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} outside [0, {self.batches_per_epoch}]")
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def raw_samples(self) -> Iterator[RawSample]:
        """This rank's samples of the epoch in training order (shuffled), still encoded."""
        plan = epoch_plan(self.index, self.seed, self.epoch, self.world_size, self.rank)
        stream = itertools.chain.from_iterable(self._read(piece) for piece in plan)
        rng_seed = sample_seed(self.seed, self.epoch, self.rank)
        rng = random.Random(rng_seed)
        return webdataset.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng)(stream)

    def _read(self, piece: Piece) -> Iterator[RawSample]:
        path = self.index.path(piece.shard)
        errors: list[Exception] = []

        def stop_at_error(error: Exception) -> bool:
            errors.append(error)
            return False

        members = webdataset.tarfile_samples([{"url": str(path)}], handler=stop_at_error)
        read = 0
        for sample in itertools.islice(members, piece.skip, piece.skip + piece.take):
            yield _raw(sample, fallback_key=self.index.total + read)
            read += 1
        if read < piece.take:  # a cut-short shard: keep the batch count, the placeholders count as unreadable
            reason = f"{type(errors[0]).__name__}: {errors[0]}" if errors else "fewer members than the index says"
            logger.warning("shard %s ended after %d of %d expected samples (%s)", path, piece.skip + read,
                           piece.skip + piece.take, reason)
            for missing in range(read, piece.take):
                yield self.index.total + missing, None

    def raw_batches(self) -> Iterator[tuple[int, list[RawSample]]]:
        """(batch number, samples) from ``start_batch`` on; earlier batches are read but not returned."""
        samples = self.raw_samples()
        for number in range(self.batches_per_epoch):
            batch = list(itertools.islice(samples, self.per_device_batch))
            if number >= self.start_batch:
                yield number, batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        for number, batch in self.raw_batches():
            if (number - self.start_batch) % workers == worker_id:
                yield self._decode_batch(batch)

    def _decode_batch(self, batch: list[RawSample]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        views1, views2, skipped = [], [], []
        for slot, (key, _blob) in enumerate(batch):
            for attempt in range(len(batch)):
                _other_key, blob = batch[(slot + attempt) % len(batch)]
                try:
                    if blob is None:
                        raise DataError("shard member without an image")
                    with seeded_randomness(sample_seed(self.seed, self.epoch, key)):
                        view1, view2 = self.transform(blob)
                    break
                except DECODE_ERRORS as error:
                    if attempt == 0:
                        logger.warning("skipping unreadable shard sample %d (%s: %s)", key, type(error).__name__,
                                       error)
            else:
                raise DataError(f"no readable image in a batch of {len(batch)} samples from {self.index.root}; "
                                f"are the shards corrupt?")
            views1.append(view1)
            views2.append(view2)
            skipped.append(attempt)
        return torch.stack(views1), torch.stack(views2), torch.tensor(skipped)


def _raw(sample: dict, fallback_key: int) -> RawSample:
    key = sample.get("__key__", "")
    number = int(key) if key.isdigit() else fallback_key
    blob = next((sample[extension] for extension in IMAGE_EXTENSIONS if extension in sample), None)
    return number, blob


def build_shard_loader(stream: ShardTwoViewStream, workers: int, pin_memory: bool) -> DataLoader:
    """A DataLoader over ``stream``'s batches; workers restart each epoch so they see ``set_epoch``."""
    return DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      prefetch_factor=4 if workers > 0 else None,
                      worker_init_fn=ignore_preemption_signals if workers > 0 else None)
