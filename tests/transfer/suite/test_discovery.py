"""Dataset discovery against the real on-disk layouts written by tools/make_demo_data.py."""

import shutil

from transfer.catalog import VOC2007, VOC2012
from transfer.registry import all_tasks
from transfer.suite.discovery import discover, find_dataset


def every_layout():
    return [layout for task in all_tasks().values() for layout in task.datasets]


def test_every_generated_layout_is_found(demo_root):
    discovery = discover(demo_root, every_layout())
    assert discovery.missing == {}
    assert discovery.found["voc2007"] == demo_root / "VOCdevkit" / "VOC2007"
    assert discovery.found["coco2014"] == discovery.found["coco2017"] == demo_root / "coco"
    assert discovery.found["imagenet_subsets"] == demo_root / "imagenet" / "subsets"
    assert set(discovery.found) == {layout.name for layout in every_layout()}


def test_half_copied_dataset_names_the_absent_file(demo_root, tmp_path):
    shutil.copytree(demo_root / "VOCdevkit", tmp_path / "VOCdevkit")
    (tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt").unlink()
    root, reason = find_dataset(tmp_path, VOC2007)
    assert root is None
    assert str(tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt") in reason
    assert find_dataset(tmp_path, VOC2012)[0] == tmp_path / "VOCdevkit" / "VOC2012"


def test_empty_root_reports_every_dataset_missing(tmp_path):
    discovery = discover(tmp_path, every_layout())
    assert discovery.found == {}
    assert set(discovery.missing) == {layout.name for layout in every_layout()}
    assert str(tmp_path / "places205") in discovery.missing["places205"]
