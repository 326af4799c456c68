"""Classification data sets for transfer evaluation, by name: ``build_dataset(name, root, split, transform)``.

Every builder returns an ``ImageListDataset``: a list of (image path, target) with the class names,
``targets`` as an array (N for single-label, N x C of 1 / 0 / -1 for multi-label VOC and COCO) and items
``(image, target, ok)``. ``ok`` is False only for an unreadable image when ``skip_unreadable`` is set
(a blank image stands in and callers drop it, reporting it through ``skipped_images.SkippedImages``);
otherwise an unreadable image raises ``UnreadableImageError``, one line naming the file, also when it is
raised in a DataLoader worker.

Parsing reuses torchvision (``ImageFolder``, ``Places365``, ``VOCDetection.parse_voc_xml``) and
pycocotools; ``root`` is always the data set's own root (``.../VOCdevkit/VOC2007``, ``.../coco``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets

from core.image_arrays import ARRAY_FORMATS, ArrayDatasetError, ImageArray, find_array_dataset, load_array_split
from transfer.catalog import VOC_CLASSES, DatasetError, UnreadableImageError
from transfer.classification.subset_lists import read_subset_names

# VOC/VISSL label semantics for multi-label targets.
PRESENT, ABSENT, DIFFICULT_ONLY = 1, 0, -1


class ImageListDataset(Dataset):
    """Images given as (path, target) pairs; see the module docstring for items and ``targets``."""

    def __init__(self, name: str, split: str, paths: list[str], targets: np.ndarray, classes: list[str],
                 transform: Callable | None = None, skip_unreadable: bool = False) -> None:
        if len(paths) != len(targets):
            raise ValueError(f"{name}/{split}: {len(paths)} images but {len(targets)} targets")
        if not paths:
            raise DatasetError(f"{name}/{split}: the split lists no images")
        self.name, self.split, self.paths, self.classes = name, split, paths, classes
        self.targets = np.asarray(targets)
        self.transform, self.skip_unreadable = transform, skip_unreadable

    @property
    def multi_label(self) -> bool:
        return self.targets.ndim == 2

    def __len__(self) -> int:
        return len(self.paths)

    def load_image(self, index: int) -> tuple[Image.Image, bool]:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB"), True
        except (OSError, UnidentifiedImageError) as error:
            if not self.skip_unreadable:
                raise UnreadableImageError(f"{self.name}/{self.split}: cannot read image {path} ({error}); set "
                                           f"features.skip_unreadable=true to skip unreadable images") from error
            return Image.new("RGB", (256, 256)), False

    def __getitem__(self, index: int) -> tuple[Any, Any, bool]:
        image, ok = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index], ok


class ItemsWithPath(Dataset):
    """``(*dataset[index], image path)``: lets the main process name the files behind items flagged unreadable."""

    def __init__(self, dataset: ImageListDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple:
        return (*self.dataset[index], self.dataset.paths[index])


def require_path(path: Path, what: str) -> Path:
    """``path`` if it exists, else a ``DatasetError`` naming it."""
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}")
    return path


def require_split(name: str, split: str, choices: tuple[str, ...]) -> None:
    if split not in choices:
        raise DatasetError(f"{name}: unknown split {split!r}; valid splits: {', '.join(choices)}")


def voc_image_labels(annotation: Path, classes: tuple[str, ...] = VOC_CLASSES) -> np.ndarray:
    """Per class: 1 if a non-difficult object is present, -1 if only difficult ones, 0 if none."""
    try:
        parsed = tv_datasets.VOCDetection.parse_voc_xml(ElementTree.parse(annotation).getroot())
    except ElementTree.ParseError as error:
        raise DatasetError(f"cannot parse VOC annotation {annotation}: {error}") from error
    labels = np.full(len(classes), ABSENT, dtype=np.int8)
    for obj in parsed["annotation"].get("object", []):
        if obj["name"] not in classes:
            raise DatasetError(f"{annotation}: unknown VOC class {obj['name']!r}")
        column = classes.index(obj["name"])
        if int(obj.get("difficult", "0")) == 0:
            labels[column] = PRESENT
        elif labels[column] == ABSENT:
            labels[column] = DIFFICULT_ONLY
    return labels


def build_voc2007(root: Path, split: str, **options: Any) -> ImageListDataset:
    """VOC2007 (``root`` = ``VOCdevkit/VOC2007``): any ``ImageSets/Main/<split>.txt``; labels from Annotations."""
    split_file = require_path(root / "ImageSets" / "Main" / f"{split}.txt", f"voc2007 split '{split}' list")
    image_ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    labels = [voc_image_labels(require_path(root / "Annotations" / f"{image_id}.xml", "VOC annotation"))
              for image_id in image_ids]
    paths = [str(root / "JPEGImages" / f"{image_id}.jpg") for image_id in image_ids]
    return ImageListDataset("voc2007", split, paths, np.stack(labels), list(VOC_CLASSES), **options)


def build_coco2014(root: Path, split: str, **options: Any) -> ImageListDataset:
    """COCO2014 (``root`` = ``coco``): 80-class multi-label targets (1 if the image has an instance) via pycocotools."""
    from pycocotools.coco import COCO

    require_split("coco2014", split, ("train", "val"))
    annotation_file = require_path(root / "annotations" / f"instances_{split}2014.json", "COCO annotation file")
    image_dir = require_path(root / f"{split}2014", "COCO image folder")
    coco = COCO(str(annotation_file))
    category_ids = sorted(coco.getCatIds())
    column_of = {category_id: column for column, category_id in enumerate(category_ids)}
    image_ids = sorted(coco.getImgIds())
    labels = np.zeros((len(image_ids), len(category_ids)), dtype=np.int8)
    for row, image_id in enumerate(image_ids):
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            labels[row, column_of[annotation["category_id"]]] = PRESENT
    paths = [str(image_dir / coco.imgs[image_id]["file_name"]) for image_id in image_ids]
    classes = [coco.cats[category_id]["name"] for category_id in category_ids]
    return ImageListDataset("coco2014", split, paths, labels, classes, **options)


def build_places205(root: Path, split: str, **options: Any) -> ImageListDataset:
    """Places205 official lists ``trainvalsplit_places205/<split>_places205.csv`` (paths relative to ``images/``)."""
    require_split("places205", split, ("train", "val"))
    list_file = require_path(root / "trainvalsplit_places205" / f"{split}_places205.csv", "places205 list file")
    paths, targets = [], []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            relative, label = line.rsplit(maxsplit=1)
            targets.append(int(label))
        except ValueError as error:
            raise DatasetError(f"{list_file}:{number}: expected 'path label', got {line!r}") from error
        paths.append(str(root / "images" / relative.lstrip("/")))
    num_classes = max(targets) + 1
    categories: dict[int, str] = {}
    for path, label in zip(paths, targets):
        categories.setdefault(label, Path(path).parent.name)
    classes = [categories.get(label, str(label)) for label in range(num_classes)]
    return ImageListDataset("places205", split, paths, np.array(targets), classes, **options)


class _Places365ListFiles(tv_datasets.Places365):
    """torchvision's Places365 reader without its md5 check of the list files (checks that they exist).

    The md5 check only guards downloads; it would reject re-generated or filtered list files.
    """

    def _check_integrity(self, file: str, md5: str, download: bool) -> bool:
        require_path(Path(file), "places365 list file")
        return True


def build_places365(root: Path, split: str, **options: Any) -> ImageListDataset:
    """Places365-Standard in torchvision's layout (small 256px images if ``data_256_standard`` exists)."""
    require_split("places365", split, ("train", "val"))
    require_path(root, "places365 root")
    small = (root / "data_256_standard").is_dir() or (root / "val_256").is_dir()
    try:
        places = _Places365ListFiles(str(root), split="train-standard" if split == "train" else "val",
                                       small=small, download=False)
    except RuntimeError as error:
        raise DatasetError(f"places365 split '{split}' under {root}: {error}") from error
    paths = [path for path, _ in places.imgs]
    return ImageListDataset("places365", split, paths, np.array(places.targets), list(places.classes), **options)


