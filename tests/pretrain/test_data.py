"""Training data: layout detection, clear errors, per-sample deterministic augmentation.

The epoch sampler and the seeding helpers are tested in tests/core/test_sampling.py."""

from __future__ import annotations


import pytest
import torch
from torch.utils.data import DataLoader

from core.sampling import EpochBatchSampler
from pretrain.data import DataError, TwoViewDataset, build_loader, detect_layout, list_images
from pretrain.transforms import BarlowTwinsTransform


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
