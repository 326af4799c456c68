"""Training images for pretraining: folder discovery, two augmented views per image, resumable sharding.

Two layouts are recognised (``detect_layout``), checked before any work starts:

* ``imagefolder``: ``root/<class>/<image>`` as ImageNet's ``train/`` (read with torchvision's ImageFolder;
  labels are ignored);
* ``flat``: images directly in ``root`` (no class folders; not recursive), e.g. a user's own photos.

A third, ``shards`` (a folder with ``shards.json``, see ``pretrain.shards``), is recognised here and read by
``pretrain.shard_loader``.

Determinism: the order of an epoch depends only on (seed, epoch), as ``DistributedSampler``; the random
augmentations of a sample depend only on (seed, epoch, sample index), whichever worker decodes it. So a run
resumed mid-epoch sees exactly the batches an uninterrupted run would, and skipped batches are never decoded.

Robustness: an image that cannot be decoded is replaced by the next readable one (deterministically) and
counted; the per-sample count travels with the batch so the trainer can report it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from core.cli import UserError
from core.image_arrays import ARRAY_FORMATS, find_array_dataset, load_array_split
from core.sampling import EpochBatchSampler, SampleKey, sample_seed, seeded_randomness  # noqa: F401 (re-exported)
from pretrain.shards import INDEX_FILE as SHARD_INDEX_FILE
from pretrain.signals import ignore_preemption_signals

logger = logging.getLogger(__name__)

MAX_REPLACEMENT_ATTEMPTS = 100
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class DataError(UserError, ValueError):
    """The training data folder is missing, empty, or holds no readable image."""


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMG_EXTENSIONS)


def _has_class_folders(root: Path) -> bool:
    return any(child.is_dir() and any(_is_image(item) for item in child.iterdir()) for child in root.iterdir())


def _imagefolder_paths(root: Path) -> list[str]:
    return [path for path, _label in ImageFolder(str(root), allow_empty=True).samples]


def _flat_paths(root: Path) -> list[str]:
    return sorted(str(path) for path in root.iterdir() if _is_image(path))


# Each returns the training images: paths, or (array layouts) a sequence of PIL images.
LAYOUTS: dict[str, Callable[[Path], Sequence]] = {
    **{name: load_array_split for name in ARRAY_FORMATS},
    "imagefolder": _imagefolder_paths,
    "flat": _flat_paths,
}


def detect_layout(root: str | Path) -> str:
    """``"shards"`` if ``root`` holds a shard index (``pretrain.shards``), an array layout (``cifar10``...) if
    ``root`` is one (``core.image_arrays``), ``"imagefolder"`` if it has class sub-folders holding images, else
    ``"flat"``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root} (set data.root to an ImageFolder tree, a folder of images, "
                        f"a shard folder or a CIFAR/STL-10 download)")
    if (root / SHARD_INDEX_FILE).is_file():
        return "shards"
    array_dataset = find_array_dataset(root)
    if array_dataset is not None:
        return array_dataset[0].name
    return "imagefolder" if _has_class_folders(root) else "flat"


def list_images(root: str | Path) -> tuple[Sequence, str]:
    """All training images under ``root`` (paths, or in-memory images) in a fixed order, and the layout name."""
    layout = detect_layout(root)
    if layout not in LAYOUTS:
        raise DataError(f"{root} is a shard folder ({SHARD_INDEX_FILE}); it has no image files to list")
    paths = LAYOUTS[layout](Path(root))
    if not paths:
        raise DataError(f"data folder {root} holds no images (looked for {', '.join(IMG_EXTENSIONS)} files "
                        f"directly in it or in class sub-folders)")
    return paths, layout


def read_rgb(path: str | Image.Image) -> Image.Image:
    """The image at ``path`` decoded by PIL as RGB (the input of ``BarlowTwinsTransform``); an in-memory image
    (array layouts) as it is."""
    if isinstance(path, Image.Image):
        return path
    with Image.open(path) as handle:
        return handle.convert("RGB")


def read_bytes(path: str) -> bytes:
    """The encoded file (the input of ``pretrain.decode_views.DecodingTwoViewTransform``)."""
    return Path(path).read_bytes()


class TwoViewDataset(Dataset):
    """Returns ``(view1, view2, skipped)`` for key ``(epoch, index)``; ``skipped`` counts unreadable files.

    ``transform`` gets what ``read`` returns for the file; an image that fails in either is unreadable. With
    ``labels`` (one per image, -1 for none) the item ends with the image's label, for an online probe.
    """

    def __init__(self, paths: Sequence, transform: Callable, seed: int, read: Callable[[str], object] = read_rgb,
                 labels: np.ndarray | None = None) -> None:
        self.paths = paths
        self.transform = transform
        self.seed = seed
        self.read = read
        self.labels = labels
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: SampleKey) -> tuple:
        """The views of the image at ``index``, or of the next readable one after it, with the number of
        files skipped (and its label); the augmentation seed is the requested sample's either way."""
        epoch, index = key
        for attempt in range(min(MAX_REPLACEMENT_ATTEMPTS, len(self.paths))):
            path = self.paths[(index + attempt) % len(self.paths)]
            try:
                with seeded_randomness(sample_seed(self.seed, epoch, index)):
                    view1, view2 = self.transform(self.read(path))
                if self.labels is None:
                    return view1, view2, attempt
                return view1, view2, attempt, int(self.labels[(index + attempt) % len(self.paths)])
            except DECODE_ERRORS as error:
                if path not in self._reported:
                    self._reported.add(path)
                    logger.warning("skipping unreadable image %s (%s: %s)", path, type(error).__name__, error)
        raise DataError(f"no readable image among {MAX_REPLACEMENT_ATTEMPTS} consecutive files starting at "
                        f"{self.paths[index]}; is the data folder corrupt?")


def build_loader(dataset: TwoViewDataset, sampler: EpochBatchSampler, workers: int, pin_memory: bool) -> DataLoader:
    """A DataLoader over ``sampler``'s batches; workers persist across epochs (the sampler runs in this process)."""
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                      worker_init_fn=ignore_preemption_signals if workers > 0 else None)
