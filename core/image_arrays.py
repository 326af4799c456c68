"""Data sets stored as image arrays (CIFAR-10/100 python batches, STL-10 binaries), read by both stages.

``find_array_dataset(root)`` recognises the on-disk layout users download (torchvision's folder names),
and ``load_array_split(root, split)`` returns an ``ImageArray``: a sequence of RGB uint8 ``H x W x 3``
images with integer labels (``-1`` for unlabelled images), decoded lazily from the arrays (STL-10's
2.7 GB unlabelled split stays on disk as a memory map). The readers are ``core.cifar_format`` and
``core.stl10_format``; add a layout with one ``ArrayFormat`` entry in ``ARRAY_FORMATS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.image_array import ArrayDatasetError, ConcatenatedPixels, ImageArray  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class ArrayFormat:
    """One on-disk layout: the folder it lives in, its splits, and its reader."""

    name: str
    folder: str  # torchvision's folder name, e.g. cifar-10-batches-py
    splits: tuple[str, ...]
    default_split: str  # what pretraining reads
    heldout_split: str  # what the online probe is evaluated on
    read: Callable[[Path, str], ImageArray]


def _formats() -> dict[str, ArrayFormat]:
    from core.cifar_format import read_cifar10, read_cifar100
    from core.stl10_format import STL10_SPLITS, read_stl10

    return {
        "cifar10": ArrayFormat("cifar10", "cifar-10-batches-py", ("train", "test"), "train", "test", read_cifar10),
        "cifar100": ArrayFormat("cifar100", "cifar-100-python", ("train", "test"), "train", "test", read_cifar100),
        "stl10": ArrayFormat("stl10", "stl10_binary", STL10_SPLITS, "train+unlabeled", "test", read_stl10),
    }


ARRAY_FORMATS: dict[str, ArrayFormat] = _formats()


def find_array_dataset(root: str | Path) -> tuple[ArrayFormat, Path] | None:
    """The format of ``root`` and its data folder, if ``root`` is (or directly holds) a known folder."""
    root = Path(root)
    for array_format in ARRAY_FORMATS.values():
        for folder in (root, root / array_format.folder):
            if folder.name == array_format.folder and folder.is_dir():
                return array_format, folder
    return None


def load_array_split(root: str | Path, split: str | None = None) -> ImageArray:
    """Split ``split`` (default: the format's pretraining split) of the array data set at ``root``."""
    found = find_array_dataset(root)
    if found is None:
        names = ", ".join(array_format.folder for array_format in ARRAY_FORMATS.values())
        raise ArrayDatasetError(f"{root} is not an array data set folder (expected one of {names}, or a folder "
                                f"holding one)")
    array_format, folder = found
    split = split or array_format.default_split
    if split not in array_format.splits:
        raise ArrayDatasetError(f"{array_format.name} has no split {split!r}; valid splits: "
                                f"{', '.join(array_format.splits)}")
    return array_format.read(folder, split)
