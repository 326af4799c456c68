"""Detection datasets in PASCAL VOC (XML) and COCO (JSON) layouts, as torchvision detection targets.

Boxes follow detectron2's conventions so that both engines train and score on the same geometry:
VOC's 1-based inclusive pixel boxes become ``(xmin - 1, ymin - 1, xmax, ymax)`` in continuous
coordinates, and "difficult" objects are kept for training but ignored when scoring. COCO training
drops crowd annotations and images left without objects, as detectron2's loader does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from transfer.catalog import VOC_CLASSES, DatasetError
from transfer.detection.torchvision.config import DataConfig

@dataclass
class GroundTruth:
    """Annotations of one image, without its pixels (evaluation needs only these)."""

    image_id: int
    file_name: str
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float xyxy, continuous coordinates
    labels: np.ndarray  # (N,) int, 1..num_classes (0 is torchvision's background)
    difficult: np.ndarray  # (N,) bool; VOC "difficult" or COCO "iscrowd"
    coco_annotations: list[dict] | None = None  # raw COCO annotations, for masks


def split_source(source: str, root: str | Path) -> tuple[Path, str]:
    """``"A:B"`` -> (root / A, B); ``A`` may be absolute."""
    first, separator, second = source.rpartition(":")
    if not separator or not first or not second:
        raise DatasetError(f"dataset source '{source}' must have the form A:B (e.g. VOC2007:trainval or "
                           "annotations/instances_val2017.json:val2017)")
    return Path(root) / first, second


class DetectionDataset(torch.utils.data.Dataset):
    """Images and torchvision targets (``boxes``, ``labels``, optional ``masks``) of a list of records."""

    def __init__(self, records: list[GroundTruth], class_names: Sequence[str], with_masks: bool = False,
                 transform: Callable | None = None, category_ids: Sequence[int] | None = None) -> None:
        self.records = records
        self.class_names = list(class_names)
        self.with_masks = with_masks
        self.transform = transform
        self.category_ids = list(category_ids) if category_ids is not None else list(range(1, len(class_names) + 1))
        self.coco_api = None  # the pycocotools ground truth of a COCO test set

    def __len__(self) -> int:
        return len(self.records)

    def aspect_ratio_is_wide(self, index: int) -> bool:
        """Whether the image is at least as wide as tall (used to batch similar shapes together)."""
        record = self.records[index]
        return record.width >= record.height

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        record = self.records[index]
        try:
            with Image.open(record.file_name) as pil_image:
                image = pil_to_tensor(pil_image.convert("RGB")).float().div_(255)
        except OSError as error:
            raise DatasetError(f"cannot read image {record.file_name}: {error}") from error
        target = {
            "boxes": torch.as_tensor(record.boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.as_tensor(record.labels, dtype=torch.int64),
            "image_id": torch.tensor(record.image_id),
        }
        if self.with_masks:
            target["masks"] = torch.from_numpy(_coco_masks(record))
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


def _coco_masks(record: GroundTruth) -> np.ndarray:
    from pycocotools import mask as mask_utils

    masks = np.zeros((len(record.coco_annotations or []), record.height, record.width), dtype=np.uint8)
    for slot, annotation in enumerate(record.coco_annotations or []):
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, record.height, record.width))
        elif isinstance(segmentation["counts"], list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segmentation, record.height, record.width)
        else:
            rle = segmentation
        masks[slot] = mask_utils.decode(rle)
    return masks


def _xml_text(node: ElementTree.Element, tag: str, path: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise DatasetError(f"{path}: missing <{tag}>")
    return child.text.strip()


def parse_voc_annotation(path: Path, class_names: Sequence[str]) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(width, height, boxes, labels, difficult) of one VOC XML file."""
    if not path.is_file():
        raise DatasetError(f"VOC annotation file not found: {path}")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise DatasetError(f"{path} is not valid XML: {error}") from error
    size = root.find("size")
    if size is None:
        raise DatasetError(f"{path}: missing <size>")
    width, height = int(_xml_text(size, "width", path)), int(_xml_text(size, "height", path))
    boxes, labels, difficult = [], [], []
    for obj in root.findall("object"):
        name = _xml_text(obj, "name", path)
        if name not in class_names:
            raise DatasetError(f"{path}: class '{name}' is not one of data.class_names ({', '.join(class_names)})")
        box = obj.find("bndbox")
        if box is None:
            raise DatasetError(f"{path}: object '{name}' has no <bndbox>")
        xmin, ymin, xmax, ymax = (float(_xml_text(box, tag, path)) for tag in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append([xmin - 1.0, ymin - 1.0, xmax, ymax])
        labels.append(class_names.index(name) + 1)
        difficult_node = obj.find("difficult")
        difficult.append(difficult_node is not None and difficult_node.text is not None and int(difficult_node.text) == 1)
    return (width, height, np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(labels, dtype=np.int64), np.asarray(difficult, dtype=bool))


def voc_records(sources: Sequence[str], root: str | Path, class_names: Sequence[str], first_id: int = 0) -> list[GroundTruth]:
    """Records of VOC-layout splits: ``<year dir>/ImageSets/Main/<split>.txt`` lists the image ids."""
    records = []
    for source in sources:
        year_dir, split = split_source(source, root)
        split_file = year_dir / "ImageSets" / "Main" / f"{split}.txt"
        if not split_file.is_file():
            raise DatasetError(f"VOC split file not found: {split_file} (data.root={root}, source '{source}')")
        for name in split_file.read_text().split():
            width, height, boxes, labels, difficult = parse_voc_annotation(
                year_dir / "Annotations" / f"{name}.xml", class_names)
            records.append(GroundTruth(first_id + len(records), str(year_dir / "JPEGImages" / f"{name}.jpg"),
                                       width, height, boxes, labels, difficult))
    return records


def _load_coco_json(json_path: Path):
    from pycocotools.coco import COCO

    if not json_path.is_file():
        raise DatasetError(f"COCO annotation file not found: {json_path}")
    try:
        return COCO(str(json_path))
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{json_path} is not a COCO instances file: {error!r}") from error


def coco_records(source: str, root: str | Path, training: bool) -> tuple[list[GroundTruth], list[str], list[int], object]:
    """Records, class names, category ids (label ``i`` is ``category_ids[i - 1]``) and the COCO api."""
    json_path, image_dir_name = split_source(source, root)
    image_dir = Path(image_dir_name) if Path(image_dir_name).is_absolute() else Path(root) / image_dir_name
    if not image_dir.is_dir():
        raise DatasetError(f"COCO image directory not found: {image_dir} (source '{source}')")
    coco = _load_coco_json(json_path)
    category_ids = sorted(coco.getCatIds())
    class_names = [coco.cats[category_id]["name"] for category_id in category_ids]
    label_of = {category_id: label for label, category_id in enumerate(category_ids, start=1)}
    records = []
    for image_id in sorted(coco.getImgIds()):
        info = coco.imgs[image_id]
        annotations = [a for a in coco.imgToAnns.get(image_id, []) if a["bbox"][2] > 0 and a["bbox"][3] > 0]
        if training:
            annotations = [a for a in annotations if not a.get("iscrowd", 0)]
            if not annotations:
                continue
        boxes = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in annotations)],
                           dtype=np.float64).reshape(-1, 4)
        records.append(GroundTruth(
            image_id, str(image_dir / info["file_name"]), int(info["width"]), int(info["height"]), boxes,
            np.asarray([label_of[a["category_id"]] for a in annotations], dtype=np.int64),
            np.asarray([bool(a.get("iscrowd", 0)) for a in annotations], dtype=bool), annotations))
    return records, class_names, category_ids, coco


