"""VOC07 and COCO2014 linear SVMs on frozen features (Goyal et al. 2019, as VISSL's VOC07 SVM benchmark runs it)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from core.config import require_value
from core.results import TaskResult
from transfer.catalog import COCO2014, VOC2007
from transfer.classification.datasets import build_dataset
from transfer.classification.features import FeatureConfig
from transfer.classification.svm import VOC07_COSTS, train_and_test_svm
from transfer.classification.task_setup import CONFIG_DIR, ENGINE, TaskSetup
from transfer.protocol import Protocol
from transfer.registry import PaperColumn, PaperEntry, TaskRun, TaskSpec, register_task

logger = logging.getLogger(__name__)

# VISSL's VOC07 SVM benchmark (eval_resnet_8gpu_transfer_voc07_svm.yaml): res5 AvgPool2d(6, 1) -> 8192-d at
# 224 px. The paper (App. C.1) follows PIRL / Goyal et al. and does not name the layer; see docs/classification.md.
SVM_PROTOCOL_VALUES = {"arch": "resnet50", "feature_layer": "res5_vissl8k", "feature_dim": 8192, "image_size": 224}


@dataclasses.dataclass
class SVMTaskConfig:
    """VOC07 / COCO SVMs on cached features."""

    dataset: str = "voc2007"
    train_split: str = "trainval"
    test_split: str = "test"
    costs: list[float] = dataclasses.field(default_factory=lambda: list(VOC07_COSTS))
    folds: int = 3
    n_jobs: int = -1  # -1: all cores
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)

    def __post_init__(self) -> None:
        require_value(bool(self.costs) and min(self.costs) > 0, "costs", self.costs, "a non-empty list of values > 0")
        require_value(self.folds >= 2, "folds", self.folds, ">= 2")
        require_value(self.n_jobs == -1 or self.n_jobs >= 1, "n_jobs", self.n_jobs, "-1 (all cores) or >= 1")


def classes_with_positives(train_labels: np.ndarray, test_labels: np.ndarray, minimum: int) -> np.ndarray:
    """Columns with at least ``minimum`` positive training images and one positive test image."""
    return np.flatnonzero(((train_labels == 1).sum(axis=0) >= minimum) & ((test_labels == 1).sum(axis=0) >= 1))


def run_svm(spec: TaskSpec, run: TaskRun) -> TaskResult:
    """One SVM per class, cost by cross-validation on the training split; mAP on the test split."""
    setup = TaskSetup(SVMTaskConfig, spec, run)
    config = setup.config
    train_x, train_y = setup.features(config.train_split)
    test_x, test_y = setup.features(config.test_split)
    classes = build_dataset(config.dataset, str(run.data_root), config.test_split).classes
    kept = classes_with_positives(train_y, test_y, config.folds)
    left_out = [name for column, name in enumerate(classes) if column not in set(kept.tolist())]
    if left_out:
        logger.warning("%s: classes without enough positive images are left out of the mAP: %s", spec.name, left_out)
    svm = train_and_test_svm(train_x, train_y[:, kept], test_x, test_y[:, kept], config.costs, config.folds,
                             None if config.n_jobs < 0 else config.n_jobs, progress=setup.context.is_main)
    names = [classes[column] for column in kept]
    per_class = {"ap": dict(zip(names, svm["ap"])), "cost": dict(zip(names, svm["cost"]))}
    extra = {"classes_left_out": left_out, "not_converged_fits": svm["not_converged"]}
    return setup.write(config.test_split, {"mAP": svm["mAP"]}, setup.feature_protocol(), setup.config_dict(**extra),
                       layer=config.features.layer, per_class=per_class)


register_task(TaskSpec(
    name="voc07_svm",
    description="VOC07 linear SVMs: train on trainval, mAP on test",
    datasets=(VOC2007,),
    metrics=("mAP",),
    runners={ENGINE: run_svm},
    protocol=Protocol(SVM_PROTOCOL_VALUES, "paper App. C.1 (follows PIRL); layer and costs from VISSL's VOC07 SVM config"),
    config=CONFIG_DIR / "voc07_svm.yaml",
    paper=PaperEntry("transfer_classification", (PaperColumn("VOC07 SVM mAP", "mAP", "voc07_svm_map"),)),
    per_class={"ap": "VOC07 SVM: AP per class"},
    compared_with_baseline=True,
))

register_task(TaskSpec(
    name="coco14_svm",
    description="COCO2014 linear SVMs: train on train2014, mAP on val2014 (VISSL's VOC07 protocol applied to COCO)",
    datasets=(COCO2014,),
    metrics=("mAP",),
    runners={ENGINE: run_svm},
    protocol=Protocol(SVM_PROTOCOL_VALUES, "VISSL's VOC07 SVM config applied to COCO2014 (not in the paper)"),
    config=CONFIG_DIR / "coco14_svm.yaml",
    compared_with_baseline=True,
))