def build_inat2018(root: Path, split: str, **options: Any) -> ImageListDataset:
    """iNaturalist 2018: ``<split>2018.json`` (COCO-style) with images under ``root``; classes = category ids."""
    require_split("inat2018", split, ("train", "val"))
    annotation_file = require_path(root / f"{split}2018.json", "iNaturalist 2018 annotation file")
    document = json.loads(annotation_file.read_text())
    category_ids = sorted(category["id"] for category in document["categories"])
    column_of = {category_id: column for column, category_id in enumerate(category_ids)}
    names = {category["id"]: category["name"] for category in document["categories"]}
    label_of = {annotation["image_id"]: column_of[annotation["category_id"]] for annotation in document["annotations"]}
    images = sorted(document["images"], key=lambda image: image["id"])
    missing = [image["file_name"] for image in images if image["id"] not in label_of]
    if missing:
        raise DatasetError(f"{annotation_file}: {len(missing)} image(s) without annotation, e.g. {missing[0]}")
    paths = [str(root / image["file_name"]) for image in images]
    targets = np.array([label_of[image["id"]] for image in images])
    return ImageListDataset("inat2018", split, paths, targets, [names[i] for i in category_ids], **options)


class ArrayImageDataset(ImageListDataset):
    """An ``ImageListDataset`` over decoded arrays (``core.image_arrays``); ``paths`` are ``<name>/<split>/<i>``."""

    def __init__(self, images: ImageArray, **options: Any) -> None:
        super().__init__(images.name, images.split, [images.item_name(i) for i in range(len(images))],
                         images.labels, list(images.classes), **options)
        self.images = images

    def load_image(self, index: int) -> tuple[Image.Image, bool]:
        return self.images[index], True


