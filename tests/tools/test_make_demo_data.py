"""Demo data must be readable by the real dataset tooling (torchvision, pycocotools) and deterministic."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.datasets import ImageFolder, Places365, VOCDetection

TOOL_PATH = Path(__file__).resolve().parents[2] / "tools" / "make_demo_data.py"
_spec = importlib.util.spec_from_file_location("make_demo_data", TOOL_PATH)
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

SHAPES = ["circle", "cross", "square", "star", "triangle"]
VOC_CLASSES = (
    "aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person "
    "pottedplant sheep sofa train tvmonitor"
).split()
PER_CLASS, SIZE, SEED = 4, 64, 3

# pycocotools' mask decoding trips a NumPy 2 copy-keyword deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    tool.make_demo_data(out, images_per_class=PER_CLASS, size=SIZE, seed=SEED)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_imagefolder_has_the_five_classes(demo: Path) -> None:
    for split, count in (("train", PER_CLASS), ("val", PER_CLASS // 2)):
        dataset = ImageFolder(str(demo / "imagefolder" / split))
        assert dataset.classes == SHAPES
        assert np.bincount(dataset.targets).tolist() == [count] * 5
        image, label = dataset[len(dataset) - 1]
        assert image.size == (SIZE, SIZE) and label == 4
    assert sorted(p.suffix for p in (demo / "unlabeled").iterdir()) == [".jpg"] * 5 * PER_CLASS


def _voc_objects(xml_path: Path) -> list[tuple[str, int]]:
    """(name, difficult) of every object, read with the standard library only."""
    root = ET.parse(xml_path).getroot()
    return [(obj.findtext("name"), int(obj.findtext("difficult"))) for obj in root.iter("object")]


def test_voc2007_test_parses_with_torchvision(demo: Path) -> None:
    dataset = VOCDetection(str(demo), year="2007", image_set="test")
    assert len(dataset) == 5 * PER_CLASS
    detection_size = round(SIZE * 1.5)
    for index in range(len(dataset)):
        image, target = dataset[index]
        annotation = target["annotation"]
        declared_size = (int(annotation["size"]["width"]), int(annotation["size"]["height"]))
        assert image.size == declared_size == (detection_size, detection_size)
        assert 1 <= len(annotation["object"]) <= 3
        for obj in annotation["object"]:
            assert obj["name"] in VOC_CLASSES and obj["pose"] and obj["truncated"] == "0"
            box = [int(obj["bndbox"][key]) for key in ("xmin", "ymin", "xmax", "ymax")]
            assert 1 <= box[0] < box[2] <= detection_size and 1 <= box[1] < box[3] <= detection_size
            assert min(box[2] - box[0], box[3] - box[1]) >= 8  # not tiny


@pytest.mark.parametrize("year, splits", [("2007", ["train", "val", "trainval", "test"]), ("2012", ["trainval"])])
def test_voc_per_class_files_follow_the_devkit_semantics(demo: Path, year: str, splits: list[str]) -> None:
    devkit = demo / "VOCdevkit" / f"VOC{year}"
    main = devkit / "ImageSets" / "Main"
    seen_labels = set()
    for split in splits:
        ids = (main / f"{split}.txt").read_text().split()
        for voc_class in VOC_CLASSES:
            lines = (main / f"{voc_class}_{split}.txt").read_text().splitlines()
            assert [line.split()[0] for line in lines] == ids
            for line in lines:
                match = re.fullmatch(r"(\S+) ( 1|-1| 0)", line)
                assert match, f"bad line {line!r} in {voc_class}_{split}.txt"
                objects = _voc_objects(devkit / "Annotations" / f"{match[1]}.xml")
                flags = [difficult for name, difficult in objects if name == voc_class]
                expected = -1 if not flags else (1 if 0 in flags else 0)
                assert int(match[2]) == expected
                seen_labels.add(expected)
    assert seen_labels == {-1, 0, 1}
    if year == "2007":
        split_ids = {split: set((main / f"{split}.txt").read_text().split()) for split in splits}
        assert split_ids["train"] | split_ids["val"] == split_ids["trainval"]
        assert not split_ids["train"] & split_ids["val"] and not split_ids["trainval"] & split_ids["test"]


COCO_SETS = ["train2017", "val2017", "train2014", "val2014"]


@pytest.mark.parametrize("name", COCO_SETS)
def test_coco_annotations_load_and_match_the_images(demo: Path, name: str) -> None:
    coco = COCO(str(demo / "coco" / "annotations" / f"instances_{name}.json"))
    cats = {cat["id"]: cat["name"] for cat in coco.loadCats(coco.getCatIds())}
    assert cats == {5: "airplane", 28: "umbrella", 37: "sports ball", 38: "kite", 72: "tv"}
    assert set(coco.dataset) >= {"info", "licenses", "images", "annotations", "categories"}
    for image_info in coco.loadImgs(coco.getImgIds()):
        if name.endswith("2014"):
            assert image_info["file_name"] == f"COCO_{name}_{image_info['id']:012d}.jpg"
        pixels = np.asarray(Image.open(demo / "coco" / name / image_info["file_name"]), dtype=np.float32)
        assert pixels.shape == (image_info["height"], image_info["width"], 3)
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=image_info["id"])):
            assert annotation["iscrowd"] == 0
            mask = coco.annToMask(annotation).astype(bool)
            rle = mask_utils.frPyObjects(annotation["segmentation"], image_info["height"], image_info["width"])
            # Thin star tips may miss the pixel grid: the raster box lies inside the annotated box, nearly filling it.
            x, y, w, h = annotation["bbox"]
            raster_x, raster_y, raster_w, raster_h = mask_utils.toBbox(rle)[0]
            assert x - 1 <= raster_x and raster_x + raster_w <= x + w + 1
            assert y - 1 <= raster_y and raster_y + raster_h <= y + h + 1
            assert raster_w * raster_h >= 0.7 * w * h
            perimeter = 2 * (annotation["bbox"][2] + annotation["bbox"][3])
            assert abs(mask.sum() - annotation["area"]) <= perimeter  # rasterisation error lives on the boundary
            # The mask sits on the drawn shape: one flat colour plus pixel noise inside.
            inner = mask & np.roll(mask, 2, 0) & np.roll(mask, -2, 0) & np.roll(mask, 2, 1) & np.roll(mask, -2, 1)
            assert pixels[inner].std(axis=0).max() < 25


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_cocoeval_of_ground_truth_as_detections_is_perfect(demo: Path, iou_type: str) -> None:
    gt = COCO(str(demo / "coco" / "annotations" / "instances_val2017.json"))
    # Segmentation results are RLEs, as detectors write them.
    detections = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0}
        | ({"bbox": a["bbox"]} if iou_type == "bbox" else {"segmentation": gt.annToRLE(a)})
        for a in gt.dataset["annotations"]
    ]
    evaluator = COCOeval(gt, gt.loadRes(detections), iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


class _Places365NoChecksum(Places365):
    """torchvision checks the official md5 of the list files, which generated lists cannot match."""

    def _check_integrity(self, file: str, md5: str, download: bool) -> bool:
        assert Path(file).is_file(), file
        return True


@pytest.mark.parametrize("split, per_class", [("train-standard", PER_CLASS), ("val", PER_CLASS // 2)])
def test_places365_loads_with_torchvision(demo: Path, split: str, per_class: int) -> None:
    dataset = _Places365NoChecksum(str(demo / "places365"), split=split, small=True, download=False)
    assert dataset.classes == [f"/{shape[0]}/{shape}" for shape in SHAPES]
    assert np.bincount(dataset.targets).tolist() == [per_class] * 5
    image, label = dataset[0]
    assert image.size == (SIZE, SIZE) and label == 0


def test_places205_lists_point_at_category_folders(demo: Path) -> None:
    for split, per_class in (("train", PER_CLASS), ("val", PER_CLASS // 2)):
        lines = (demo / "places205" / "trainvalsplit_places205" / f"{split}_places205.csv").read_text().splitlines()
        labels = []
        for line in lines:
            relative, label = line.split()
            letter, category, _file = relative.split("/")
            assert (letter, category) == (SHAPES[int(label)][0], SHAPES[int(label)])
            assert (demo / "places205" / "images" / relative).is_file()
            labels.append(int(label))
        assert np.bincount(labels).tolist() == [per_class] * 5


def test_inat2018_json_matches_the_image_tree(demo: Path) -> None:
    image_ids = []
    for split in ("train", "val"):
        document = json.loads((demo / "inat2018" / f"{split}2018.json").read_text())
        categories = {cat["id"]: cat for cat in document["categories"]}
        assert [categories[i]["name"] for i in sorted(categories)] == SHAPES
        files = {image["id"]: image["file_name"] for image in document["images"]}
        image_ids += list(files)
        for annotation in document["annotations"]:
            category = categories[annotation["category_id"]]
            top, supercategory, category_id, _name = files[annotation["image_id"]].split("/")
            expected = ("train_val2018", category["supercategory"], str(category["id"]))
            assert (top, supercategory, category_id) == expected
            assert (demo / "inat2018" / files[annotation["image_id"]]).is_file()
    assert len(image_ids) == len(set(image_ids)) == 5 * (PER_CLASS + PER_CLASS // 2)


def test_imagenet_folders_and_nested_subsets(demo: Path) -> None:
    train = ImageFolder(str(demo / "imagenet" / "train"))
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid in train.classes) and len(train.classes) == 5
    assert ImageFolder(str(demo / "imagenet" / "val")).classes == train.classes
    train_names = {Path(path).name: Path(path).parent.name for path, _ in train.samples}
    subsets = {
        name: (demo / "imagenet" / "subsets" / f"{name}.txt").read_text().split() for name in ("1percent", "10percent")
    }
    assert set(subsets["1percent"]) < set(subsets["10percent"]) <= set(train_names)
    assert {train_names[name] for name in subsets["1percent"]} == set(train.classes)
    assert all(name.startswith(train_names[name] + "_") for name in subsets["10percent"])


CHECKED_FILES = [
    "imagefolder/train/star/star_0001.jpg",
    "VOCdevkit/VOC2007/JPEGImages/000003.jpg",
    "VOCdevkit/VOC2007/Annotations/000003.xml",
]


def test_same_seed_same_bytes_other_seed_other_bytes(demo: Path, tmp_path: Path) -> None:
    # Only some layouts: images do not depend on which other layouts are generated.
    for name, seed in (("same", SEED), ("other", SEED + 1)):
        tool.make_demo_data(tmp_path / name, PER_CLASS, SIZE, seed, layouts=["imagefolder", "voc"])
    for relative in CHECKED_FILES:
        assert sha256(tmp_path / "same" / relative) == sha256(demo / relative), relative
        assert sha256(tmp_path / "other" / relative) != sha256(demo / relative), relative


def test_refuses_a_foreign_non_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(tool.DemoDataError, match="not created by make_demo_data"):
        tool.make_demo_data(foreign, layouts=["unlabeled"])
    assert tool.main([str(foreign), "--layouts", "unlabeled"]) == 2
    assert "refusing" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["precious.txt"]


def test_regenerates_its_own_directory_and_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ours"
    assert tool.main([str(out), "--images-per-class", "2", "--size", "32", "--layouts", "unlabeled"]) == 0
    (out / "stale.txt").write_text("from an older run")
    assert tool.main([str(out), "--images-per-class", "2", "--size", "32", "--layouts", "imagefolder"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".demo_data", "README.txt", "imagefolder"]
    assert "imagefolder:" in capsys.readouterr().out
    assert tool.main([str(tmp_path / "x"), "--layouts", "voc,mnist"]) == 2
    assert "mnist" in capsys.readouterr().err
    assert tool.main([str(tmp_path / "y"), "--images-per-class", "1"]) == 2