def build_dataset(data: DataConfig, training: bool, with_masks: bool, transform: Callable | None = None) -> DetectionDataset:
    """The training (``data.train``) or test (``data.test``) dataset of a ``DataConfig``."""
    if not Path(data.root).is_dir():
        raise DatasetError(f"dataset root not found: {data.root} (set data.root / --data-root)")
    sources = list(data.train) if training else [data.test]
    if data.format == "voc":
        class_names = list(data.class_names or VOC_CLASSES)
        dataset = DetectionDataset(voc_records(sources, data.root, class_names), class_names, False, transform)
    else:
        dataset = _coco_dataset(sources, data.root, training, with_masks, transform)
    if not len(dataset):
        raise DatasetError(f"no {'annotated ' if training else ''}images in {', '.join(sources)} under {data.root}")
    return dataset


def _coco_dataset(sources: Sequence[str], root: str, training: bool, with_masks: bool,
                  transform: Callable | None) -> DetectionDataset:
    records, class_names, category_ids = [], None, None
    for source in sources:
        source_records, names, ids, coco = coco_records(source, root, training)
        if category_ids is not None and ids != category_ids:
            raise DatasetError(f"COCO source '{source}' has other categories than '{sources[0]}'")
        class_names, category_ids = names, ids
        records.extend(source_records)
    if len(sources) > 1:  # image ids may repeat across files: renumber (training only reads pixels and targets)
        for new_id, record in enumerate(records):
            record.image_id = new_id
    dataset = DetectionDataset(records, class_names, with_masks, transform, category_ids)
    if not training:
        dataset.coco_api = coco
    return dataset
