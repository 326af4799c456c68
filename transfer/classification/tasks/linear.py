"""Linear classification on frozen features (Places205/365, iNat18, ImageNet) and semi-supervised fine-tuning
(ImageNet 1% / 10%): one trainer (``transfer.classification.linear``), one config per protocol."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from core.results import TaskResult
from transfer.catalog import IMAGENET, INAT2018, PLACES205, PLACES365
from transfer.classification.linear import train_linear
from transfer.classification.linear_config import LinearConfig
from transfer.classification.subset_lists import SHIPPED_DIR
from transfer.classification.task_setup import CONFIG_DIR, ENGINE, TaskSetup
from transfer.protocol import Protocol
from transfer.registry import DatasetLayout, PaperColumn, PaperEntry, TaskRun, TaskSpec, register_task


@dataclasses.dataclass
class LinearTaskConfig(LinearConfig):
    """A linear or semi-supervised protocol on one data set; ``report`` picks best-epoch or last-epoch accuracy."""

    dataset: str = "places205"
    report: str = "best"


# SimCLR's 1% / 10% lists under the data root, else the copies shipped with the package.
IMAGENET_SUBSETS = DatasetLayout("imagenet_subsets", ("imagenet/subsets", "ImageNet/subsets", "ILSVRC2012/subsets"),
                                 ("1percent.txt", "10percent.txt"), packaged=SHIPPED_DIR)


def schedule_description(config: LinearConfig) -> str:
    """``cosine``, ``multistep [4, 8, 12] x0.1`` or ``exponential to 1e-06``: the schedule as protocols name it."""
    if config.schedule == "multistep":
        return f"multistep {list(config.milestones)} x{config.gamma:g}"
    if config.schedule == "exponential":
        return f"exponential to {config.final_lr:g}"
    return config.schedule


def linear_protocol(setup: TaskSetup) -> dict[str, Any]:
    """The values this run trains with: total batch over all processes, scaled learning rates, epochs, input."""
    config, processes = setup.config, setup.context.world_size
    scale = config.batch_size / 256 if config.scale_lr_with_batch else 1.0
    image_size = config.features.image_size if config.mode == "features" else config.image_size
    facts = {**setup.feature_protocol(image_size), "mode": config.mode, "epochs": config.epochs,
             "total_batch": max(1, config.batch_size // processes) * processes, "optimizer": config.optimizer,
             "base_lr": config.lr * scale, "lr_schedule": schedule_description(config)}
    if config.mode == "images":
        facts["augmentation"] = config.augmentation
        if config.lr_backbone == 0:
            facts["trunk_batchnorm"] = config.trunk_batchnorm
    if config.lr_backbone > 0:
        facts["backbone_lr"] = config.lr_backbone * scale
    if config.train_subset:
        facts["train_subset"] = Path(config.train_subset).name
    return facts


def run_linear(spec: TaskSpec, run: TaskRun) -> TaskResult:
    """Trains the head (and the trunk when ``lr_backbone > 0``); top-1/top-5 on the validation split."""
    setup = TaskSetup(LinearTaskConfig, spec, run)
    config = setup.config
    if config.report not in ("best", "last"):
        raise ValueError(f"config key 'report' must be 'best' or 'last', got {config.report!r}")
    if config.train_subset and not Path(config.train_subset).is_absolute():
        config.train_subset = str(Path(run.data_root) / config.train_subset)
    outcome = train_linear(config, setup.loaded, run.arch, config.dataset, str(run.data_root), setup.output_dir,
                           setup.context, progress=setup.context.is_main, skipped=setup.skipped)
    metrics = {key: float(value) for key, value in outcome[config.report].items()}
    return setup.write(config.val_split, metrics, linear_protocol(setup),
                       setup.config_dict(last_epoch=outcome["last"], best=outcome["best"]),
                       layer=config.features.layer, curves=outcome["curves"], seed=config.seed)


# VISSL's linear benchmarks, which App. C.1 of the paper follows (PIRL's settings): 8192-d res5 input,
# LR 0.01 x batch/256, batch 256 (8 GPUs x 32), 224 px crops of augmented images.
_VISSL_LINEAR = {"arch": "resnet50", "mode": "images", "feature_layer": "res5_vissl8k", "feature_dim": 8192,
                 "image_size": 224, "total_batch": 256, "base_lr": 0.01}
_VISSL_SOURCE = "paper App. C.1 (PIRL's settings), as VISSL's eval_resnet_8gpu_transfer_{}_linear config runs them"
# The official evaluate.py (--weights freeze), paper App. B.1.
_IMAGENET_LINEAR = {"arch": "resnet50", "mode": "images", "feature_layer": "res5", "feature_dim": 2048,
                    "image_size": 224, "epochs": 100, "total_batch": 256, "base_lr": 0.3, "lr_schedule": "cosine"}
# Paper App. B.2: 20 epochs, batch 256, LR 0.002 (trunk) and 0.5 (head), x0.2 after epochs 12 and 16.
_SEMI_SUPERVISED = {"arch": "resnet50", "mode": "images", "image_size": 224, "epochs": 20, "total_batch": 256,
                    "base_lr": 0.5, "backbone_lr": 0.002, "lr_schedule": "multistep [12, 16] x0.2"}



def _linear_task(name: str, description: str, datasets: tuple[DatasetLayout, ...], protocol: Protocol,
                 paper: PaperEntry | None = None) -> TaskSpec:
    return register_task(TaskSpec(name=name, description=description, datasets=datasets, metrics=("top1", "top5"),
                                  runners={ENGINE: run_linear}, protocol=protocol, config=CONFIG_DIR / f"{name}.yaml",
                                  paper=paper, stochastic=True, compared_with_baseline=True))


_linear_task("places205_linear", "Places205 linear classifier on frozen features (top-1 on val)", (PLACES205,),
             Protocol({**_VISSL_LINEAR, "epochs": 14}, _VISSL_SOURCE.format("places205")),
             PaperEntry("transfer_classification", (PaperColumn("Places205 top-1", "top1", "places205_top1"),)))
_linear_task("places365_linear", "Places365 linear classifier on frozen features (Places205's protocol)",
             (PLACES365,), Protocol({**_VISSL_LINEAR, "epochs": 14}, "Places205's protocol (not in the paper)"))
_linear_task("inat18_linear", "iNaturalist 2018 linear classifier on frozen features (top-1 on val)", (INAT2018,),
             Protocol({**_VISSL_LINEAR, "epochs": 84}, _VISSL_SOURCE.format("inaturalist18")),
             PaperEntry("transfer_classification", (PaperColumn("iNat18 top-1", "top1", "inat18_top1"),)))
_linear_task("imagenet_linear", "ImageNet linear evaluation of the frozen trunk (official evaluate.py)", (IMAGENET,),
             Protocol(_IMAGENET_LINEAR, "paper App. B.1; official evaluate.py --weights freeze --lr-classifier 0.3"),
             PaperEntry("imagenet_linear", (PaperColumn("top-1", "top1", "top1"), PaperColumn("top-5", "top5", "top5"))))
for _percent in (1, 10):
    register_task(TaskSpec(
        name=f"imagenet_semisup_{_percent}pct",
        description=f"ImageNet semi-supervised: fine-tune on the {_percent}% SimCLR subset (top-1/top-5 on val)",
        datasets=(IMAGENET, IMAGENET_SUBSETS),
        metrics=("top1", "top5"),
        runners={ENGINE: run_linear},
        protocol=Protocol({**_SEMI_SUPERVISED, "train_subset": f"{_percent}percent.txt"},
                          "paper App. B.2 (SimCLR's subset lists, Sec. 3.1)"),
        config=CONFIG_DIR / f"imagenet_semisup_{_percent}pct.yaml",
        paper=PaperEntry("imagenet_semi_supervised", (
            PaperColumn(f"{_percent}% top-1", "top1", f"top1@{_percent}%"),
            PaperColumn(f"{_percent}% top-5", "top5", f"top5@{_percent}%"))),
        stochastic=True,
        compared_with_baseline=True,
    ))
