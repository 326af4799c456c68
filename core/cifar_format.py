"""CIFAR-10/100 "python version" batches read with a restricted unpickler (never plain ``pickle.load``).

The files (``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``, ``cifar-100-python/{train,
test,meta}``, torchvision's layout) are pickled dicts of bytes keys, lists of ints/bytes and one uint8
``numpy`` array. ``SafeUnpickler`` resolves only the globals a numpy array needs, so a tampered file
cannot run code; anything else is refused naming the file and the global.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from core.image_array import ArrayDatasetError, ImageArray

CIFAR_SIDE = 32
# (module, name) pairs an ndarray pickle refers to (numpy 1.x and 2.x module paths, and _codecs.encode that
# Python 3 protocol-2 pickles use for bytes).
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})
CIFAR10_FILES = {"train": [f"data_batch_{number}" for number in range(1, 6)], "test": ["test_batch"]}
CIFAR100_FILES = {"train": ["train"], "test": ["test"]}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles builtins (dict, list, bytes, str, int) and numpy arrays only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def read_batch(path: Path) -> dict[str, Any]:
    """A CIFAR batch file as a dict with ``str`` keys (the files' keys are Python 2 byte strings)."""
    if not path.is_file():
        raise ArrayDatasetError(f"CIFAR batch file not found: {path}")
    try:
        content = SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise ArrayDatasetError(f"{path} is not a readable CIFAR batch: {error}") from None
    if not isinstance(content, dict):
        raise ArrayDatasetError(f"{path} holds a {type(content).__name__}, expected a dict")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}


def _names(values: list) -> tuple[str, ...]:
    return tuple(value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in values)


def read_cifar(folder: Path, name: str, split: str, files: dict[str, list[str]], label_key: str,
               meta_file: str, names_key: str) -> ImageArray:
    """Concatenates the batches of ``split``: ``data`` rows are 3072 bytes, the R, G, B planes of 32x32."""
    pixels, labels = [], []
    for file_name in files[split]:
        batch = read_batch(folder / file_name)
        data, batch_labels = batch.get("data"), batch.get(label_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != 3 * CIFAR_SIDE ** 2 or not isinstance(batch_labels, list) \
                or len(batch_labels) != len(data):
            raise ArrayDatasetError(f"{folder / file_name}: expected 'data' (N x 3072 uint8) and '{label_key}' "
                                    f"(N ints)")
        pixels.append(data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE).transpose(0, 2, 3, 1))
        labels.extend(batch_labels)
    classes = _names(read_batch(folder / meta_file).get(names_key, []))
    labels_array = np.asarray(labels, dtype=np.int64)
    if not classes or labels_array.min() < 0 or labels_array.max() >= len(classes):
        raise ArrayDatasetError(f"{folder}: labels outside the {len(classes)} classes of {meta_file}")
    return ImageArray(name, split, np.concatenate(pixels), labels_array, classes)


def read_cifar10(folder: Path, split: str) -> ImageArray:
    return read_cifar(folder, "cifar10", split, CIFAR10_FILES, "labels", "batches.meta", "label_names")


def read_cifar100(folder: Path, split: str) -> ImageArray:
    return read_cifar(folder, "cifar100", split, CIFAR100_FILES, "fine_labels", "meta", "fine_label_names")
