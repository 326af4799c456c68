"""The detectron2 engine's runner of a registered detection task (``transfer.registry.Runner``).

A ``Detectron2Runner`` holds what one task needs from detectron2: its protocol config in ``configs/detectron2/``,
whether the model predicts masks, its datasets under a data root, the kind of evaluation of its test set, and
its per-class results. Called with the task's spec and a ``TaskRun``, it runs
``python -m transfer.detection.detectron2.train_net --task NAME ...`` in this process, or as a subprocess with
``--num-gpus N`` (one process per GPU) on a node with several GPUs, and returns the ``results.json`` it writes.
Importing this module never imports detectron2.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from typing import Any

from core.checkpoint import WeightsFile
from core.results import TaskResult
from transfer.detection.detectron2.results import protocol_facts
from transfer.detection.detectron2.tasks import DatasetsBuilder, config_value, model_config
from transfer.detection.detectron2.layout import resnet_layout
from transfer.detection.launch import launches_subprocess, node_processes, run_launched
from transfer.registry import TaskRun, TaskSpec

TRAIN_NET = "transfer.detection.detectron2.train_net"
# detectron2/config/defaults.py values of the keys a protocol compares, for configs that do not set them.
DETECTRON2_DEFAULTS = {"SOLVER.IMS_PER_BATCH": 16, "SOLVER.BASE_LR": 0.001, "SOLVER.MAX_ITER": 40000,
                       "SOLVER.REFERENCE_WORLD_SIZE": 0, "MODEL.RESNETS.NORM": "FrozenBN",
                       "MODEL.BACKBONE.NAME": "build_resnet_backbone"}


def _decoded(text: str) -> Any:
    """An override value as yacs' ``merge_from_list`` decodes it: a Python literal, or else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@dataclasses.dataclass(frozen=True)
class Detectron2Runner:
    """Runs a task with detectron2 from ``config`` (a file in ``configs/detectron2/``)."""

    config: str
    mask_on: bool
    datasets: DatasetsBuilder  # data root -> (train datasets, test dataset)
    data_root: str  # what the data root must hold, for error messages
    evaluator: str  # the evaluator_type of the test set: pascal_voc or coco
    per_class: tuple[tuple[str, str, str], ...] = ()  # (results per_class key, detectron2 group, metric prefix)

    def train_net_arguments(self, spec: TaskSpec, run: TaskRun) -> list[str]:
        """``train_net`` arguments of ``run`` (without ``--num-gpus``); detectron2 ``KEY VALUE`` overrides last."""
        return ["--task", spec.name, "--data-root", str(run.data_root), "--output-dir", str(run.output_dir),
                "--seed", str(run.seed or 0), "--arch", run.arch,
                *(["--backbone", str(run.weights)] if run.weights is not None else ["--random-init"]),
                *(["--source", run.weights.source] if isinstance(run.weights, WeightsFile) and run.weights.source
                  else []),
                *(["--format", run.weights.format] if isinstance(run.weights, WeightsFile) and run.weights.format
                  else []),
                *(["--baseline"] if run.baseline else []),
                *(["--config-file", str(run.config_file)] if run.config_file is not None else []),
                *map(str, run.overrides)]

    def launch_command(self, spec: TaskSpec, run: TaskRun, processes: int) -> list[str]:
        """The command line training ``run`` with ``processes`` processes (one per GPU) on this node."""
        return [sys.executable, "-m", TRAIN_NET, "--num-gpus", str(processes), *self.train_net_arguments(spec, run)]

    def predicted_protocol(self, spec: TaskSpec, run: TaskRun, processes: int, cuda: bool) -> dict[str, Any]:
        """The protocol values a run with ``processes`` processes will record: the config file's solver and norm,
        the run's overrides, then detectron2's rescaling from ``SOLVER.REFERENCE_WORLD_SIZE`` (its
        ``DefaultTrainer.auto_scale_workers``)."""
        path = model_config(self.config, run.config_file, run.arch)
        values = {key: config_value(path, key, default) for key, default in DETECTRON2_DEFAULTS.items()}
        overrides = dict(zip(run.overrides[::2], run.overrides[1::2]))
        for key in values.keys() & overrides.keys():
            values[key] = _decoded(overrides[key])
        reference = values["SOLVER.REFERENCE_WORLD_SIZE"]
        if reference and reference != processes:
            scale = processes / reference
            values["SOLVER.IMS_PER_BATCH"] = int(round(values["SOLVER.IMS_PER_BATCH"] * scale))
            values["SOLVER.BASE_LR"] = values["SOLVER.BASE_LR"] * scale
            values["SOLVER.MAX_ITER"] = int(round(values["SOLVER.MAX_ITER"] / scale))
        config = {"MODEL": {"MASK_ON": self.mask_on, "BACKBONE": {"NAME": values["MODEL.BACKBONE.NAME"]},
                            "RESNETS": {"DEPTH": resnet_layout(run.arch).depth, "NORM": values["MODEL.RESNETS.NORM"]}},
                  "SOLVER": {"IMS_PER_BATCH": values["SOLVER.IMS_PER_BATCH"], "BASE_LR": values["SOLVER.BASE_LR"],
                             "MAX_ITER": values["SOLVER.MAX_ITER"]}}
        return protocol_facts(config, processes, run.arch)

    def __call__(self, spec: TaskSpec, run: TaskRun) -> TaskResult:
        """Fine-tunes ``run.weights`` on ``spec``'s task; returns the result, also in ``output_dir/results.json``."""
        processes = node_processes(run.processes)
        if launches_subprocess(processes):
            return run_launched(self.launch_command(spec, run, processes), run.output_dir, processes)
        from transfer.detection.detectron2.train_net import run_detection  # imports detectron2

        return run_detection(self.train_net_arguments(spec, run))
