"""Datasets for detectron2 training: a user's VOC-layout or COCO-json data from the command line, the demo data,
and checks that every dataset a config names is registered and on disk before any training starts.

detectron2 registers its builtin VOC/COCO names at import, pointing under ``$DETECTRON2_DATASETS``
(default ``./datasets``), but only reads the files when training starts. Parsing here needs no
detectron2; registering and checking import it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

VOC_OPTION = "NAME=DIR:SPLIT[:YEAR]"
COCO_OPTION = "NAME=JSON:IMAGE_DIR"
_VOC_YEAR_IN_DIR = re.compile(r"VOC(2007|2012)")


class DatasetSetupError(ValueError):
    """A dataset option is malformed, a dataset is not registered, or its files are missing."""


@dataclasses.dataclass(frozen=True)
class VocDataset:
    """A Pascal VOC-layout split: ``dirname/{Annotations,JPEGImages,ImageSets/Main/<split>.txt}``.

    ``year`` 2007 selects the VOC07 11-point AP in ``PascalVOCDetectionEvaluator``.
    """

    name: str
    dirname: Path
    split: str
    year: int
    results_name: str | None = None  # the detectron2 builtin name it stands for in results (``voc_2007_test``)

    def required_paths(self) -> list[Path]:
        """Files and folders the split needs."""
        return [self.dirname / "Annotations", self.dirname / "JPEGImages",
                self.dirname / "ImageSets" / "Main" / f"{self.split}.txt"]

    def register(self) -> None:
        """Registers the split with detectron2's VOC loader and evaluator."""
        from detectron2.data import MetadataCatalog
        from detectron2.data.datasets.pascal_voc import register_pascal_voc

        register_pascal_voc(self.name, str(self.dirname), self.split, self.year)
        MetadataCatalog.get(self.name).evaluator_type = "pascal_voc"
        _set_results_name(self.name, self.results_name)


@dataclasses.dataclass(frozen=True)
class CocoDataset:
    """A COCO-format instances json with its image folder."""

    name: str
    json_file: Path
    image_root: Path
    results_name: str | None = None  # the detectron2 builtin name it stands for in results (``coco_2017_val``)

    def required_paths(self) -> list[Path]:
        """Files and folders the dataset needs."""
        return [self.json_file, self.image_root]

    def register(self) -> None:
        """Registers the dataset with detectron2's COCO loader and evaluator."""
        from detectron2.data.datasets import register_coco_instances

        register_coco_instances(self.name, {}, str(self.json_file), str(self.image_root))
        _set_results_name(self.name, self.results_name)


Dataset = VocDataset | CocoDataset


def _set_results_name(name: str, results_name: str | None) -> None:
    from detectron2.data import MetadataCatalog

    if results_name is not None:
        MetadataCatalog.get(name).results_name = results_name


