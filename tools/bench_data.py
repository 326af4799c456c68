"""The data-path parts of the pretraining benchmark: two-view chains on one core, and each loader's rate.

Per core: each chain turns encoded JPEGs into two views on ONE core, decoding included, and is timed by the
CPU time of the whole process (robust to other jobs sharing the machine; it includes DALI's own thread).
The chains alternate image by image (DALI: batch by batch), and per-round rates and their median are kept.
Per loader: images/s (wall clock) of whole epochs of each loader with its worker processes, no training.
"""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from PIL import Image

from pretrain import color_kernels
from pretrain.decode_views import DecodingTwoViewTransform
from pretrain.transforms import BarlowTwinsTransform


@dataclass
class Rate:
    """Median images/s over rounds, and each round's figure."""

    median: float
    rounds: list[float]


def pil_chain(transform: Callable) -> Callable[[bytes], object]:
    """Decode with PIL as an ImageFolder loader does, then ``transform``."""
    return lambda blob: transform(Image.open(io.BytesIO(blob)).convert("RGB"))


def per_core_chains(official_transform: Callable, size: int) -> dict[str, Callable[[list[bytes]], None]]:
    """Name -> function that makes both views of every JPEG in a list (one after the other)."""
    chains = {
        "official Transform (PIL)": pil_chain(official_transform),
        "BarlowTwinsTransform on PIL decode (before)": pil_chain(BarlowTwinsTransform(size, fused=False)),
        "torch loader: decode what you crop, torch colour ops": DecodingTwoViewTransform(
            size, views=BarlowTwinsTransform(size, fused=False)),
    }
    if color_kernels.available():
        chains["torch loader: decode what you crop, fused colour kernels"] = DecodingTwoViewTransform(
            size, views=BarlowTwinsTransform(size, fused=True))
    result = {name: (lambda blobs, chain=chain: [chain(blob) for blob in blobs]) for name, chain in chains.items()}
    dali_batch = _dali_chain(size)
    if dali_batch is not None:
        result["DALI CPU backend, 1 thread"] = dali_batch
    return result


def _dali_chain(size: int) -> Callable[[list[bytes]], None] | None:
    try:
        from pretrain.dali_loader import DaliTwoViewLoader, Slot
    except ImportError:
        return None

    class _NoSource:
        batches_per_epoch = 1

        def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
            pass

    loaders: dict[int, DaliTwoViewLoader] = {}

    def run(blobs: list[bytes]) -> None:
        if len(blobs) not in loaders:
            loaders[len(blobs)] = DaliTwoViewLoader(_NoSource(), size, 1, torch.device("cpu"), torch.float32, 0,
                                                    len(blobs))
        loaders[len(blobs)].make_batch([Slot(number, blob, 0) for number, blob in enumerate(blobs)])

    return run


def bench_per_core(chains: dict[str, Callable[[list[bytes]], None]], blobs: list[bytes], rounds: int,
                   group: int = 16) -> dict[str, Rate]:
    """Images per CPU-second of the process for each chain; chains alternate every ``group`` images."""
    torch.set_num_threads(1)
    groups = [blobs[start:start + group] for start in range(0, len(blobs), group)]
    for chain in chains.values():
        chain(groups[0])  # warm-up (DALI builds its pipeline, allocators grow)
    rates: dict[str, list[float]] = {name: [] for name in chains}
    for _ in range(rounds):
        seconds = dict.fromkeys(chains, 0.0)
        for number, images in enumerate(groups):
            names = list(chains) if number % 2 == 0 else list(reversed(chains))
            for name in names:
                start = time.process_time()
                chains[name](images)
                seconds[name] += time.process_time() - start
        for name in chains:
            rates[name].append(len(blobs) / seconds[name])
    return {name: Rate(statistics.median(values), values) for name, values in rates.items()}


def bench_loader(make_batches: Callable[[], Iterable], epochs: int) -> float:
    """Wall-clock images/s over ``epochs`` whole epochs, from creating the iterator (worker start-up
    included) to its end: timing part of an epoch would credit the batches workers prefetched untimed."""
    images, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in make_batches():
            images += len(batch[0])
    return images / (time.perf_counter() - start)


