"""The tasks the suite knows: which datasets each needs, which root it is given, and how it runs.

A task is either a classification task of ``transfer.classification.tasks.CLASSIFICATION_TASKS`` or a detection task
of ``transfer.detection.torchvision.tasks.TASKS``; both take the dataset root chosen by ``data_root`` from what
``transfer.suite.discovery`` found.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Literal

from transfer.suite.discovery import Discovery

# Classification and detection tasks take their dataset's own root, except VOC07+12 detection, which needs
# the folder holding both VOC2007 and VOC2012 (``VOCdevkit``).
RootChooser = Callable[[Discovery], Path]


def _own_root(dataset: str) -> RootChooser:
    return lambda discovery: discovery.found[dataset]


def _voc_devkit(discovery: Discovery) -> Path:
    return discovery.found["voc2007"].parent


@dataclasses.dataclass(frozen=True)
class SuiteTask:
    """One transfer task as the suite schedules it."""

    name: str
    kind: Literal["classification", "detection"]
    datasets: tuple[str, ...]  # every one must be found under the data root
    data_root: RootChooser
    stochastic: bool  # repeated with seeds seed, seed+1, ... under --trials
    default: bool = True  # part of the suite when --tasks is not given


def _classification(name: str, datasets: tuple[str, ...], stochastic: bool, default: bool = True) -> SuiteTask:
    return SuiteTask(name, "classification", datasets, _own_root(datasets[0]), stochastic, default)


SUITE_TASKS: dict[str, SuiteTask] = {task.name: task for task in (
    _classification("voc07_svm", ("voc2007",), stochastic=False),
    # Low-shot draws its own 5 samples per k; it is not in the paper's tables, so only on request.
    _classification("voc07_lowshot_svm", ("voc2007",), stochastic=False, default=False),
    _classification("coco14_svm", ("coco2014",), stochastic=False),
    _classification("places205_linear", ("places205",), stochastic=True),
    _classification("places365_linear", ("places365",), stochastic=True),
    _classification("inat18_linear", ("inat2018",), stochastic=True),
    _classification("imagenet_linear", ("imagenet",), stochastic=True),
    _classification("imagenet_semisup_1pct", ("imagenet", "imagenet_subsets"), stochastic=True),
    _classification("imagenet_semisup_10pct", ("imagenet", "imagenet_subsets"), stochastic=True),
    _classification("knn", ("imagenet",), stochastic=False),
    SuiteTask("voc0712_detection", "detection", ("voc2007", "voc2012"), _voc_devkit, stochastic=True),
    SuiteTask("coco_instance_segmentation", "detection", ("coco2017",), _own_root("coco2017"), stochastic=True),
    SuiteTask("coco_detection", "detection", ("coco2017",), _own_root("coco2017"), stochastic=True, default=False),
)}


def missing_data_reason(task: SuiteTask, discovery: Discovery) -> str | None:
    """Why ``task`` cannot run on the discovered data (``None`` when it can)."""
    absent = [dataset for dataset in task.datasets if dataset not in discovery.found]
    if absent:
        return "; ".join(f"no {dataset}: {discovery.missing[dataset]}" for dataset in absent)
    if task.name == "voc0712_detection" and discovery.found["voc2007"].parent != discovery.found["voc2012"].parent:
        return (f"VOC2007 ({discovery.found['voc2007']}) and VOC2012 ({discovery.found['voc2012']}) must sit in "
                "the same VOCdevkit folder")
    return None


def select_tasks(names: list[str]) -> list[SuiteTask]:
    """The named tasks in registry order (all default tasks when ``names`` is empty); unknown names raise."""
    unknown = sorted(set(names) - set(SUITE_TASKS))
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(SUITE_TASKS)}")
    return [task for task in SUITE_TASKS.values() if (task.name in names if names else task.default)]
