"""VOC/COCO loading of the torchvision engine: detectron2's box conventions, difficult/crowd handling, masks."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from transfer.detection.torchvision.config import DataConfig
from transfer.detection.torchvision.datasets import DatasetError, build_dataset
from transfer.detection.torchvision.transforms import RandomHorizontalFlip

VOC_XML = """<annotation><size><width>40</width><height>30</height><depth>3</depth></size>
<object><name>dog</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>
<object><name>aeroplane</name><difficult>1</difficult><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>8</ymax></bndbox></object>
</annotation>"""


@pytest.fixture
def voc_root(tmp_path):
    year = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (year / sub).mkdir(parents=True)
    (year / "Annotations" / "000005.xml").write_text(VOC_XML)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(year / "JPEGImages" / "000005.jpg")
    (year / "ImageSets" / "Main" / "test.txt").write_text("000005\n")
    return tmp_path / "VOCdevkit"


def test_voc_boxes_labels_and_difficult(voc_root):
    dataset = build_dataset(DataConfig(root=str(voc_root), train=["VOC2007:test"], test="VOC2007:test"),
                            training=False, with_masks=False)
    record = dataset.records[0]
    # 1-based inclusive pixels -> continuous: (xmin - 1, ymin - 1, xmax, ymax), as detectron2's VOC loader.
    np.testing.assert_array_equal(record.boxes, [[0, 1, 20, 30], [4, 5, 7, 8]])
    np.testing.assert_array_equal(record.labels, [12, 1])  # dog is the 12th VOC class; 0 is background
    np.testing.assert_array_equal(record.difficult, [False, True])
    image, target = dataset[0]
    assert image.shape == (3, 30, 40) and image.dtype == torch.float32
    assert image[0].mean() > 0.9 and image[1].mean() < 0.1  # RGB order kept
    assert target["boxes"].shape == (2, 4)  # difficult objects are kept for training, as in detectron2


def test_voc_errors_name_the_path(voc_root, tmp_path):
    with pytest.raises(DatasetError, match="not found: .*missing_root"):
        build_dataset(DataConfig(root=str(tmp_path / "missing_root")), training=True, with_masks=False)
    with pytest.raises(DatasetError, match="VOC2007/ImageSets/Main/trainval.txt"):
        build_dataset(DataConfig(root=str(voc_root)), training=True, with_masks=False)
    with pytest.raises(DatasetError, match="class 'dog' is not one of"):
        build_dataset(DataConfig(root=str(voc_root), test="VOC2007:test", class_names=["aeroplane"]),
                      training=False, with_masks=False)


@pytest.fixture
def coco_root(tmp_path):
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.new("RGB", (20, 10)).save(root / "images" / "a.jpg")
    Image.new("RGB", (20, 10)).save(root / "images" / "b.jpg")
    square = [[2, 2, 8, 2, 8, 8, 2, 8]]  # polygon of a 6x6 square
    data = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 20, "height": 10},
                   {"id": 9, "file_name": "b.jpg", "width": 20, "height": 10}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 18, "bbox": [2, 2, 6, 6], "area": 36, "iscrowd": 0,
             "segmentation": square},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [10, 0, 4, 5], "area": 20, "iscrowd": 0,
             "segmentation": {"size": [10, 20], "counts": [100, 5, 5, 5, 5, 5, 5, 5, 65]}},
            {"id": 3, "image_id": 9, "category_id": 3, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 1,
             "segmentation": {"size": [10, 20], "counts": [0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 155]}},
        ],
    }
    (root / "annotations" / "instances.json").write_text(json.dumps(data))
    return root


def test_coco_training_set(coco_root):
    data = DataConfig(format="coco", root=str(coco_root), train=["annotations/instances.json:images"],
                      test="annotations/instances.json:images")
    dataset = build_dataset(data, training=True, with_masks=True)
    assert dataset.class_names == ["car", "dog"] and dataset.category_ids == [3, 18]  # sorted by category id
    assert len(dataset) == 1  # image 9 only has a crowd annotation: dropped for training
    image, target = dataset[0]
    np.testing.assert_array_equal(target["boxes"].numpy(), [[2, 2, 8, 8], [10, 0, 14, 5]])
    np.testing.assert_array_equal(target["labels"].numpy(), [2, 1])
    assert target["masks"].shape == (2, 10, 20)
    assert target["masks"][1].sum() == 20 and target["masks"][1][:5, 10:14].all()  # uncompressed RLE: 4 columns x 5
    assert 30 <= target["masks"][0].sum() <= 49 and target["masks"][0][3:7, 3:7].all()  # rasterised 6x6 polygon


def test_coco_test_set_keeps_crowd_and_empty_images(coco_root):
    data = DataConfig(format="coco", root=str(coco_root), test="annotations/instances.json:images")
    dataset = build_dataset(data, training=False, with_masks=False)
    assert len(dataset) == 2 and dataset.coco_api is not None
    np.testing.assert_array_equal(dataset.records[1].difficult, [True])


def test_coco_missing_files(coco_root):
    data = DataConfig(format="coco", root=str(coco_root), test="annotations/missing.json:images")
    with pytest.raises(DatasetError, match="missing.json"):
        build_dataset(data, training=False, with_masks=False)


def test_horizontal_flip_moves_boxes_and_masks():
    image = torch.zeros(3, 4, 10)
    image[:, :, 0] = 1
    masks = torch.zeros(1, 4, 10, dtype=torch.uint8)
    masks[0, :, :3] = 1
    target = {"boxes": torch.tensor([[0.0, 0.0, 3.0, 4.0]]), "labels": torch.tensor([1]), "masks": masks}
    flipped, flipped_target = RandomHorizontalFlip(probability=1.0)(image, target)
    assert flipped[0, 0, 9] == 1 and flipped[0, 0, 0] == 0
    assert flipped_target["boxes"].tolist() == [[7.0, 0.0, 10.0, 4.0]]
    assert flipped_target["masks"][0, 0].tolist() == [0] * 7 + [1] * 3
    same_image, same_target = RandomHorizontalFlip(probability=0.0)(image, target)
    assert same_image is image and same_target is target
