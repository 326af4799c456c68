"""Command-line dataset options of train_net (parsed without detectron2) and the demo data's names."""

from pathlib import Path

import pytest

from transfer.detection.detectron2.datasets import (
    CocoDataset,
    DatasetSetupError,
    VocDataset,
    demo_datasets,
    parse_coco_option,
    parse_voc_option,
)


def test_voc_option_with_and_without_year():
    assert parse_voc_option("mine=/data/VOCdevkit/VOC2007:test") == VocDataset(
        "mine", Path("/data/VOCdevkit/VOC2007"), "test", 2007)
    assert parse_voc_option("v12=/data/VOC2012:trainval").year == 2012
    assert parse_voc_option("plain=/data/myvoc:train").year == 2007
    assert parse_voc_option("forced=/data/myvoc:val:2012").year == 2012


@pytest.mark.parametrize("text", ["noequals", "=dir:test", "name=dir", "name=dir:", "name=dir:test:2010",
                                  "name=a:b:c:d"])
def test_bad_voc_options_are_refused(text):
    with pytest.raises(DatasetSetupError):
        parse_voc_option(text)


def test_coco_option():
    assert parse_coco_option("shapes_val=/d/ann/val.json:/d/val") == CocoDataset(
        "shapes_val", Path("/d/ann/val.json"), Path("/d/val"))
    for text in ("shapes=/d/val.json", "shapes=:/d/val", "=a:b"):
        with pytest.raises(DatasetSetupError, match="NAME=JSON:IMAGE_DIR"):
            parse_coco_option(text)


def test_demo_names_point_into_make_demo_data_layout(tmp_path):
    datasets = {dataset.name: dataset for dataset in demo_datasets(tmp_path)}
    assert datasets["demo_voc_2007_test"] == VocDataset("demo_voc_2007_test", tmp_path / "VOCdevkit" / "VOC2007",
                                                        "test", 2007)
    assert datasets["demo_voc_2012_trainval"].required_paths()[-1] == \
        tmp_path / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main" / "trainval.txt"
    assert datasets["demo_coco_2017_val"].required_paths() == [
        tmp_path / "coco" / "annotations" / "instances_val2017.json", tmp_path / "coco" / "val2017"]
    assert set(datasets) == {"demo_voc_2007_trainval", "demo_voc_2007_test", "demo_voc_2012_trainval",
                             "demo_coco_2017_train", "demo_coco_2017_val"}
