"""Task selection and the data each task needs."""

from pathlib import Path

import pytest

from transfer.detection.torchvision.tasks import TASKS as DETECTION_TASKS
from transfer.suite.discovery import Discovery
from transfer.suite.registry import SUITE_TASKS, missing_data_reason, select_tasks
from transfer.classification.tasks import CLASSIFICATION_TASKS


def test_registry_covers_every_classification_and_detection_task():
    classification = {name for name, task in SUITE_TASKS.items() if task.kind == "classification"}
    detection = {name for name, task in SUITE_TASKS.items() if task.kind == "detection"}
    assert classification == set(CLASSIFICATION_TASKS)
    assert detection == set(DETECTION_TASKS)


def test_default_selection_is_the_paper_tables():
    names = [task.name for task in select_tasks([])]
    assert "voc07_lowshot_svm" not in names and "coco_detection" not in names
    assert {"voc07_svm", "places205_linear", "voc0712_detection", "coco_instance_segmentation"} <= set(names)
    assert [task.name for task in select_tasks(["knn", "voc07_svm"])] == ["voc07_svm", "knn"]  # registry order
    with pytest.raises(ValueError, match="unknown task.*voc07"):
        select_tasks(["voc07"])


def test_stochastic_tasks_are_linear_and_detection():
    stochastic = {name for name, task in SUITE_TASKS.items() if task.stochastic}
    assert stochastic == {name for name in SUITE_TASKS if "linear" in name or "semisup" in name
                          or name in DETECTION_TASKS}


def test_voc0712_detection_needs_both_years_in_one_devkit(tmp_path):
    task = SUITE_TASKS["voc0712_detection"]
    only_2007 = Discovery(found={"voc2007": tmp_path / "VOCdevkit" / "VOC2007"},
                          missing={"voc2012": "none of x exists"})
    assert missing_data_reason(task, only_2007) == "no voc2012: none of x exists"
    apart = Discovery(found={"voc2007": tmp_path / "a" / "VOC2007", "voc2012": tmp_path / "b" / "VOC2012"}, missing={})
    assert "same VOCdevkit" in missing_data_reason(task, apart)
    together = Discovery(found={"voc2007": tmp_path / "d" / "VOC2007", "voc2012": tmp_path / "d" / "VOC2012"},
                         missing={})
    assert missing_data_reason(task, together) is None
    assert task.data_root(together) == Path(tmp_path / "d")
