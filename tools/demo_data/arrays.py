"""Miniature CIFAR-10/100 (python pickle batches) and STL-10 (binary) copies, in torchvision's layouts.

The files have the real formats (so ``core.image_arrays`` reads them as it reads the downloads); the
images are the demo shapes at 32 px (CIFAR) and 96 px (STL-10), and the class names are the shapes.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .folders import labelled_images
from .shapes import SHAPES
from .spec import DemoSpec

CIFAR_TRAIN_BATCHES = 5


def _arrays(spec: DemoSpec, dataset: str, split: str, size: int) -> tuple[np.ndarray, list[int]]:
    """(N, size, size, 3) uint8 images and labels of one split, class-major."""
    sized = DemoSpec(spec.images_per_class, max(size, 32), spec.seed)
    pixels, labels = [], []
    for label, _index, image in labelled_images(sized, dataset, split):
        pixels.append(np.asarray(image.resize((size, size)), dtype=np.uint8))
        labels.append(label)
    return np.stack(pixels), labels


def _pickle(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)


def _cifar_rows(pixels: np.ndarray) -> np.ndarray:
    """CIFAR's row layout: 3072 bytes, the 1024 red, then green, then blue values of a 32x32 image."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2).reshape(len(pixels), -1))


def write_cifar10(out: Path, spec: DemoSpec) -> str:
    """``cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` (pickled dicts, bytes keys)."""
    folder = out / "cifar10" / "cifar-10-batches-py"
    train, train_labels = _arrays(spec, "cifar10", "train", 32)
    for number, rows in enumerate(np.array_split(np.arange(len(train)), CIFAR_TRAIN_BATCHES), start=1):
        _pickle({b"batch_label": f"training batch {number} of 5".encode(), b"data": _cifar_rows(train[rows]),
                 b"labels": [train_labels[row] for row in rows]}, folder / f"data_batch_{number}")
    test, test_labels = _arrays(spec, "cifar10", "test", 32)
    _pickle({b"batch_label": b"testing batch 1 of 1", b"data": _cifar_rows(test), b"labels": test_labels},
            folder / "test_batch")
    _pickle({b"label_names": [shape.encode() for shape in SHAPES], b"num_cases_per_batch": len(train) // 5},
            folder / "batches.meta")
    return f"cifar10: {len(train)} train + {len(test)} test images (32 px), {len(SHAPES)} classes"


def write_cifar100(out: Path, spec: DemoSpec) -> str:
    """``cifar100/cifar-100-python/{train,test,meta}`` (fine labels; coarse label 0)."""
    folder = out / "cifar100" / "cifar-100-python"
    counts = {}
    for split in ("train", "test"):
        pixels, labels = _arrays(spec, "cifar100", split, 32)
        _pickle({b"data": _cifar_rows(pixels), b"fine_labels": labels, b"coarse_labels": [0] * len(labels)},
                folder / split)
        counts[split] = len(labels)
    _pickle({b"fine_label_names": [shape.encode() for shape in SHAPES], b"coarse_label_names": [b"shapes"]},
            folder / "meta")
    return f"cifar100: {counts['train']} train + {counts['test']} test images (32 px), {len(SHAPES)} classes"


def _stl10_bytes(pixels: np.ndarray) -> bytes:
    """STL-10's column-major image layout: (channel, column, row) per image."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 2, 1)).tobytes()


def write_stl10(out: Path, spec: DemoSpec) -> str:
    """``stl10/stl10_binary/{train,test}_{X,y}.bin, unlabeled_X.bin, class_names.txt`` (labels 1-based)."""
    folder = out / "stl10" / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, source in (("train", "train"), ("test", "val"), ("unlabeled", "train-unlabeled")):
        pixels, labels = _arrays(spec, "stl10", source, 96)
        (folder / f"{split}_X.bin").write_bytes(_stl10_bytes(pixels))
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes(bytes(label + 1 for label in labels))
        counts[split] = len(labels)
    (folder / "class_names.txt").write_text("".join(f"{shape}\n" for shape in SHAPES))
    return (f"stl10: {counts['train']} train + {counts['test']} test + {counts['unlabeled']} unlabeled images "
            f"(96 px), {len(SHAPES)} classes")
