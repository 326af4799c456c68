"""CIFAR pickle batches and STL-10 binaries: hand-built files in the documented byte layouts."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from core.image_arrays import ArrayDatasetError, find_array_dataset, load_array_split


def _pickle(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _cifar10(root: Path, images: np.ndarray, labels: list[int]) -> Path:
    """A CIFAR-10 folder whose every training batch and the test batch hold ``images`` (N, 3072 rows)."""
    folder = root / "cifar-10-batches-py"
    for name in [f"data_batch_{n}" for n in range(1, 6)] + ["test_batch"]:
        _pickle({b"data": images, b"labels": labels, b"batch_label": b"x"}, folder / name)
    _pickle({b"label_names": [b"airplane", b"automobile"]}, folder / "batches.meta")
    return folder


def test_cifar_rows_are_red_then_green_then_blue_planes(tmp_path):
    row = np.zeros(3072, dtype=np.uint8)
    row[0] = 10           # red of pixel (0, 0)
    row[1024 + 33] = 20   # green of pixel (1, 1)
    row[2048 + 1023] = 30  # blue of pixel (31, 31)
    _cifar10(tmp_path, row[None], [1])
    images = load_array_split(tmp_path, "train")
    assert len(images) == 5 and images.labels.tolist() == [1] * 5
    pixels = np.asarray(images[0])
    assert pixels.shape == (32, 32, 3)
    assert pixels[0, 0, 0] == 10 and pixels[1, 1, 1] == 20 and pixels[31, 31, 2] == 30
    assert int(pixels.sum()) == 60
    assert images.classes == ("airplane", "automobile")
    assert len(load_array_split(tmp_path / "cifar-10-batches-py", "test")) == 1


class _RunsCode:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def test_cifar_batch_that_would_run_code_is_refused(tmp_path):
    folder = _cifar10(tmp_path, np.zeros((1, 3072), np.uint8), [0])
    _pickle({b"data": _RunsCode(), b"labels": [0]}, folder / "data_batch_3")
    with pytest.raises(ArrayDatasetError, match="data_batch_3.*not allowed"):
        load_array_split(tmp_path, "train")


def test_cifar_batch_with_wrong_shape_names_the_file(tmp_path):
    folder = _cifar10(tmp_path, np.zeros((1, 3072), np.uint8), [0])
    _pickle({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}, folder / "test_batch")
    with pytest.raises(ArrayDatasetError, match="test_batch"):
        load_array_split(tmp_path, "test")


def _stl10(folder: Path, images: np.ndarray, labels: list[int]) -> None:
    """STL-10 files: each image written column-major, i.e. as its (channel, column, row) array."""
    folder.mkdir(parents=True)
    raw = np.ascontiguousarray(images.transpose(0, 3, 2, 1)).tobytes()
    for split in ("train", "test"):
        (folder / f"{split}_X.bin").write_bytes(raw)
        (folder / f"{split}_y.bin").write_bytes(bytes(labels))
    (folder / "unlabeled_X.bin").write_bytes(raw + raw)
    (folder / "class_names.txt").write_text("\n".join(f"class{n}" for n in range(10)) + "\n")


def test_stl10_is_column_major_and_labels_are_one_based(tmp_path):
    images = np.zeros((2, 96, 96, 3), dtype=np.uint8)
    images[0, 5, 70, 0] = 200  # row 5, column 70, red
    images[1, 90, 2, 2] = 100
    _stl10(tmp_path / "stl10_binary", images, [1, 10])
    train = load_array_split(tmp_path, "train")
    assert train.labels.tolist() == [0, 9]
    np.testing.assert_array_equal(np.asarray(train[0]), images[0])
    np.testing.assert_array_equal(np.asarray(train[1]), images[1])
    both = load_array_split(tmp_path)  # pretraining default: train+unlabeled
    assert both.split == "train+unlabeled" and both.labels.tolist() == [0, 9, -1, -1, -1, -1]
    np.testing.assert_array_equal(np.asarray(both[5]), images[1])
    assert isinstance(load_array_split(tmp_path, "unlabeled").pixels.images, np.memmap)


def test_truncated_stl10_file_and_unknown_split_are_errors(tmp_path):
    folder = tmp_path / "stl10_binary"
    _stl10(folder, np.zeros((1, 96, 96, 3), np.uint8), [1])
    with open(folder / "unlabeled_X.bin", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArrayDatasetError, match="unlabeled_X.bin.*whole number"):
        load_array_split(folder, "unlabeled")
    with pytest.raises(ArrayDatasetError, match="no split 'val'"):
        load_array_split(folder, "val")


def test_other_folders_are_not_array_data_sets(tmp_path):
    assert find_array_dataset(tmp_path) is None
    with pytest.raises(ArrayDatasetError, match="not an array data set"):
        load_array_split(tmp_path)
