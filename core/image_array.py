"""In-memory image data sets: an indexable sequence of RGB images with labels, decoded lazily from arrays.

The container that the array readers (``core.cifar_format``, ``core.stl10_format``) return and both stages read;
the registry of on-disk array layouts is ``core.image_arrays``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image


class ArrayDatasetError(ValueError):
    """An array data set file is missing, truncated or not of the expected kind."""


@dataclass(frozen=True)
class ImageArray(Sequence):
    """Images ``pixels[i]`` (``H x W x 3`` uint8, maybe a memory-map view) and ``labels[i]`` (-1: none)."""

    name: str
    split: str
    pixels: Sequence[np.ndarray]
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Image.Image:  # type: ignore[override]
        """Image ``index`` as an RGB PIL image."""
        return Image.fromarray(np.ascontiguousarray(self.pixels[index]), mode="RGB")

    def item_name(self, index: int) -> str:
        """A stable name for image ``index`` (messages, caches): ``<name>/<split>/<index>``."""
        return f"{self.name}/{self.split}/{index}"


class ConcatenatedPixels(Sequence):
    """Several pixel sequences read as one (STL-10 ``train+unlabeled``) without copying them."""

    def __init__(self, parts: Sequence[Sequence[np.ndarray]]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *(len(part) for part in self.parts)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if not 0 <= index < len(self):
            raise IndexError(index)
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.parts[part][index - int(self.offsets[part])]
