"""Reproducible data order and augmentation: epoch batches by (seed, epoch), augmentation by (seed, epoch, index)."""

from __future__ import annotations

import random

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from core.sampling import EpochBatchSampler, SeededSamples, sample_seed, seeded_randomness


class Sized:
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def batches_of(sampler: EpochBatchSampler, epoch: int, start_batch: int = 0) -> list[list[int]]:
    sampler.set_epoch(epoch, start_batch)
    return [[index for batch_epoch, index in batch if batch_epoch == epoch] for batch in sampler]


def test_two_ranks_cover_the_dataset_once_per_epoch_in_a_seeded_order():
    ranks = [EpochBatchSampler(Sized(12), per_device_batch=2, world_size=2, rank=rank, seed=5) for rank in (0, 1)]
    epoch0 = [batches_of(sampler, 0) for sampler in ranks]
    assert [len(batches) for batches in epoch0] == [3, 3]
    assert sorted(index for batches in epoch0 for batch in batches for index in batch) == list(range(12))
    assert epoch0 == [batches_of(sampler, 0) for sampler in ranks]  # same epoch, same order
    assert epoch0 != [batches_of(sampler, 1) for sampler in ranks]  # another epoch, another order
    assert epoch0 != [batches_of(EpochBatchSampler(Sized(12), 2, 2, rank, seed=6), 0) for rank in (0, 1)]


def test_uneven_dataset_is_padded_so_every_rank_has_the_same_batches():
    ranks = [EpochBatchSampler(Sized(11), per_device_batch=3, world_size=2, rank=rank, seed=0) for rank in (0, 1)]
    epoch = [batches_of(sampler, 0) for sampler in ranks]
    assert [[len(batch) for batch in batches] for batches in epoch] == [[3, 3], [3, 3]]
    assert set(index for batches in epoch for batch in batches for index in batch) == set(range(11))


def test_last_batch_is_kept_unless_it_has_one_sample():
    assert EpochBatchSampler(Sized(10), 4, 1, 0, seed=0).batches_per_epoch == 3  # 4, 4, 2
    assert EpochBatchSampler(Sized(9), 4, 1, 0, seed=0).batches_per_epoch == 2  # 4, 4 (+1 dropped)
    assert [len(batch) for batch in batches_of(EpochBatchSampler(Sized(10), 4, 1, 0, seed=0), 0)] == [4, 4, 2]


def test_resuming_at_a_batch_yields_the_rest_of_the_epoch():
    sampler = EpochBatchSampler(Sized(20), 3, 1, 0, seed=1)
    full = batches_of(sampler, 4)
    assert len(full) == 7 and sorted(index for batch in full for index in batch) == list(range(20))
    assert batches_of(sampler, 4, start_batch=5) == full[5:]
    assert len(sampler) == len(full) - 5


def test_seeded_randomness_leaves_the_global_generators_alone():
    torch.manual_seed(0)
    random.seed(0)
    expected_torch, expected_python = torch.rand(2), random.random()
    torch.manual_seed(0)
    random.seed(0)
    with seeded_randomness(123):
        torch.rand(5)
        random.random()
    assert torch.equal(torch.rand(2), expected_torch) and random.random() == expected_python


class RandomCrops(Dataset):
    """Random crops and flips of one fixed image, drawn from the global generators as torchvision does."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        pixels = (torch.rand(3, 24, 24, generator=generator) * 255).to(torch.uint8)
        self.image = transforms.functional.to_pil_image(pixels)
        self.transform = transforms.Compose([transforms.RandomResizedCrop(16), transforms.RandomHorizontalFlip(),
                                             transforms.PILToTensor()])

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.image)


def test_seeded_samples_depend_only_on_seed_epoch_and_index():
    samples = SeededSamples(RandomCrops(), seed=3)
    first = samples[(2, 5)]
    torch.rand(7)
    random.random()
    samples[(0, 1)]  # other samples and global draws in between change nothing
    assert torch.equal(samples[(2, 5)], first)
    assert not torch.equal(samples[(3, 5)], first) or not torch.equal(samples[(4, 5)], first)  # other epochs
    assert any(not torch.equal(SeededSamples(RandomCrops(), seed=4)[(2, index)], samples[(2, index)])
               for index in range(5))  # another seed, other augmentations
    assert sample_seed(3, 2, 5) != sample_seed(3, 5, 2)


def test_seeded_samples_are_the_same_in_worker_processes_and_after_a_resume():
    samples = SeededSamples(RandomCrops(), seed=1)

    def epoch(workers: int, start_batch: int = 0) -> list[torch.Tensor]:
        sampler = EpochBatchSampler(samples, 3, 1, 0, seed=1)
        sampler.set_epoch(2, start_batch)
        return list(DataLoader(samples, batch_sampler=sampler, num_workers=workers))

    in_process = epoch(0)
    assert [len(batch) for batch in in_process] == [3, 3, 3]  # the last, single sample dropped
    for ours, theirs in zip(in_process, epoch(2)):
        assert torch.equal(ours, theirs)
    torch.manual_seed(123)  # a fresh process after an interruption: other global generator state
    for ours, resumed in zip(in_process[2:], epoch(0, start_batch=2)):
        assert torch.equal(ours, resumed)
