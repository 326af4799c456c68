"""The DALI loader (``data.loader: dali``): Python decides what to read and draws the augmentations, DALI
decodes and augments (nvJPEG and CUDA kernels on a GPU; its CPU backend without one).

Order and resumption are the torch loader's: folders follow ``EpochBatchSampler`` (DistributedSampler order
by seed + epoch, every world_size-th sample for this rank), shard sets follow ``ShardTwoViewStream``'s
reading plan and shuffle buffer (read with webdataset). Each sample's parameters are drawn by
``BarlowTwinsTransform.draw_view`` under the sample's seed (seed, epoch, index or shard key), so the views
depend only on the sample, and resuming at batch ``b`` yields exactly the batches ``b, b+1, ...``.

Unreadable images never stop an epoch: a file whose header cannot be read is replaced before DALI sees it
(as in the torch loaders: the next file of a folder, the next sample of a shard batch) and counted. If DALI
still fails on a batch (a corrupt body), that batch is made by the CPU path (``DecodingTwoViewTransform``,
same parameters) with the unreadable images replaced and counted, and the pipeline is rebuilt.

Output: channels_last (N, 3, size, size) views on the training device, float32 or bfloat16 (DALI has no
bfloat16 type: the cast happens on the device), prepared one batch ahead in a background thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from pretrain.data import (DECODE_ERRORS, MAX_REPLACEMENT_ATTEMPTS, DataError, EpochBatchSampler, read_bytes,
                           sample_seed, seeded_randomness)
from pretrain.dali_pipeline import VIEW_INPUTS, build_pipeline
from pretrain.decode_views import DecodingTwoViewTransform
from pretrain.jpeg_decode import image_size
from pretrain.shard_loader import ShardTwoViewStream
from pretrain.transforms import VIEW_RECIPES, BarlowTwinsTransform, ViewParams

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class Slot:
    """One sample of a batch: its augmentation seed, its readable bytes, how many images it replaced."""

    seed: int
    blob: bytes
    skipped: int


class FolderSource:
    """Batches of a folder in ``EpochBatchSampler`` order, unreadable headers replaced by the next file."""

    def __init__(self, paths: list[str], sampler: EpochBatchSampler, seed: int) -> None:
        self.paths, self.sampler, self.seed = paths, sampler, seed
        self._reported: set[str] = set()
        self.batches_per_epoch = sampler.batches_per_epoch
        self.set_epoch = sampler.set_epoch

    def __iter__(self) -> Iterator[list[Slot]]:
        for keys in self.sampler:
            yield [self._slot(epoch, index) for epoch, index in keys]

    def _slot(self, epoch: int, index: int) -> Slot:
        for attempt in range(min(MAX_REPLACEMENT_ATTEMPTS, len(self.paths))):
            path = self.paths[(index + attempt) % len(self.paths)]
            try:
                blob = read_bytes(path)
                image_size(blob)
                return Slot(sample_seed(self.seed, epoch, index), blob, attempt)
            except DECODE_ERRORS as error:
                if path not in self._reported:  # once per file, as the torch loader
                    self._reported.add(path)
                    logger.warning("skipping unreadable image %s (%s: %s)", path, type(error).__name__, error)
        raise DataError(f"no readable image among {MAX_REPLACEMENT_ATTEMPTS} consecutive files starting at "
                        f"{self.paths[index]}; is the data folder corrupt?")


class ShardSource:
    """Batches of a shard set in ``ShardTwoViewStream`` order, unreadable members replaced within the batch."""

    def __init__(self, stream: ShardTwoViewStream) -> None:
        self.stream = stream
        self.batches_per_epoch = stream.batches_per_epoch
        self.set_epoch = stream.set_epoch

    def __iter__(self) -> Iterator[list[Slot]]:
        for _number, samples in self.stream.raw_batches():
            readable = [_readable(blob) for _key, blob in samples]
            slots = []
            for position, (key, _blob) in enumerate(samples):
                replacement = next((attempt for attempt in range(len(samples))
                                    if readable[(position + attempt) % len(samples)]), None)
                if replacement is None:
                    raise DataError(f"no readable image in a batch of {len(samples)} samples from "
                                    f"{self.stream.index.root}; are the shards corrupt?")
                blob = samples[(position + replacement) % len(samples)][1]
                slots.append(Slot(sample_seed(self.stream.seed, self.stream.epoch, key), blob, replacement))
            yield slots


def _readable(blob: bytes | None) -> bool:
    if blob is None:
        return False
    try:
        image_size(blob)
        return True
    except DECODE_ERRORS:
        return False


class DaliTwoViewLoader:
    """Iterates a source's batches as ``(view1, view2, skipped)`` made by the DALI pipeline."""

    def __init__(self, source: FolderSource | ShardSource, size: int, threads: int, device: torch.device,
                 dtype: torch.dtype, seed: int, per_device_batch: int) -> None:
        self.source, self.size, self.threads, self.device, self.dtype = source, size, threads, device, dtype
        self.seed, self.per_device_batch = seed, per_device_batch
        self.views = BarlowTwinsTransform(size)
        self.fallback = DecodingTwoViewTransform(size)
        self.batches_per_epoch = source.batches_per_epoch
        self.pipeline = self._build()

    def _build(self):
        device_id = (self.device.index or 0) if self.device.type == "cuda" else None
        return build_pipeline(self.per_device_batch, self.size, self.threads, device_id, self.seed)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.source.set_epoch(epoch, start_batch)

    def __iter__(self) -> Iterator[Batch]:
        """Batches made one ahead in a background thread (DALI and file reading release the GIL)."""
        ready: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        def produce() -> None:
            try:
                for slots in self.source:
                    if stop.is_set():
                        return
                    ready.put(self.make_batch(slots))
                ready.put(None)
            except BaseException as error:  # re-raised in the consumer
                ready.put(error)

        thread = threading.Thread(target=produce, name="dali-loader", daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass

    def make_batch(self, slots: list[Slot]) -> Batch:
        """The views of one batch: DALI, or the CPU path for a batch DALI cannot decode."""
        params = [self.draw_params(slot) for slot in slots]
        skipped = torch.tensor([slot.skipped for slot in slots])
        try:
            view1, view2 = self._run_dali(slots, params)
        except RuntimeError as error:
            logger.warning("DALI failed on a batch (%s); making it on the CPU and rebuilding the pipeline", error)
            self.pipeline = self._build()
            view1, view2, skipped = self._cpu_batch(slots)
        return self._to_output(view1), self._to_output(view2), skipped

    def draw_params(self, slot: Slot) -> list[ViewParams]:
        """Both views' parameters for a sample: ``BarlowTwinsTransform.draw_view`` under the sample's seed."""
        height, width = image_size(slot.blob)
        with seeded_randomness(slot.seed):
            return [self.views.draw_view(height, width, recipe) for recipe in VIEW_RECIPES]

    def _run_dali(self, slots: list[Slot], params: list[list[ViewParams]]) -> tuple[torch.Tensor, torch.Tensor]:
        self.pipeline.feed_input("encoded", [np.frombuffer(slot.blob, dtype=np.uint8) for slot in slots])
        for view in (1, 2):
            for name, values in view_inputs([sample[view - 1] for sample in params]).items():
                self.pipeline.feed_input(f"{name}{view}", values)
        outputs = self.pipeline.run()
        return tuple(_to_torch(output, self.device) for output in outputs)

    def _cpu_batch(self, slots: list[Slot]) -> Batch:
        views1, views2, skipped = [], [], []
        for position, slot in enumerate(slots):
            for attempt in range(len(slots)):
                blob = slots[(position + attempt) % len(slots)].blob
                try:
                    with seeded_randomness(slot.seed):
                        view1, view2 = self.fallback(blob)
                    break
                except DECODE_ERRORS as error:
                    if attempt == 0:
                        logger.warning("skipping an image DALI and the CPU decoder cannot read (%s)", error)
            else:
                raise DataError(f"no readable image in a batch of {len(slots)} samples")
            views1.append(view1.permute(1, 2, 0))
            views2.append(view2.permute(1, 2, 0))
            skipped.append(slot.skipped + attempt)
        return (torch.stack(views1).to(self.device), torch.stack(views2).to(self.device), torch.tensor(skipped))

    def _to_output(self, views: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) -> channels_last (N, 3, H, W) in the output dtype, without a layout copy."""
        return views.to(self.dtype).permute(0, 3, 1, 2)


def view_inputs(params: list[ViewParams]) -> dict[str, list[np.ndarray]]:
    """The pipeline's per-sample inputs (``dali_pipeline.VIEW_INPUTS``) for one view of a batch."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in VIEW_INPUTS}
    for view in params:
        top, left, height, width = view.box
        order, factors = view.jitter if view.jitter is not None else ((), (0.0, 0.0, 0.0, 0.0))
        sigma = view.blur_sigma or 0.0
        columns["anchor"].append(np.array([left, top], dtype=np.int32))  # image_slice: (x, y), then (w, h)
        columns["shape"].append(np.array([width, height], dtype=np.int32))
        columns["flip"].append(np.array(int(view.flip), dtype=np.int32))
        columns["ops"].append(np.array(list(order) + [-1] * (4 - len(order)), dtype=np.int32))
        columns["factors"].append(np.array(factors, dtype=np.float32))
        columns["gray"].append(np.array(view.grayscale))
        columns["blur"].append(np.array(view.blur_sigma is not None))
        columns["sigma"].append(np.array(max(sigma, 0.1), dtype=np.float32))
        columns["window"].append(np.array(2 * int(np.ceil(3 * sigma)) + 1, dtype=np.int32))
        columns["solarize"].append(np.array(view.solarize))
    return columns


def _to_torch(output, device: torch.device) -> torch.Tensor:
    """A DALI output batch as a torch (N, H, W, 3) tensor on ``device`` (a copy: DALI reuses its buffers)."""
    tensor = output.as_tensor()
    if device.type != "cuda":
        return torch.from_numpy(np.array(tensor))
    from nvidia.dali.plugin.pytorch import feed_ndarray

    result = torch.empty(tensor.shape(), dtype=torch.float32, device=device)
    stream = torch.cuda.current_stream(device)
    feed_ndarray(tensor, result, cuda_stream=stream)
    stream.synchronize()
    return result

