"""COCO 2017 and 2014 instance annotations (train/val) with polygon masks, for pycocotools/detectron2."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from .render import SceneObject, detection_scene, save_jpeg
from .shapes import COCO_CATEGORIES, SHAPES, polygon_area
from .spec import DemoSpec, rng_for

# (year, split, fraction of spec.scene_count()).
COCO_SETS: tuple[tuple[str, str, float], ...] = (
    ("2017", "train", 1.0),
    ("2017", "val", 0.5),
    ("2014", "train", 1.0),
    ("2014", "val", 0.5),
)


def image_file_name(year: str, split: str, image_id: int) -> str:
    """Official naming: ``000000000042.jpg`` (2017), ``COCO_val2014_000000000042.jpg`` (2014)."""
    return f"{image_id:012d}.jpg" if year == "2017" else f"COCO_{split}{year}_{image_id:012d}.jpg"


def annotation_record(annotation_id: int, image_id: int, scene_object: SceneObject) -> dict:
    """One instance: polygon segmentation, tight ``[x, y, w, h]`` box of the polygon, polygon area."""
    x_min, y_min, x_max, y_max = scene_object.extent()
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": COCO_CATEGORIES[scene_object.shape][0],
        "segmentation": [[coordinate for point in scene_object.polygon for coordinate in point]],
        "area": round(polygon_area(scene_object.polygon), 2),
        "bbox": [x_min, y_min, round(x_max - x_min, 2), round(y_max - y_min, 2)],
        "iscrowd": 0,
    }


def categories() -> list[dict]:
    """The used COCO categories (real ids and names), sorted by id."""
    entries = [{"supercategory": s, "id": i, "name": n} for i, n, s in COCO_CATEGORIES.values()]
    return sorted(entries, key=lambda entry: entry["id"])


def write_coco(out: Path, spec: DemoSpec) -> str:
    """``coco/{train,val}{2017,2014}/*.jpg`` and ``coco/annotations/instances_<split><year>.json``.

    Image ids are unique within a year (val ids follow train ids); annotation ids start at 1.
    """
    root = out / "coco"
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    first_image_id = {"2017": 1, "2014": 1}
    summaries = []
    for year, split, fraction in COCO_SETS:
        images, annotations = [], []
        count = spec.scene_count(fraction)
        for index in tqdm(range(count), desc=f"coco/{split}{year}", unit="img", leave=False):
            image_id = first_image_id[year] + index
            rng = rng_for(spec, f"coco{year}/{split}", index)
            image, objects = detection_scene(rng, spec.detection_size, SHAPES[index % len(SHAPES)])
            file_name = image_file_name(year, split, image_id)
            save_jpeg(image, root / f"{split}{year}" / file_name)
            size = spec.detection_size
            images.append({"id": image_id, "file_name": file_name, "width": size, "height": size, "license": 1})
            for scene_object in objects:
                annotations.append(annotation_record(len(annotations) + 1, image_id, scene_object))
        first_image_id[year] += count
        document = {
            "info": {"description": "Barlow Twins demo data: generated shapes in the COCO layout", "year": int(year)},
            "licenses": [{"id": 1, "name": "CC0 1.0 (generated data)", "url": ""}],
            "images": images,
            "annotations": annotations,
            "categories": categories(),
        }
        (root / "annotations" / f"instances_{split}{year}.json").write_text(json.dumps(document))
        summaries.append(f"{split}{year} {len(images)} images/{len(annotations)} instances")
    return f"coco: {', '.join(summaries)}; categories {[entry['name'] for entry in categories()]}"
