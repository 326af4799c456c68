"""Data set builders: VOC 1/0/-1 labels from the XML, clear errors for missing roots, splits and images."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transfer.datasets import DATASETS, VOC_CLASSES, DatasetError, build_dataset, voc_image_labels


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


def test_places205_list_file_layout(tmp_path):
    root = tmp_path / "places205"
    (root / "images" / "a" / "abbey").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "a" / "abbey" / "x.jpg")
    (root / "trainvalsplit_places205").mkdir()
    (root / "trainvalsplit_places205" / "val_places205.csv").write_text("a/abbey/x.jpg 3\n")
    dataset = build_dataset("places205", root, "val")
    assert dataset.targets.tolist() == [3] and dataset.classes[3] == "abbey"
    assert dataset[0][2]
