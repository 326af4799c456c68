"""What to generate (counts, sizes, seed) and the per-image random streams derived from it."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .shapes import SHAPES


@dataclass(frozen=True)
class DemoSpec:
    """Size of the demo data: ``images_per_class`` training images per class, ``size`` pixels."""

    images_per_class: int = 8
    size: int = 96
    seed: int = 0

    def __post_init__(self) -> None:
        if self.images_per_class < 2:
            raise ValueError(f"images_per_class must be >= 2, got {self.images_per_class}")
        if self.size < 32:
            raise ValueError(f"size must be >= 32 pixels, got {self.size}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @property
    def val_per_class(self) -> int:
        """Validation images per class: half the training count, at least one."""
        return max(1, self.images_per_class // 2)

    @property
    def detection_size(self) -> int:
        """Detection scenes (VOC, COCO) are larger so that 1-3 objects fit without tiny boxes."""
        return round(self.size * 1.5)

    def scene_count(self, fraction: float = 1.0) -> int:
        """Detection images in a split: ``fraction`` of (classes x images_per_class), at least one per class."""
        return max(len(SHAPES), round(len(SHAPES) * self.images_per_class * fraction))


def rng_for(spec: DemoSpec, stream: str, index: int) -> np.random.Generator:
    """An independent random stream per (seed, named stream, image index).

    Images never share a stream, so adding a layout or changing one split's count leaves every
    other image byte-identical. ``crc32`` (not ``hash``) keeps names stable across processes.
    """
    return np.random.default_rng([spec.seed, zlib.crc32(stream.encode("utf-8")), index])
