"""STL-10 binaries (``stl10_binary/``, torchvision's layout) as memory maps: nothing is loaded up front.

``<split>_X.bin`` holds 96x96x3 uint8 images, each stored column-major as (channel, column, row);
``<split>_y.bin`` holds labels 1..10; ``class_names.txt`` one name per line. ``unlabeled`` (100,000
images, 2.7 GB) has no labels (-1 here); ``train+unlabeled`` is the usual pretraining set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from core.image_array import ArrayDatasetError, ConcatenatedPixels, ImageArray

STL10_SIDE = 96
IMAGE_BYTES = 3 * STL10_SIDE * STL10_SIDE
STL10_SPLITS = ("train", "test", "unlabeled", "train+unlabeled")


class ColumnMajorImages(Sequence):
    """``H x W x 3`` views of a memory-mapped (N, 3, W, H) array, decoded one image at a time."""

    def __init__(self, path: Path) -> None:
        size = path.stat().st_size
        if size == 0 or size % IMAGE_BYTES:
            raise ArrayDatasetError(f"{path}: {size} bytes is not a whole number of 96x96x3 images")
        self.images = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 3, STL10_SIDE, STL10_SIDE)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        return self.images[index].transpose(2, 1, 0)


def _required(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise ArrayDatasetError(f"STL-10 file not found: {path}")
    return path


def _labelled(folder: Path, split: str) -> tuple[ColumnMajorImages, np.ndarray]:
    images = ColumnMajorImages(_required(folder, f"{split}_X.bin"))
    labels = np.fromfile(_required(folder, f"{split}_y.bin"), dtype=np.uint8).astype(np.int64) - 1
    if len(labels) != len(images) or labels.min() < 0 or labels.max() > 9:
        raise ArrayDatasetError(f"{folder / f'{split}_y.bin'}: {len(labels)} labels in 1..10 expected for "
                                f"{len(images)} images")
    return images, labels


def read_stl10(folder: Path, split: str) -> ImageArray:
    classes = tuple(line.strip() for line in _required(folder, "class_names.txt").read_text().splitlines()
                    if line.strip())
    parts, labels = [], []
    for part in split.split("+"):
        if part == "unlabeled":
            images = ColumnMajorImages(_required(folder, "unlabeled_X.bin"))
            parts.append(images)
            labels.append(np.full(len(images), -1, dtype=np.int64))
        else:
            images, part_labels = _labelled(folder, part)
            parts.append(images)
            labels.append(part_labels)
    pixels = parts[0] if len(parts) == 1 else ConcatenatedPixels(parts)
    return ImageArray("stl10", split, pixels, np.concatenate(labels), classes)