def _split_name(text: str, option: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name or not value:
        raise DatasetSetupError(f"expected {option}, got '{text}'")
    return name, value


def parse_voc_option(text: str) -> VocDataset:
    """Parses ``NAME=DIR:SPLIT[:YEAR]``; YEAR defaults to the ``VOC2007``/``VOC2012`` in DIR, else 2007."""
    name, value = _split_name(text, VOC_OPTION)
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise DatasetSetupError(f"--register-voc expects {VOC_OPTION}, got '{text}'")
    dirname, split = Path(parts[0]), parts[1]
    if len(parts) == 3:
        if parts[2] not in ("2007", "2012"):
            raise DatasetSetupError(f"--register-voc '{text}': YEAR must be 2007 or 2012, got '{parts[2]}'")
        year = int(parts[2])
    else:
        match = _VOC_YEAR_IN_DIR.search(dirname.name)
        year = int(match.group(1)) if match else 2007
    return VocDataset(name, dirname, split, year)


def parse_coco_option(text: str) -> CocoDataset:
    """Parses ``NAME=JSON:IMAGE_DIR``."""
    name, value = _split_name(text, COCO_OPTION)
    json_file, separator, image_root = value.partition(":")
    if not separator or not json_file or not image_root:
        raise DatasetSetupError(f"--register-coco expects {COCO_OPTION}, got '{text}'")
    return CocoDataset(name, Path(json_file), Path(image_root))


def demo_datasets(root: str | Path) -> list[Dataset]:
    """The datasets of ``tools/make_demo_data.py ROOT`` under the names the instant-test configs use."""
    root = Path(root)
    voc, coco = root / "VOCdevkit", root / "coco"
    return [
        VocDataset("demo_voc_2007_trainval", voc / "VOC2007", "trainval", 2007),
        VocDataset("demo_voc_2007_test", voc / "VOC2007", "test", 2007),
        VocDataset("demo_voc_2012_trainval", voc / "VOC2012", "trainval", 2012),
        CocoDataset("demo_coco_2017_train", coco / "annotations" / "instances_train2017.json", coco / "train2017"),
        CocoDataset("demo_coco_2017_val", coco / "annotations" / "instances_val2017.json", coco / "val2017"),
    ]


# Registered by this process, so that registering the same dataset again (parent, then worker) is a no-op.
_REGISTERED: dict[str, Dataset] = {}


def register_datasets(datasets: Iterable[Dataset]) -> None:
    """Registers each dataset with detectron2 after checking its files exist; refuses names already in use."""
    from detectron2.data import DatasetCatalog

    for dataset in datasets:
        if _REGISTERED.get(dataset.name) == dataset:
            continue
        if dataset.name in DatasetCatalog.list():
            raise DatasetSetupError(f"dataset name '{dataset.name}' is already registered (a detectron2 builtin "
                                    "or an earlier option); choose another name")
        missing = [str(path) for path in dataset.required_paths() if not path.exists()]
        if missing:
            raise DatasetSetupError(f"dataset '{dataset.name}': missing {', '.join(missing)}")
        dataset.register()
        _REGISTERED[dataset.name] = dataset


def _metadata_paths(metadata: object) -> list[Path]:
    paths = [Path(getattr(metadata, key)) for key in ("json_file", "image_root", "dirname") if hasattr(metadata, key)]
    if hasattr(metadata, "dirname") and hasattr(metadata, "split"):
        paths.append(Path(metadata.dirname) / "ImageSets" / "Main" / f"{metadata.split}.txt")
    return paths


def check_datasets(names: Sequence[str]) -> None:
    """Raises ``DatasetSetupError`` naming the dataset and path when a dataset is unknown or not on disk."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    for name in names:
        if name not in DatasetCatalog.list():
            raise DatasetSetupError(
                f"dataset '{name}' is not registered: use a detectron2 builtin name (e.g. voc_2007_test, "
                f"coco_2017_val), --register-voc {VOC_OPTION}, --register-coco {COCO_OPTION}, or --demo-data DIR "
                "for the demo_* names")
        missing = [str(path) for path in _metadata_paths(MetadataCatalog.get(name)) if not path.exists()]
        if missing:
            hint = "" if name in _REGISTERED else (
                f" (builtin datasets live under DETECTRON2_DATASETS="
                f"{os.environ.get('DETECTRON2_DATASETS', 'unset, so ./datasets')}; see docs/detectron2.md)")
            raise DatasetSetupError(f"dataset '{name}': missing {', '.join(missing)}{hint}")


def class_count(metadata: object) -> int | None:
    """Number of classes of a registered dataset (``None`` when its metadata does not say)."""
    if getattr(metadata, "thing_classes", None):
        return len(metadata.thing_classes)
    json_file = getattr(metadata, "json_file", None)
    if json_file and Path(json_file).is_file():  # user COCO data: names are only set once loaded
        with open(json_file) as handle:
            return len(json.load(handle).get("categories", []))
    return None


def check_num_classes(names: Sequence[str], num_classes: int) -> None:
    """Refuses datasets whose class count differs from ``MODEL.ROI_HEADS.NUM_CLASSES``.

    detectron2 would otherwise fail only at evaluation, after training (COCO), or index out of range.
    """
    from detectron2.data import MetadataCatalog

    for name in names:
        count = class_count(MetadataCatalog.get(name))
        if count is not None and count != num_classes:
            raise DatasetSetupError(f"dataset '{name}' has {count} classes but MODEL.ROI_HEADS.NUM_CLASSES is "
                                    f"{num_classes}; set MODEL.ROI_HEADS.NUM_CLASSES {count}")
