"""Pascal VOC 2007 (train/val/trainval/test) and 2012 (train/val/trainval) in the devkit layout.

Objects use real VOC class names (``shapes.VOC_NAMES``) so torchvision's ``VOCDetection``,
detectron2's ``load_voc_instances`` and the VOC07 evaluation code read the data unchanged.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from .render import SceneObject, detection_scene, save_jpeg
from .shapes import SHAPES, VOC_CLASSES, VOC_NAMES
from .spec import DemoSpec, rng_for

DIFFICULT_RATE = 0.15
# Every DIFFICULT_ONLY_PERIOD-th image has all instances of its first object's class marked
# difficult, so the per-class "0" label (difficult instances only) always occurs.
DIFFICULT_ONLY_PERIOD = 7


def voc_box(scene_object: SceneObject, width: int, height: int) -> tuple[int, int, int, int]:
    """Inclusive 1-based pixel box covering the outline: pixel ``i`` spans ``[i, i+1)``."""
    x_min, y_min, x_max, y_max = scene_object.extent()
    return (
        max(1, math.floor(x_min) + 1),
        max(1, math.floor(y_min) + 1),
        min(width, math.ceil(x_max)),
        min(height, math.ceil(y_max)),
    )


def annotation_xml(year: str, image_id: str, size: int, objects: list[SceneObject]) -> str:
    """The ``Annotations/<id>.xml`` document of one image."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = f"VOC{year}"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = "Barlow Twins demo data (generated shapes)"
    ET.SubElement(source, "annotation").text = f"PASCAL VOC{year}"
    size_node = ET.SubElement(root, "size")
    for key, value in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(size_node, key).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for scene_object in objects:
        node = ET.SubElement(root, "object")
        ET.SubElement(node, "name").text = VOC_NAMES[scene_object.shape]
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = "0"
        ET.SubElement(node, "difficult").text = str(int(scene_object.difficult))
        box = ET.SubElement(node, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), voc_box(scene_object, size, size)):
            ET.SubElement(box, key).text = str(value)
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def class_label(objects: list[SceneObject], voc_class: str) -> int:
    """Devkit image label for one class: 1 any non-difficult instance, 0 only difficult ones, -1 none."""
    flags = [o.difficult for o in objects if VOC_NAMES[o.shape] == voc_class]
    if not flags:
        return -1
    return 0 if all(flags) else 1


def _write_scenes(devkit: Path, spec: DemoSpec, year: str, image_ids: list[str]) -> dict[str, list[SceneObject]]:
    """Renders and writes the images and XML of ``image_ids``; returns their objects by id."""
    scenes: dict[str, list[SceneObject]] = {}
    for index, image_id in enumerate(tqdm(image_ids, desc=f"voc{year}", unit="img", leave=False)):
        first_shape = SHAPES[index % len(SHAPES)]
        rng = rng_for(spec, f"voc{year}", index)
        image, objects = detection_scene(rng, spec.detection_size, first_shape, DIFFICULT_RATE)
        if index % DIFFICULT_ONLY_PERIOD == DIFFICULT_ONLY_PERIOD // 2:
            objects = [replace(o, difficult=True) if o.shape == first_shape else o for o in objects]
        save_jpeg(image, devkit / "JPEGImages" / f"{image_id}.jpg")
        xml_path = devkit / "Annotations" / f"{image_id}.xml"
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        xml_path.write_text(annotation_xml(year, image_id, spec.detection_size, objects))
        scenes[image_id] = objects
    return scenes


def _write_image_sets(devkit: Path, splits: dict[str, list[str]], scenes: dict[str, list[SceneObject]]) -> None:
    """``ImageSets/Main/<split>.txt`` and ``<class>_<split>.txt`` (``"%s %2d"`` lines) for all 20 classes."""
    main = devkit / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    for split, image_ids in splits.items():
        (main / f"{split}.txt").write_text("".join(f"{image_id}\n" for image_id in image_ids))
        for voc_class in VOC_CLASSES:
            lines = (f"{image_id} {class_label(scenes[image_id], voc_class):2d}\n" for image_id in image_ids)
            (main / f"{voc_class}_{split}.txt").write_text("".join(lines))


def _split_trainval(image_ids: list[str]) -> dict[str, list[str]]:
    """Alternate images go to train and val, as VOC interleaves its ids."""
    return {"train": image_ids[0::2], "val": image_ids[1::2], "trainval": image_ids}


def write_voc(out: Path, spec: DemoSpec) -> str:
    """``VOCdevkit/VOC2007`` (ids ``000001``..., test ids after trainval) and ``VOCdevkit/VOC2012``
    (ids ``2012_000001``...), each with ``JPEGImages``, ``Annotations`` and ``ImageSets/Main``.
    """
    trainval_count, test_count = spec.scene_count(), spec.scene_count()
    ids_2007 = [f"{n:06d}" for n in range(1, trainval_count + test_count + 1)]
    splits_2007 = {**_split_trainval(ids_2007[:trainval_count]), "test": ids_2007[trainval_count:]}
    devkit_2007 = out / "VOCdevkit" / "VOC2007"
    _write_image_sets(devkit_2007, splits_2007, _write_scenes(devkit_2007, spec, "2007", ids_2007))

    ids_2012 = [f"2012_{n:06d}" for n in range(1, spec.scene_count() + 1)]
    devkit_2012 = out / "VOCdevkit" / "VOC2012"
    _write_image_sets(devkit_2012, _split_trainval(ids_2012), _write_scenes(devkit_2012, spec, "2012", ids_2012))
    return (
        f"voc: VOC2007 {trainval_count} trainval + {test_count} test images, "
        f"VOC2012 {len(ids_2012)} trainval images; shapes as VOC classes {sorted(VOC_NAMES.values())}"
    )
