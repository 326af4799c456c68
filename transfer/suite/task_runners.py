"""How the suite calls one task: classification through ``CLASSIFICATION_TASKS``, detection through the
engine-dispatching ``run_detection``, with the suite's overrides, seed and shared feature cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from core.results import TaskResult
from transfer.suite.config import SuiteConfig
from transfer.suite.registry import SuiteTask


class EngineSkip(RuntimeError):
    """The task cannot run with this engine/backbone; the suite records it as skipped with this reason."""


def resolve_engine(requested: str) -> str:
    """``auto`` -> detectron2 when importable, else torchvision; ``detectron2`` must be importable."""
    from transfer.detection.torchvision.tasks import detectron2_available, require_detectron2

    if requested == "auto":
        return "detectron2" if detectron2_available() else "torchvision"
    if requested == "detectron2":
        require_detectron2()
    return requested


def _run_classification(task: SuiteTask, weights: str | None, data_root: Path, output_dir: Path,
                        config: SuiteConfig, engine: str | None, cache_dir: Path, seed: int | None) -> TaskResult:
    from transfer.classification.tasks import CLASSIFICATION_TASKS

    overrides = [f"features.cache_dir={json.dumps(str(cache_dir))}", *config.overrides.get(task.name, [])]
    if seed is not None:
        overrides.append(f"seed={seed}")
    return CLASSIFICATION_TASKS[task.name](weights, str(data_root), str(output_dir), arch=config.arch,
                                           random_init=weights is None, overrides=overrides)


def detection_options(task: str, config: SuiteConfig, engine: str) -> tuple[list[str], str | None]:
    """The overrides and the protocol config file (None: the engine's default) of a detection task."""
    if engine == "detectron2":
        return config.detectron2_overrides.get(task, []), config.detectron2_configs.get(task)
    return config.overrides.get(task, []), config.torchvision_configs.get(task)


def _run_detection(task: SuiteTask, weights: str | None, data_root: Path, output_dir: Path, config: SuiteConfig,
                   engine: str | None, cache_dir: Path, seed: int | None) -> TaskResult:
    from transfer.detection.torchvision.tasks import EngineUnavailableError, UnsupportedBackboneError, run_detection

    engine = engine or "torchvision"
    overrides, config_file = detection_options(task.name, config, engine)
    try:
        return run_detection(task.name, weights, str(data_root), str(output_dir), engine=engine,
                             random_init=weights is None, overrides=overrides, seed=seed or 0,
                             config_file=config_file, arch=config.arch)
    except (EngineUnavailableError, UnsupportedBackboneError) as error:
        raise EngineSkip(f"{engine} engine: {error}") from error


TASK_RUNNERS: dict[str, Callable[..., TaskResult]] = {
    "classification": _run_classification,
    "detection": _run_detection,
}


def run_task(task: SuiteTask, weights: str | None, data_root: Path, output_dir: Path, config: SuiteConfig,
             engine: str | None, cache_dir: Path, seed: int | None) -> TaskResult:
    """Runs ``task`` on ``weights`` (``None``: the random-init baseline) and returns its result."""
    return TASK_RUNNERS[task.kind](task, weights, data_root, output_dir, config, engine, cache_dir, seed)
