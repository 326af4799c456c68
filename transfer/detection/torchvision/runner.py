"""The torchvision engine's runner of a registered detection task (``transfer.registry.Runner``).

A ``TorchvisionRunner`` holds what one task needs from this engine: its protocol config in
``configs/torchvision_detection/`` and the overrides that specialise it. Called with the task's spec and a
``TaskRun``, it trains in this process, or on a node with several GPUs launches
``torch.distributed.run --nproc_per_node N -m transfer.detection --engine torchvision`` (one process per GPU)
and reads the ``results.json`` that run writes.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

from core.checkpoint import WeightsFile
from core.config import resolve_config_file, shipped_config_dir
from core.distributed import DistributedContext
from core.results import TaskResult
from transfer.detection.launch import launches_subprocess, node_processes, run_launched
from transfer.detection.torchvision.config import DetectionConfig, load_detection_config, scale_to_world_size
from transfer.detection.torchvision.train import protocol_facts, train_and_evaluate
from transfer.registry import TaskRun, TaskSpec

CONFIG_DIR = shipped_config_dir(__file__)
ENGINE = "torchvision"


def _quoted(key: str, value: object) -> str:
    return f"{key}={json.dumps(value)}"


def _weights_choices(weights: object) -> dict[str, str]:
    """The network (``source``) and ``format`` a ``WeightsFile`` asks for (none for a plain path)."""
    if not isinstance(weights, WeightsFile):
        return {}
    return {key: value for key, value in (("source", weights.source), ("format", weights.format)) if value}


@dataclasses.dataclass(frozen=True)
class TorchvisionRunner:
    """Runs a task with the torchvision engine from ``config`` (a file in ``CONFIG_DIR``) and ``overrides``."""

    config: str
    overrides: tuple[str, ...] = ()

    def config_path(self, config_file: str | None = None) -> Path:
        """``config_file`` (a path, or a name under ``CONFIG_DIR``) if given, else the task's protocol config."""
        return resolve_config_file(config_file, CONFIG_DIR) if config_file is not None else CONFIG_DIR / self.config

    def run_overrides(self, spec: TaskSpec, run: TaskRun) -> list[str]:
        """The ``key=value`` overrides of one run: the task's, then the run's weights, data, output and seed, then
        the caller's own (last, so they win)."""
        return [*self.overrides, f"task={spec.name}", _quoted("data.root", str(run.data_root)),
                _quoted("output_dir", str(run.output_dir)), f"seed={run.seed or 0}",
                f"model.random_init={str(run.weights is None).lower()}", f"baseline={str(run.baseline).lower()}",
                *([_quoted("model.weights", str(run.weights))] if run.weights is not None else []),
                *(_quoted(f"model.weights_{key}", value) for key, value in _weights_choices(run.weights).items()),
                f"model.arch={run.arch}", *run.overrides]

    def load_config(self, spec: TaskSpec, run: TaskRun) -> DetectionConfig:
        """The run's config (``ConfigError`` naming the key when a value is wrong)."""
        return load_detection_config(self.config_path(run.config_file), self.run_overrides(spec, run))

    def launch_command(self, spec: TaskSpec, run: TaskRun, processes: int) -> list[str]:
        """The command line training ``run`` with ``processes`` processes on this node."""
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                "-m", "transfer.detection", "--engine", ENGINE, "--config-file", str(self.config_path(run.config_file)),
                *self.run_overrides(spec, run)]

    def predicted_protocol(self, spec: TaskSpec, run: TaskRun, processes: int, cuda: bool) -> dict[str, Any]:
        """The protocol values a run with ``processes`` processes will record (``train.protocol_facts``)."""
        config = load_detection_config(self.config_path(run.config_file),
                                       [*self.run_overrides(spec, run), "model.random_init=true"])
        solver, _ = scale_to_world_size(config.solver, config.eval_period, processes)
        device = torch.device("cuda" if cuda else "cpu")
        return protocol_facts(config, solver, DistributedContext(0, 0, processes, device))

    def __call__(self, spec: TaskSpec, run: TaskRun) -> TaskResult:
        """Fine-tunes ``run.weights`` on ``spec``'s task; returns the result, also in ``output_dir/results.json``."""
        processes = node_processes(run.processes)
        if launches_subprocess(processes):
            self.load_config(spec, run)  # a bad override fails here, with its key, before any process starts
            return run_launched(self.launch_command(spec, run, processes), run.output_dir, processes)
        result = train_and_evaluate(self.load_config(spec, run))
        if result is None:
            raise RuntimeError("the torchvision engine returns results on the main process only; read "
                               f"{run.output_dir}/results.json")
        return result
