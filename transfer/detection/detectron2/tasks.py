"""The pieces of a detectron2 task run: datasets under a data root, config files and the values they set, and
the options that give a run its task's datasets and masks and the backbone arch's trunk. Plain data and YAML
reading; no detectron2 import. Which task uses which is said by its ``Detectron2Runner`` (``runner.py``).

``train_net`` turns these into detectron2 ``KEY VALUE`` options, applied after the config file and before the
caller's overrides.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import yaml

from core.config import ConfigError, resolve_config_file, shipped_config_dir

from transfer.detection import UnsupportedBackboneError
from transfer.detection.detectron2.layout import ConversionError, ResNetLayout, resnet_layout
from transfer.detection.detectron2.datasets import CocoDataset, Dataset, VocDataset

logger = logging.getLogger(__name__)
DatasetsBuilder = Callable[[Path], tuple[list[Dataset], Dataset]]  # data root -> (train, test)

CONFIG_DIR = shipped_config_dir(__file__)
FPN_BACKBONE = "build_resnet_fpn_backbone"
DETECTRON2_DEFAULT_BACKBONE = "build_resnet_backbone"  # detectron2/config/defaults.py: a C4 trunk

# The FPN config of the same schedule and input sizes as a C4 one, for ResNet-18/34: detectron2 builds
# BasicBlock trunks only as FPN backbones (its C4 ROI head always makes a bottleneck res5 stage).
# The task's datasets, class count and MASK_ON replace the FPN config's own.
FPN_COUNTERPARTS: dict[str, str] = {
    "quick_schedules/voc0712_faster_rcnn_R_50_C4_instant_test.yaml":
        "quick_schedules/coco_mask_rcnn_R_50_FPN_instant_test.yaml",
    "quick_schedules/coco_mask_rcnn_R_50_C4_instant_test.yaml":
        "quick_schedules/coco_mask_rcnn_R_50_FPN_instant_test.yaml",
    "coco_mask_rcnn_R_50_C4_1x.yaml": "coco_mask_rcnn_R_50_FPN_1x.yaml",
}


def _rooted(builtin: str, root: Path) -> str:
    # Own names (detectron2's builtins point under $DETECTRON2_DATASETS); the root keeps them unique per folder.
    return f"{builtin}@{root}"


def voc0712_datasets(root: Path) -> tuple[list[Dataset], Dataset]:
    """VOC07+12: ``root`` is a ``VOCdevkit`` holding ``VOC2007`` (trainval, test) and ``VOC2012`` (trainval)."""
    root = root.resolve()
    train: list[Dataset] = [
        VocDataset(_rooted(f"voc_{year}_trainval", root), root / f"VOC{year}", "trainval", year,
                   f"voc_{year}_trainval") for year in (2007, 2012)]
    return train, VocDataset(_rooted("voc_2007_test", root), root / "VOC2007", "test", 2007, "voc_2007_test")


def coco2017_datasets(root: Path) -> tuple[list[Dataset], Dataset]:
    """COCO 2017: ``root`` holds ``train2017/``, ``val2017/`` and ``annotations/instances_{train,val}2017.json``."""
    root = root.resolve()
    train, test = (CocoDataset(_rooted(f"coco_2017_{split}", root),
                               root / "annotations" / f"instances_{split}2017.json", root / f"{split}2017",
                               f"coco_2017_{split}") for split in ("train", "val"))
    return [train], test


VOC_ROOT = "a VOCdevkit folder holding VOC2007 (trainval, test) and VOC2012 (trainval)"
COCO_ROOT = "a coco folder holding train2017/, val2017/ and annotations/instances_{train,val}2017.json"


def resolve_config_path(config_file: str | Path) -> Path:
    """``config_file`` as given, else the shipped config of that name (``core.config.resolve_config_file``)."""
    try:
        return resolve_config_file(config_file, CONFIG_DIR).resolve()
    except ConfigError as error:
        raise FileNotFoundError(f"detectron2 {error}") from None


def config_value(config_path: Path, key: str, default: Any = None) -> Any:
    """The value of ``key`` (``SOLVER.MAX_ITER``) after the ``_BASE_`` chain (a child's value wins), as detectron2
    resolves it; ``default`` (detectron2's own default) when no file of the chain sets it."""
    data = yaml.safe_load(config_path.read_text()) or {}
    section: Any = data
    for part in key.split("."):
        section = section.get(part) if isinstance(section, dict) else None
    if section is not None:
        return section
    base = data.get("_BASE_")
    if not base or "://" in base:
        return default
    return config_value((config_path.parent / Path(base).expanduser()).resolve(), key, default)


def backbone_name(config_path: Path) -> str:
    """``MODEL.BACKBONE.NAME`` after the ``_BASE_`` chain, as detectron2 resolves it."""
    return config_value(config_path, "MODEL.BACKBONE.NAME", DETECTRON2_DEFAULT_BACKBONE)


def _layout(arch: str) -> ResNetLayout:
    try:
        return resnet_layout(arch)
    except ConversionError as error:
        raise UnsupportedBackboneError(str(error)) from None


def arch_options(arch: str) -> list[str]:
    """detectron2 options building ``arch``'s trunk: its depth, and the 64-channel res2 of BasicBlock ResNets."""
    layout = _layout(arch)
    options = ["MODEL.RESNETS.DEPTH", str(layout.depth)]
    if not layout.bottleneck:
        options += ["MODEL.RESNETS.RES2_OUT_CHANNELS", "64"]
    return options


def model_config(protocol_config: str, config_file: str | Path | None, arch: str) -> Path:
    """The config to run: ``config_file`` (default: the task's ``protocol_config``, relative to ``CONFIG_DIR``), or
    for ResNet-18/34 its FPN counterpart when it is a C4 config. ``UnsupportedBackboneError`` when there is none."""
    path = resolve_config_path(config_file if config_file is not None else CONFIG_DIR / protocol_config)
    if _layout(arch).bottleneck or backbone_name(path) == FPN_BACKBONE:
        return path
    relative = path.relative_to(CONFIG_DIR.resolve()).as_posix() if path.is_relative_to(CONFIG_DIR.resolve()) else None
    if relative not in FPN_COUNTERPARTS:
        raise UnsupportedBackboneError(
            f"detectron2 builds {arch} (BasicBlock) only as an FPN backbone: its C4 ROI head always makes a bottleneck "
            f"res5 stage, which {arch} does not have, and the C4 config {path} has no FPN counterpart here; pass an "
            f"FPN config_file (e.g. {CONFIG_DIR / 'coco_mask_rcnn_R_50_FPN_1x.yaml'}); the task sets its datasets, "
            "classes and masks")
    counterpart = CONFIG_DIR / FPN_COUNTERPARTS[relative]
    logger.warning("%s needs an FPN backbone in detectron2: running %s instead of the C4 config %s",
                   arch, counterpart, path)
    return counterpart


def task_options(mask_on: bool, train: list[str], test: str, num_classes: int | None) -> list[str]:
    """detectron2 options giving the run the task's datasets, class count and masks."""
    options = ["DATASETS.TRAIN", repr(tuple(train)), "DATASETS.TEST", repr((test,)), "MODEL.MASK_ON", str(mask_on)]
    if num_classes is not None:
        options += ["MODEL.ROI_HEADS.NUM_CLASSES", str(num_classes)]
    return options
