"""Training data: layout detection, clear errors, resumable sharding, per-sample deterministic augmentation."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.data import DataLoader

from pretrain.data import (DataError, EpochBatchSampler, TwoViewDataset, build_loader, detect_layout, list_images,
                           seeded_randomness)
from pretrain.transforms import BarlowTwinsTransform


class Sized:
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def test_imagefolder_layout_lists_images_of_every_class(image_folder):
    (image_folder / "notes.txt").write_text("not an image")
    paths, layout = list_images(image_folder)
    assert layout == "imagefolder" == detect_layout(image_folder)
    assert len(paths) == 12
    assert {path.split("/")[-2] for path in paths} == {"circle", "square"}


def test_flat_layout_lists_top_level_images_only(tmp_path, write_images):
    write_images(tmp_path / "photos", 3)
    (tmp_path / "photos" / "readme.md").write_text("x")
    (tmp_path / "photos" / "empty_subfolder").mkdir()
    paths, layout = list_images(tmp_path / "photos")
    assert layout == "flat"
    assert [path.rsplit("/", 1)[-1] for path in paths] == ["img_000.jpg", "img_001.jpg", "img_002.jpg"]


def test_missing_and_empty_folders_are_errors_naming_the_path(tmp_path):
    with pytest.raises(DataError, match=f"data folder not found: {tmp_path / 'nope'}"):
        list_images(tmp_path / "nope")
    (tmp_path / "empty" / "class_without_images").mkdir(parents=True)
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'} holds no images"):
        list_images(tmp_path / "empty")


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


def test_augmentations_depend_only_on_seed_epoch_and_index(image_folder):
    paths, _ = list_images(image_folder)
    dataset = TwoViewDataset(paths, BarlowTwinsTransform(size=32), seed=7)
    first = dataset[(2, 5)]
    dataset[(0, 1)]  # other samples in between change nothing
    torch.rand(3)
    again = dataset[(2, 5)]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1]) and first[2] == 0
    assert not torch.equal(first[0], dataset[(3, 5)][0])  # another epoch, other augmentations
    assert not torch.equal(first[0], first[1])  # the two views differ


def test_worker_processes_produce_the_same_batches(image_folder):
    paths, _ = list_images(image_folder)
    dataset = TwoViewDataset(paths, BarlowTwinsTransform(size=32), seed=7)

    def epoch_batches(workers: int) -> list[torch.Tensor]:
        sampler = EpochBatchSampler(dataset, 4, 1, 0, seed=7)
        sampler.set_epoch(1)
        return [view1 for view1, _view2, _skipped in build_loader(dataset, sampler, workers, pin_memory=False)]

    for in_process, in_workers in zip(epoch_batches(0), epoch_batches(2)):
        assert torch.equal(in_process, in_workers)


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


def test_unreadable_image_is_replaced_by_the_next_and_counted(tmp_path, write_images):
    write_images(tmp_path / "flat", 3)
    (tmp_path / "flat" / "img_001.jpg").write_bytes(b"\xff\xd8 truncated")
    paths, _ = list_images(tmp_path / "flat")
    dataset = TwoViewDataset(paths, BarlowTwinsTransform(size=32), seed=0)
    assert dataset[(0, 0)][2] == 0
    assert dataset[(0, 1)][2] == 1
    batch = next(iter(DataLoader(dataset, batch_size=3, sampler=[(0, 0), (0, 1), (0, 2)])))
    assert batch[2].tolist() == [0, 1, 0]


def test_a_folder_of_unreadable_files_is_an_error(tmp_path):
    (tmp_path / "flat").mkdir()
    for number in range(3):
        (tmp_path / "flat" / f"bad_{number}.png").write_bytes(b"garbage")
    paths, _ = list_images(tmp_path / "flat")
    with pytest.raises(DataError, match="no readable image"):
        TwoViewDataset(paths, BarlowTwinsTransform(size=32), seed=0)[(0, 0)]
