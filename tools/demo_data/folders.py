"""Class-per-folder layouts: generic ImageFolder, the flat unlabeled folder, and ImageNet with subsets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from .render import classification_image, save_jpeg
from .shapes import IMAGENET_WNIDS, SHAPES
from .spec import DemoSpec, rng_for

SPLITS: tuple[str, ...] = ("train", "val")


def images_per_class(spec: DemoSpec, split: str) -> int:
    """Training splits get ``spec.images_per_class`` images per class, the others ``spec.val_per_class``."""
    return spec.images_per_class if split.startswith("train") else spec.val_per_class


def labelled_images(spec: DemoSpec, dataset: str, split: str) -> Iterator[tuple[int, int, Image.Image]]:
    """``(label, index within class, image)`` for one split, class-major, with a progress bar."""
    count = images_per_class(spec, split)
    progress = tqdm(total=count * len(SHAPES), desc=f"{dataset}/{split}", unit="img", leave=False)
    with progress:
        for label, shape in enumerate(SHAPES):
            for index in range(count):
                rng = rng_for(spec, f"{dataset}/{split}/{shape}", index)
                yield label, index, classification_image(rng, spec.size, shape)
                progress.update()


def write_imagefolder(out: Path, spec: DemoSpec) -> str:
    """``imagefolder/{train,val}/<class>/<class>_NNNN.jpg``: torchvision ``ImageFolder``."""
    counts = dict.fromkeys(SPLITS, 0)
    for split in SPLITS:
        for label, index, image in labelled_images(spec, "imagefolder", split):
            save_jpeg(image, out / "imagefolder" / split / SHAPES[label] / f"{SHAPES[label]}_{index:04d}.jpg")
            counts[split] += 1
    return f"imagefolder: {counts['train']} train + {counts['val']} val images, {len(SHAPES)} classes"


def write_unlabeled(out: Path, spec: DemoSpec) -> str:
    """``unlabeled/NNNNN.jpg``: one flat folder of class-balanced images without labels (pretraining)."""
    count = 0
    for label, index, image in labelled_images(spec, "unlabeled", "train"):
        save_jpeg(image, out / "unlabeled" / f"{index * len(SHAPES) + label:05d}.jpg")
        count += 1
    return f"unlabeled: {count} images in one flat folder"


def subset_sizes(count: int) -> dict[str, int]:
    """Per-class sizes of the 1% / 10% subsets: rounded fractions, but at least 1 and 2 (when possible)."""
    one = max(1, round(0.01 * count))
    return {"1percent": one, "10percent": min(count, max(one + 1, round(0.1 * count)))}


def write_imagenet(out: Path, spec: DemoSpec) -> str:
    """ImageNet as ImageFolder with real-style names, plus SimCLR-style subset lists.

    ``imagenet/train/<wnid>/<wnid>_<n>.JPEG``, ``imagenet/val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG``,
    ``imagenet/subsets/{1percent,10percent}.txt`` listing training file names (1% within 10%).
    """
    root = out / "imagenet"
    train_names: dict[str, list[str]] = {shape: [] for shape in SHAPES}
    for label, index, image in labelled_images(spec, "imagenet", "train"):
        wnid = IMAGENET_WNIDS[SHAPES[label]]
        name = f"{wnid}_{index + 1}.JPEG"
        save_jpeg(image, root / "train" / wnid / name)
        train_names[SHAPES[label]].append(name)
    val_count = 0
    for label, _index, image in labelled_images(spec, "imagenet", "val"):
        val_count += 1
        save_jpeg(image, root / "val" / IMAGENET_WNIDS[SHAPES[label]] / f"ILSVRC2012_val_{val_count:08d}.JPEG")
    sizes = subset_sizes(spec.images_per_class)
    subsets: dict[str, list[str]] = {name: [] for name in sizes}
    for shape, names in train_names.items():
        order = rng_for(spec, f"imagenet/subsets/{shape}", 0).permutation(len(names))
        for subset, size in sizes.items():
            subsets[subset].extend(names[i] for i in order[:size])
    (root / "subsets").mkdir(parents=True, exist_ok=True)
    for subset, names in subsets.items():
        (root / "subsets" / f"{subset}.txt").write_text("".join(f"{name}\n" for name in sorted(names)))
    train_count = sum(len(names) for names in train_names.values())
    return (
        f"imagenet: {train_count} train + {val_count} val images, {len(SHAPES)} wnids, "
        f"subsets 1percent={len(subsets['1percent'])} 10percent={len(subsets['10percent'])}"
    )
