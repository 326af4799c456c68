"""The commands the fault-injection tests drive, at CPU-test size, and how to read what they produced.

Each command is run as ``python -m ...`` (a subprocess, to be killed) or through its ``main`` in-process (a
fault injected by patching). ``final_state`` is what must come out identical after an interruption: the
trained tensors of the last checkpoint and the metrics of ``results.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Inputs:
    """What every command reads: the demo data tree and a resnet18 backbone file."""

    data: Path
    weights: Path


@dataclass(frozen=True)
class Command:
    """One CLI under test."""

    name: str
    module: str  # python -m <module>
    arguments: Callable[[Inputs, Path], list[str]]  # the module's argv for an output folder
    bad_override: str  # a key=value of a wrong type, which must be named in a one-line error
    what: str  # how the output-folder lock names the run
    progress: Callable[[Path], int]  # units of work done so far in an output folder (to kill at a given one)
    final_state: Callable[[Path], dict]

    def main(self) -> Callable[[list[str]], int]:
        """The module's in-process entry point."""
        if self.module == "pretrain":
            from pretrain.__main__ import main
        elif self.module == "transfer.classification":
            from transfer.classification.__main__ import main
        elif self.module == "transfer.detection":
            from transfer.detection.__main__ import main
        else:
            from transfer.suite.__main__ import main
        return main


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _tensors(path: Path, key: str) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)[key]
    return {name: value for name, value in state.items() if torch.is_tensor(value)}


def _checkpoint_value(path: Path, *keys: str) -> int:
    """A progress counter inside a checkpoint (0 while there is none)."""
    if not path.is_file():
        return 0
    value = torch.load(path, map_location="cpu", weights_only=True)
    for key in keys:
        value = value[key]
    return int(value)


def _metrics(path: Path) -> dict:
    return json.loads(path.read_text())["metrics"]


def _pretrain_arguments(inputs: Inputs, output: Path) -> list[str]:
    # 20 images, batch 4: 5 steps per epoch, 10 in all; a checkpoint every 2 steps.
    return [str(REPO / "configs" / "pretrain" / "demo.yaml"), f"output_dir={output}",
            f"data.root={inputs.data / 'imagefolder' / 'train'}", "epochs=2", "batch_size=4",
            "optim.warmup_epochs=1", "data.image_size=32", "data.workers=0", "model.projector=64-64",
            "log_every=1", "checkpoint_every_steps=2", "progress_bar=false", "tensorboard=false",
            "knn.every_epochs=0"]


def _linear_arguments(inputs: Inputs, output: Path) -> list[str]:
    # 30 images, batch 8: 3 steps per epoch (last batch dropped), a checkpoint per epoch, 4 epochs.
    return ["places205_linear", "--weights", str(inputs.weights), "--arch", "resnet18", "--data-root",
            str(inputs.data / "places205"), "--output", str(output), "epochs=4", "image_size=32", "batch_size=8",
            "num_workers=0", "milestones=[2]", "features.layer=res5"]


def _detection_arguments(inputs: Inputs, output: Path) -> list[str]:
    return ["--engine", "torchvision", "--config-file",
            str(REPO / "configs" / "torchvision_detection" / "voc_instant_test.yaml"), "--weights",
            str(inputs.weights), "--data-root", str(inputs.data / "VOCdevkit"), "--output-dir", str(output),
            "solver.max_iter=6", "solver.steps=[4]", "device=cpu"]


def _suite_arguments(inputs: Inputs, output: Path) -> list[str]:
    return [str(inputs.weights), "--data-root", str(inputs.data), "--output", str(output), "--arch", "resnet18",
            "--tasks", "knn", "places205_linear", "overrides={places205_linear: [epochs=2, image_size=32, "
            "batch_size=8, num_workers=0, 'milestones=[1]', features.layer=res5], knn: [features.image_size=32, features.num_workers=0]}"]


def _suite_state(output: Path) -> dict:
    return {str(path.relative_to(output)): _metrics(path) for path in sorted(output.glob("runs/*/*/results.json"))}


COMMANDS = {
    "pretraining": Command(
        "pretraining", "pretrain", _pretrain_arguments, "optim.weight_decay=abc", "pretraining",
        progress=lambda output: _lines(output / "stats.jsonl"),
        final_state=lambda output: _tensors(output / "checkpoint.pth", "model")),
    "linear task": Command(
        "linear task", "transfer.classification", _linear_arguments, "lr=abc", "places205_linear",
        progress=lambda output: _checkpoint_value(output / "checkpoint.pth", "state", "epoch"),
        final_state=lambda output: {**_tensors(output / "checkpoint.pth", "model"),
                                    "metrics": _metrics(output / "results.json")}),
    "detection (torchvision)": Command(
        "detection (torchvision)", "transfer.detection", _detection_arguments, "solver.base_lr=abc", "detection",
        progress=lambda output: _checkpoint_value(output / "checkpoint.pth", "iteration"),
        final_state=lambda output: {**_tensors(output / "checkpoint.pth", "model"),
                                    "metrics": _metrics(output / "results.json")}),
    "suite": Command(
        "suite", "transfer.suite", _suite_arguments, "trials=abc", "transfer suite",
        progress=lambda output: len(list(output.glob("runs/*/*/results.json"))) +
        len(list(output.glob("runs/*/places205_linear/checkpoint.pth"))),
        final_state=_suite_state),
}