def _array_builder(name: str) -> Callable[..., ImageListDataset]:
    """Builder of CIFAR-10/100 (``train``/``test``) or STL-10 (``train``/``test``); ``root`` as torchvision's."""
    def build(root: Path, split: str, **options: Any) -> ImageListDataset:
        require_split(name, split, ("train", "test"))
        found = find_array_dataset(root)
        if found is None or found[0].name != name:
            raise DatasetError(f"{name} root {root} holds no {ARRAY_FORMATS[name].folder}/ folder")
        try:
            return ArrayImageDataset(load_array_split(found[1], split), **options)
        except ArrayDatasetError as error:
            raise DatasetError(str(error)) from None
    return build


def _image_folder(name: str, directory: Path, split: str, **options: Any) -> ImageListDataset:
    require_path(directory, f"{name} split '{split}' folder" if split else f"{name} folder")
    folder = tv_datasets.ImageFolder(str(directory))
    paths = [path for path, _ in folder.samples]
    return ImageListDataset(name, split, paths, np.array(folder.targets), list(folder.classes), **options)


def build_imagenet(root: Path, split: str, **options: Any) -> ImageListDataset:
    """ImageNet as ImageFolder ``root/{train,val}/<wnid>/*.JPEG``."""
    require_split("imagenet", split, ("train", "val"))
    return _image_folder("imagenet", root / split, split, **options)


def build_imagefolder(root: Path, split: str, **options: Any) -> ImageListDataset:
    """Any ImageFolder: ``root/<split>/<class>/*`` (or ``root/<class>/*`` when ``split`` is empty)."""
    return _image_folder("imagefolder", root / split if split else root, split, **options)


DATASETS: dict[str, Callable[..., ImageListDataset]] = {
    "voc2007": build_voc2007,
    "coco2014": build_coco2014,
    "places205": build_places205,
    "places365": build_places365,
    "inat2018": build_inat2018,
    "imagenet": build_imagenet,
    "imagefolder": build_imagefolder,
    **{name: _array_builder(name) for name in ("cifar10", "cifar100", "stl10")},
}


def build_dataset(name: str, root: str | Path, split: str, transform: Callable | None = None,
                  skip_unreadable: bool = False) -> ImageListDataset:
    """The ``split`` of data set ``name`` under ``root`` (see ``DATASETS``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    root = require_path(Path(root), f"{name} root")
    return DATASETS[name](root, split, transform=transform, skip_unreadable=skip_unreadable)


def subset_by_file_names(dataset: ImageListDataset, names_file: str | Path) -> ImageListDataset:
    """The images of ``dataset`` whose file names are listed in ``names_file`` (SimCLR ImageNet 1%/10% lists).

    An absent ``1percent.txt``/``10percent.txt`` is read from the lists shipped with the package.
    """
    try:
        wanted = read_subset_names(names_file)
    except FileNotFoundError as error:
        raise DatasetError(str(error)) from None
    index_of = {Path(path).name: index for index, path in enumerate(dataset.paths)}
    missing = [name for name in wanted if name not in index_of]
    if missing:
        raise DatasetError(f"{names_file}: {len(missing)} listed image(s) not in {dataset.name}/{dataset.split}, "
                           f"e.g. {missing[0]}")
    rows = [index_of[name] for name in wanted]
    return ImageListDataset(dataset.name, f"{dataset.split}-subset", [dataset.paths[i] for i in rows],
                            dataset.targets[rows], dataset.classes, dataset.transform, dataset.skip_unreadable)
