"""``SuiteConfig``: what the suite runs, loaded with the project's one config mechanism (YAML + key=value)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from core.config import shipped_config_dir
from core.resnet import STEMS
from transfer.registry import all_tasks

CONFIG_DIR = shipped_config_dir(__file__)  # configs/suite in the repository


@dataclasses.dataclass
class SuiteConfig:
    """Options of ``python -m transfer.suite``; every CLI flag maps onto one of these keys."""

    tasks: list[str] = dataclasses.field(default_factory=list)  # empty: every default task with data
    trials: int = 1  # seeds seed .. seed+trials-1 for the stochastic tasks (linear, detection)
    seed: int = 0
    arch: str = "resnet50"
    source: str = ""  # network to take from weights files holding two (MoCo key, DINO student); empty: the evaluated one
    checkpoint_format: str = ""  # checkpoint format for files two formats match; empty: detected
    random_init: bool = False  # add a randomly initialised backbone as a baseline column
    stem: str = ""  # the random-init column's stem (imagenet, small); empty: the weights' stem (imagenet if none)
    engine: Literal["auto", "detectron2", "torchvision"] = "auto"  # detection; auto: detectron2 when importable
    baseline: str = ""  # label of a weights file that is a reference column (the random-init column always is)
    feature_cache: str = ""  # shared feature cache; empty: OUTPUT/feature_cache
    # task -> key=value overrides of its protocol config (classification and torchvision detection)
    overrides: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # task -> detectron2 "KEY VALUE" options
    detectron2_overrides: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # task -> protocol config file replacing the default one, per detection engine
    torchvision_configs: dict[str, str] = dataclasses.field(default_factory=dict)
    detectron2_configs: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials must be at least 1, got {self.trials}")
        if self.stem and self.stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(STEMS)} (or empty), got {self.stem!r}")
        _check_task_names("tasks", self.tasks)
        for key in ("overrides", "detectron2_overrides", "torchvision_configs", "detectron2_configs"):
            mapping = getattr(self, key)
            _check_task_names(key, list(mapping))
            for task, value in mapping.items():
                expected_list = key.endswith("overrides")
                if expected_list and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
                    raise ValueError(f"{key}.{task} must be a list of strings, got {value!r}")
                if not expected_list and not isinstance(value, str):
                    raise ValueError(f"{key}.{task} must be a config file path, got {value!r}")


    def options(self, task: str, engine: str) -> tuple[list[str], str | None]:
        """The overrides (in the engine's syntax) and the config file replacing the protocol config of ``task``."""
        if engine == "detectron2":
            return list(self.detectron2_overrides.get(task, [])), self.detectron2_configs.get(task)
        config_file = self.torchvision_configs.get(task) if engine == "torchvision" else None
        return list(self.overrides.get(task, [])), config_file


def _check_task_names(key: str, names: list[str]) -> None:
    known = all_tasks()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"{key} names unknown task(s) {', '.join(map(str, unknown))}; known: {', '.join(known)}")
