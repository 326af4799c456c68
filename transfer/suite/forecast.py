"""What the suite says at start about the detection tasks it will run: which protocol values will differ from the
paper's on this node (fewer GPUs than the protocol's 8, no GPU, or another engine), predicted by each runner."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.config import ConfigError
from transfer.detection import UnsupportedBackboneError
from transfer.detection.launch import ProtocolForecaster, protocol_forecast
from transfer.registry import TaskRun, TaskSpec
from transfer.suite.config import SuiteConfig

logger = logging.getLogger(__name__)


def protocol_forecasts(tasks: Sequence[TaskSpec], engines: Mapping[str, str], config: SuiteConfig) -> dict[str, str]:
    """``{task: line}`` for every task whose runner predicts its protocol values and will differ from its protocol."""
    forecasts = {}
    for task in tasks:
        runner = task.runners[engines[task.name]]
        if not isinstance(runner, ProtocolForecaster):
            continue
        overrides, config_file = config.options(task.name, engines[task.name])
        run = TaskRun(weights=None, data_root=Path("."), output_dir=Path("."), arch=config.arch,
                      overrides=tuple(overrides), config_file=config_file)
        try:
            line = protocol_forecast(task, runner, run)
        except (ConfigError, UnsupportedBackboneError, FileNotFoundError, ValueError) as error:
            line = f"{task.name}: its protocol values cannot be predicted ({error})"
        if line:
            forecasts[task.name] = line
    return forecasts


def log_protocol_forecasts(tasks: Sequence[TaskSpec], engines: Mapping[str, str], config: SuiteConfig) -> None:
    """Logs one warning per task that will not follow the paper's protocol here."""
    for line in protocol_forecasts(tasks, engines, config).values():
        logger.warning("%s", line)
