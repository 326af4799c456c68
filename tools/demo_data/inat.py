"""iNaturalist 2018: COCO-style ``train2018.json`` / ``val2018.json`` and images under ``train_val2018/``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .folders import SPLITS, labelled_images
from .render import save_jpeg
from .shapes import SHAPES
from .spec import DemoSpec

# Two supercategories, like iNat's "Plantae"/"Aves" grouping, so code relying on them is exercised.
SUPERCATEGORIES: dict[str, str] = {shape: ("Curves" if shape == "circle" else "Polygons") for shape in SHAPES}


def write_inat2018(out: Path, spec: DemoSpec) -> str:
    """``inat2018/train_val2018/<supercategory>/<category_id>/<hex>.jpg`` plus the two JSON files.

    Images carry ``file_name`` relative to ``inat2018/``; each image has exactly one annotation;
    category ids are the class indices; image and annotation ids are unique across both splits.
    """
    root = out / "inat2018"
    categories = [
        {"id": label, "name": shape, "supercategory": SUPERCATEGORIES[shape]} for label, shape in enumerate(SHAPES)
    ]
    next_id, counts = 0, {}
    for split in SPLITS:
        images, annotations = [], []
        for label, index, image in labelled_images(spec, "inat2018", split):
            digest = hashlib.md5(f"inat2018/{split}/{SHAPES[label]}/{index}".encode()).hexdigest()
            file_name = f"train_val2018/{SUPERCATEGORIES[SHAPES[label]]}/{label}/{digest}.jpg"
            save_jpeg(image, root / file_name)
            size = spec.size
            images.append({"id": next_id, "file_name": file_name, "width": size, "height": size, "license": 0})
            annotations.append({"id": next_id, "image_id": next_id, "category_id": label})
            next_id += 1
        document = {
            "info": {"description": "Barlow Twins demo data: generated shapes in the iNat 2018 layout", "year": 2018},
            "licenses": [{"id": 0, "name": "CC0 1.0 (generated data)", "url": ""}],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        (root / f"{split}2018.json").write_text(json.dumps(document))
        counts[split] = len(images)
    return f"inat2018: {counts['train']} train + {counts['val']} val images, {len(SHAPES)} categories"
