"""Places205 (official list files) and Places365 (what torchvision's ``Places365(small=True)`` reads)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .folders import SPLITS, labelled_images
from .render import save_jpeg
from .shapes import SHAPES
from .spec import DemoSpec


def _category_path(shape: str) -> str:
    """Places category folders are grouped by first letter: ``c/circle``."""
    return f"{shape[0]}/{shape}"


def write_places205(out: Path, spec: DemoSpec) -> str:
    """``places205/images/<letter>/<category>/gsun_<hex>.jpg`` and
    ``places205/trainvalsplit_places205/{train,val}_places205.csv`` with ``<letter>/<category>/<file> <label>``
    lines (paths relative to ``images/``), as in the official release.
    """
    root = out / "places205"
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    for split in SPLITS:
        for label, index, image in labelled_images(spec, "places205", split):
            digest = hashlib.md5(f"places205/{split}/{SHAPES[label]}/{index}".encode()).hexdigest()
            relative = f"{_category_path(SHAPES[label])}/gsun_{digest}.jpg"
            save_jpeg(image, root / "images" / relative)
            lines[split].append(f"{relative} {label}\n")
    (root / "trainvalsplit_places205").mkdir(parents=True, exist_ok=True)
    for split, split_lines in lines.items():
        (root / "trainvalsplit_places205" / f"{split}_places205.csv").write_text("".join(split_lines))
    return f"places205: {len(lines['train'])} train + {len(lines['val'])} val images, {len(SHAPES)} categories"


def write_places365(out: Path, spec: DemoSpec) -> str:
    """The small (256) Places365-Standard layout read by ``torchvision.datasets.Places365``.

    ``categories_places365.txt`` (``/c/circle 0``), ``places365_train_standard.txt``
    (``/c/circle/00000001.jpg 0``) with images under ``data_256_standard/``, and ``places365_val.txt``
    (``Places365_val_00000001.jpg 0``) with images under ``val_256/``. torchvision also checks the
    official md5 sums of the three list files, which generated lists cannot match.
    """
    root = out / "places365"
    root.mkdir(parents=True, exist_ok=True)
    categories = "".join(f"/{_category_path(shape)} {label}\n" for label, shape in enumerate(SHAPES))
    (root / "categories_places365.txt").write_text(categories)
    train_lines, val_lines = [], []
    for label, index, image in labelled_images(spec, "places365", "train"):
        relative = f"{_category_path(SHAPES[label])}/{index + 1:08d}.jpg"
        save_jpeg(image, root / "data_256_standard" / relative)
        train_lines.append(f"/{relative} {label}\n")
    for label, _index, image in labelled_images(spec, "places365", "val"):
        name = f"Places365_val_{len(val_lines) + 1:08d}.jpg"
        save_jpeg(image, root / "val_256" / name)
        val_lines.append(f"{name} {label}\n")
    (root / "places365_train_standard.txt").write_text("".join(train_lines))
    (root / "places365_val.txt").write_text("".join(val_lines))
    return f"places365: {len(train_lines)} train-standard + {len(val_lines)} val images, {len(SHAPES)} categories"
