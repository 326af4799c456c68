"""Low-shot VOC07 SVMs: k positive images per class, several independent draws (VISSL's low-shot benchmark)."""

from __future__ import annotations

import dataclasses

from core.config import require_value
from core.results import TaskResult
from transfer.catalog import VOC2007
from transfer.classification.lowshot import LOWSHOT_K_VALUES, run_lowshot_svm
from transfer.classification.task_setup import CONFIG_DIR, ENGINE, TaskSetup
from transfer.classification.tasks.svm import SVM_PROTOCOL_VALUES, SVMTaskConfig, classes_with_positives
from transfer.protocol import Protocol
from transfer.registry import TaskRun, TaskSpec, register_task


@dataclasses.dataclass
class LowShotTaskConfig(SVMTaskConfig):
    """Low-shot VOC07 SVMs: k positives per class, ``num_draws`` independent draws."""

    k_values: list[int] = dataclasses.field(default_factory=lambda: list(LOWSHOT_K_VALUES))
    num_draws: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_value(bool(self.k_values) and min(self.k_values) >= 1, "k_values", self.k_values,
                      "a non-empty list of values >= 1")
        require_value(self.num_draws >= 1, "num_draws", self.num_draws, ">= 1")
        require_value(self.seed >= 0, "seed", self.seed, ">= 0")


def run_voc07_lowshot_svm(spec: TaskSpec, run: TaskRun) -> TaskResult:
    """Mean (and std/min/max over draws) test mAP for each k."""
    setup = TaskSetup(LowShotTaskConfig, spec, run)
    config = setup.config
    train_x, train_y = setup.features(config.train_split)
    test_x, test_y = setup.features(config.test_split)
    kept = classes_with_positives(train_y, test_y, max(config.k_values))
    summary = run_lowshot_svm(train_x, train_y[:, kept], test_x, test_y[:, kept], config.k_values, config.num_draws,
                              config.costs, config.seed, None if config.n_jobs < 0 else config.n_jobs,
                              progress=setup.context.is_main)
    metrics: dict[str, float] = {}
    for k, stats in summary.items():
        metrics[f"mAP@k{k}"] = stats["mean"]
        for name in ("std", "min", "max"):
            metrics[f"mAP@k{k}_{name}"] = stats[name]
    per_class = {"cost": {f"k{k}": stats["cost"] for k, stats in summary.items()}}
    return setup.write(config.test_split, metrics, setup.feature_protocol(),
                       setup.config_dict(num_classes_used=int(len(kept))), layer=config.features.layer,
                       per_class=per_class, seed=config.seed)


register_task(TaskSpec(
    name="voc07_lowshot_svm",
    description="Low-shot VOC07 SVMs: mAP for k = 1..96 positives per class, mean over draws",
    datasets=(VOC2007,),
    metrics=tuple(f"mAP@k{k}" for k in LOWSHOT_K_VALUES),
    runners={ENGINE: run_voc07_lowshot_svm},
    protocol=Protocol(SVM_PROTOCOL_VALUES, "VISSL's low-shot VOC07 benchmark (not in the paper)"),
    config=CONFIG_DIR / "voc07_lowshot_svm.yaml",
    default=False,  # not in the paper's tables: run on request
    compared_with_baseline=True,
))
