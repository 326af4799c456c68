"""Data set builders: VOC 1/0/-1 labels from the XML, COCO/iNat labels from their JSON, Places lists, ImageNet
subsets, and clear errors for missing roots, splits, files, malformed lists and unreadable images."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import PILToTensor

from transfer.classification.datasets import (DATASETS, VOC_CLASSES, DatasetError, ItemsWithPath, UnreadableImageError,
                                              build_dataset, subset_by_file_names, voc_image_labels)


def write_voc(root: Path, objects_per_image: dict[str, list[tuple[str, int]]], split: str = "trainval") -> Path:
    voc = root / "VOCdevkit" / "VOC2007"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    for image_id, objects in objects_per_image.items():
        body = "".join(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                       f"<difficult>{difficult}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
                       f"<ymax>5</ymax></bndbox></object>" for name, difficult in objects)
        (voc / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename><size><width>8</width><height>8</height>"
            f"<depth>3</depth></size>{body}</annotation>")
        Image.new("RGB", (8, 8), (200, 10, 10)).save(voc / "JPEGImages" / f"{image_id}.jpg")
    (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in objects_per_image))
    return voc


def test_voc_labels_present_absent_difficult(tmp_path):
    voc = write_voc(tmp_path, {
        "000001": [("dog", 0), ("dog", 1), ("cat", 1)],  # dog present (one non-difficult), cat difficult only
        "000002": [("person", 1), ("person", 1)],        # person difficult only
        "000003": [],                                    # nothing
    })
    dataset = build_dataset("voc2007", voc, "trainval")
    expected = np.zeros((3, 20), dtype=int)
    expected[0, VOC_CLASSES.index("dog")] = 1
    expected[0, VOC_CLASSES.index("cat")] = -1
    expected[1, VOC_CLASSES.index("person")] = -1
    np.testing.assert_array_equal(dataset.targets, expected)
    image, target, ok = dataset[0]
    assert ok and image.size == (8, 8) and target[VOC_CLASSES.index("dog")] == 1


def test_voc_unknown_class_is_an_error(tmp_path):
    voc = write_voc(tmp_path, {"000001": [("unicorn", 0)]})
    with pytest.raises(DatasetError, match="unicorn"):
        voc_image_labels(voc / "Annotations" / "000001.xml")


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_root_names_the_path(tmp_path, name):
    with pytest.raises(DatasetError, match=str(tmp_path / "nowhere")):
        build_dataset(name, tmp_path / "nowhere", "train")


def test_missing_split_names_the_path(tmp_path):
    voc = write_voc(tmp_path, {"000001": []})
    with pytest.raises(DatasetError, match=r"ImageSets/Main/test\.txt"):
        build_dataset("voc2007", voc, "test")
    (tmp_path / "imagenet").mkdir()
    with pytest.raises(DatasetError, match="unknown split 'testing'"):
        build_dataset("imagenet", tmp_path / "imagenet", "testing")
    with pytest.raises(DatasetError, match=r"imagenet/val"):
        build_dataset("imagenet", tmp_path / "imagenet", "val")


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="valid datasets"):
        build_dataset("mnist", ".", "train")


def test_unreadable_image_error_or_skip(tmp_path):
    voc = write_voc(tmp_path, {"000001": [("dog", 0)], "000002": [("cat", 0)]})
    (voc / "JPEGImages" / "000002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="000002.jpg"):
        build_dataset("voc2007", voc, "trainval")[1]
    _, _, ok = build_dataset("voc2007", voc, "trainval", skip_unreadable=True)[1]
    assert not ok


def test_unreadable_image_met_in_a_loader_worker_is_one_line(tmp_path):
    voc = write_voc(tmp_path, {"000001": [("dog", 0)], "000002": [("cat", 0)]})
    (voc / "JPEGImages" / "000002.jpg").write_bytes(b"not a jpeg")
    loader = DataLoader(build_dataset("voc2007", voc, "trainval", transform=PILToTensor()), num_workers=1)
    with pytest.raises(UnreadableImageError) as raised:
        list(loader)
    message = str(raised.value)
    assert "\n" not in message and "worker" not in message
    assert message.startswith(f"voc2007/trainval: cannot read image {voc / 'JPEGImages' / '000002.jpg'} (")
    assert message.endswith("set features.skip_unreadable=true to skip unreadable images")
    items = ItemsWithPath(build_dataset("voc2007", voc, "trainval", skip_unreadable=True))
    assert [(ok, path) for _, _, ok, path in items] == [(True, str(voc / "JPEGImages" / "000001.jpg")),
                                                      (False, str(voc / "JPEGImages" / "000002.jpg"))]


def test_places205_list_file_layout(tmp_path):
    root = tmp_path / "places205"
    (root / "images" / "a" / "abbey").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "a" / "abbey" / "x.jpg")
    (root / "trainvalsplit_places205").mkdir()
    (root / "trainvalsplit_places205" / "val_places205.csv").write_text("a/abbey/x.jpg 3\n")
    dataset = build_dataset("places205", root, "val")
    assert dataset.targets.tolist() == [3] and dataset.classes[3] == "abbey"
    assert dataset[0][2]


def write_images(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (10, 200, 10)).save(folder / name)


def test_coco2014_multi_label_targets_from_instances(tmp_path):
    root = tmp_path / "coco"
    write_images(root / "val2014", ["a.jpg", "b.jpg", "c.jpg"])
    (root / "annotations").mkdir()
    box = {"bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0, "segmentation": [[0, 0, 4, 0, 4, 4]]}
    instances = {
        "images": [{"id": 7, "file_name": "b.jpg", "width": 8, "height": 8},
                   {"id": 3, "file_name": "a.jpg", "width": 8, "height": 8},
                   {"id": 9, "file_name": "c.jpg", "width": 8, "height": 8}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [{"id": 1, "image_id": 3, "category_id": 18, **box},
                        {"id": 2, "image_id": 3, "category_id": 18, **box},
                        {"id": 3, "image_id": 7, "category_id": 1, **box},
                        {"id": 4, "image_id": 7, "category_id": 3, **box}],
    }
    (root / "annotations" / "instances_val2014.json").write_text(json.dumps(instances))
    dataset = build_dataset("coco2014", root, "val")
    # columns follow sorted category ids (1 person, 3 car, 18 dog); rows follow sorted image ids (3, 7, 9)
    assert dataset.classes == ["person", "car", "dog"]
    assert [Path(path).name for path in dataset.paths] == ["a.jpg", "b.jpg", "c.jpg"]
    np.testing.assert_array_equal(dataset.targets, [[0, 0, 1], [1, 1, 0], [0, 0, 0]])
    with pytest.raises(DatasetError, match="unknown split 'test'"):
        build_dataset("coco2014", root, "test")
    with pytest.raises(DatasetError, match=r"instances_train2014\.json"):
        build_dataset("coco2014", root, "train")


def test_inat2018_labels_from_the_official_json(tmp_path):
    root = tmp_path / "inat2018"
    names = ["train_val2018/Aves/5/x.jpg", "train_val2018/Plantae/2/y.jpg"]
    write_images(root, names)
    document = {"images": [{"id": 11, "file_name": names[0]}, {"id": 10, "file_name": names[1]}],
                "categories": [{"id": 5, "name": "sparrow"}, {"id": 2, "name": "fern"}],
                "annotations": [{"id": 1, "image_id": 11, "category_id": 5},
                                {"id": 2, "image_id": 10, "category_id": 2}]}
    (root / "val2018.json").write_text(json.dumps(document))
    dataset = build_dataset("inat2018", root, "val")
    assert dataset.classes == ["fern", "sparrow"]  # category ids 2, 5 -> labels 0, 1
    assert dataset.targets.tolist() == [0, 1] and dataset.paths[0].endswith("Plantae/2/y.jpg")
    document["images"].append({"id": 12, "file_name": "train_val2018/Aves/5/z.jpg"})
    (root / "val2018.json").write_text(json.dumps(document))
    with pytest.raises(DatasetError, match=r"val2018\.json: 1 image\(s\) without annotation, e\.g\. .*z\.jpg"):
        build_dataset("inat2018", root, "val")


def test_places205_malformed_line_names_file_and_line(tmp_path):
    root = tmp_path / "places205"
    (root / "trainvalsplit_places205").mkdir(parents=True)
    (root / "trainvalsplit_places205" / "train_places205.csv").write_text("a/abbey/x.jpg 0\na/abbey/y.jpg zero\n")
    with pytest.raises(DatasetError, match=r"train_places205\.csv:2: expected 'path label'"):
        build_dataset("places205", root, "train")


def test_places365_torchvision_layout(tmp_path):
    root = tmp_path / "places365"
    write_images(root / "val_256", ["Places365_val_00000001.jpg", "Places365_val_00000002.jpg"])
    (root / "categories_places365.txt").write_text("/a/airfield 0\n/a/alley 1\n")
    (root / "places365_val.txt").write_text("Places365_val_00000001.jpg 1\nPlaces365_val_00000002.jpg 0\n")
    dataset = build_dataset("places365", root, "val")
    assert dataset.classes == ["/a/airfield", "/a/alley"]
    assert dataset.targets.tolist() == [1, 0] and dataset.paths[0].endswith("val_256/Places365_val_00000001.jpg")
    with pytest.raises(DatasetError, match=r"places365_train_standard\.txt"):
        build_dataset("places365", root, "train")


def test_subset_by_file_names(tmp_path):
    root = tmp_path / "imagenet"
    write_images(root / "train", ["n01/n01_1.JPEG", "n01/n01_2.JPEG", "n02/n02_1.JPEG"])
    dataset = build_dataset("imagenet", root, "train")
    (tmp_path / "1percent.txt").write_text("n02_1.JPEG\nn01_2.JPEG\n")
    subset = subset_by_file_names(dataset, tmp_path / "1percent.txt")
    assert [Path(path).name for path in subset.paths] == ["n02_1.JPEG", "n01_2.JPEG"]
    assert subset.targets.tolist() == [1, 0] and subset.classes == ["n01", "n02"]
    (tmp_path / "bad.txt").write_text("n03_1.JPEG\n")
    with pytest.raises(DatasetError, match=r"bad\.txt: 1 listed image\(s\) not in imagenet/train, e\.g\. n03_1"):
        subset_by_file_names(dataset, tmp_path / "bad.txt")
