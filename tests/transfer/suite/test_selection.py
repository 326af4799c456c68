"""Task selection and the data each task needs, as the suite reads them from the registry."""

from pathlib import Path

import pytest

from transfer.registry import get_task
from transfer.suite.discovery import Discovery
from transfer.suite.runner import SuiteError, missing_data_reason, select_tasks


def test_default_selection_is_the_paper_tables():
    names = [task.name for task in select_tasks([])]
    assert "voc07_lowshot_svm" not in names and "coco_detection" not in names
    assert {"voc07_svm", "places205_linear", "voc0712_detection", "coco_instance_segmentation"} <= set(names)
    selected = [task.name for task in select_tasks(["voc07_svm", "knn"])]
    assert sorted(selected) == ["knn", "voc07_svm"]
    with pytest.raises(SuiteError, match="unknown task.*voc07"):
        select_tasks(["voc07"])


def test_stochastic_tasks_are_the_trained_ones():
    stochastic = {task.name for task in select_tasks([]) if task.stochastic}
    assert stochastic == {"places205_linear", "places365_linear", "inat18_linear", "imagenet_linear",
                          "imagenet_semisup_1pct", "imagenet_semisup_10pct", "voc0712_detection",
                          "coco_instance_segmentation", "cifar10_linear", "cifar100_linear", "stl10_linear"}


def test_voc0712_detection_needs_both_years_in_one_devkit(tmp_path):
    task = get_task("voc0712_detection")
    only_2007 = Discovery(found={"voc2007": tmp_path / "VOCdevkit" / "VOC2007"},
                          missing={"voc2012": "none of x exists"})
    assert missing_data_reason(task, only_2007) == "no voc2012: none of x exists"
    apart = Discovery(found={"voc2007": tmp_path / "a" / "VOC2007", "voc2012": tmp_path / "b" / "VOC2012"}, missing={})
    assert "same VOCdevkit" in missing_data_reason(task, apart)
    together = Discovery(found={"voc2007": tmp_path / "d" / "VOC2007", "voc2012": tmp_path / "d" / "VOC2012"},
                         missing={})
    assert missing_data_reason(task, together) is None
    assert task.root(together.found) == Path(tmp_path / "d")
