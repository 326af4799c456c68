"""Which datasets exist under a data root, in the on-disk layouts the transfer tasks read.

Each dataset is found by the files its loader needs (not just a folder name), so a half-copied
dataset is reported as missing with the first file that is absent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transfer.classification.subset_lists import SHIPPED_DIR


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset may sit under the data root and which files prove it is there."""

    folders: tuple[str, ...]
    required: tuple[str, ...]
    packaged: Path | None = None  # shipped with the package; stands in when no folder is complete


# Candidate folders are tried in order; the first with every required entry wins.
DATASET_LAYOUTS: dict[str, DatasetLayout] = {
    "voc2007": DatasetLayout(("VOCdevkit/VOC2007", "VOC2007"),
                             ("Annotations", "JPEGImages", "ImageSets/Main/trainval.txt", "ImageSets/Main/test.txt")),
    "voc2012": DatasetLayout(("VOCdevkit/VOC2012", "VOC2012"),
                             ("Annotations", "JPEGImages", "ImageSets/Main/trainval.txt")),
    "coco2014": DatasetLayout(("coco", "COCO"), ("annotations/instances_train2014.json",
                                                 "annotations/instances_val2014.json", "train2014", "val2014")),
    "coco2017": DatasetLayout(("coco", "COCO"), ("annotations/instances_train2017.json",
                                                 "annotations/instances_val2017.json", "train2017", "val2017")),
    "places205": DatasetLayout(("places205", "Places205"), ("trainvalsplit_places205/train_places205.csv",
                                                            "trainvalsplit_places205/val_places205.csv")),
    "places365": DatasetLayout(("places365", "Places365"), ("categories_places365.txt",
                                                            "places365_train_standard.txt", "places365_val.txt")),
    "inat2018": DatasetLayout(("inat2018", "iNaturalist2018", "inaturalist"), ("train2018.json", "val2018.json")),
    "imagenet": DatasetLayout(("imagenet", "ImageNet", "ILSVRC2012"), ("train", "val")),
    "imagenet_subsets": DatasetLayout(("imagenet/subsets", "ImageNet/subsets", "ILSVRC2012/subsets"),
                                      ("1percent.txt", "10percent.txt"), packaged=SHIPPED_DIR),
}


@dataclasses.dataclass(frozen=True)
class Discovery:
    """Outcome of looking for every dataset: the roots found and, for the others, why not."""

    found: dict[str, Path]
    missing: dict[str, str]


def find_dataset(data_root: Path, name: str) -> tuple[Path | None, str]:
    """Returns ``(root, "")`` for a complete dataset, else ``(None, reason naming the absent path)``."""
    layout = DATASET_LAYOUTS[name]
    reasons = []
    for folder in layout.folders:
        candidate = data_root / folder
        if not candidate.is_dir():
            continue
        absent = [entry for entry in layout.required if not (candidate / entry).exists()]
        if not absent:
            return candidate, ""
        reasons.append(f"{candidate / absent[0]} is missing")
    if layout.packaged is not None:
        return layout.packaged, ""
    if not reasons:
        tried = ", ".join(str(data_root / folder) for folder in layout.folders)
        reasons.append(f"none of {tried} exists")
    return None, "; ".join(reasons)


def discover(data_root: str | Path) -> Discovery:
    """Looks for every dataset of ``DATASET_LAYOUTS`` under ``data_root``."""
    data_root = Path(data_root)
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for name in DATASET_LAYOUTS:
        root, reason = find_dataset(data_root, name)
        if root is None:
            missing[name] = reason
        else:
            found[name] = root
    return Discovery(found=found, missing=missing)
