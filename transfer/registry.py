"""The one task registry: every transfer task registers a ``TaskSpec``; the CLIs, the suite and the report read it.

A spec says everything the rest of the pipeline needs to know about a task: the datasets it reads and the files
that prove they are on disk, its metrics, the paper table and columns it reports into (or a peer library's cited
number), whether it is stochastic (repeated over seeds), its runner for each engine, and the protocol that makes
its number comparable with the published one. Task modules register themselves on import; the task packages listed
in ``TASK_PACKAGES`` are imported (every module in them) the first time the registry is read, so adding a task is
one new module in one of those packages, plus its config file, and no edit anywhere else.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from pathlib import Path

from core.results import TaskResult
from transfer.protocol import Protocol

TASK_PACKAGES = ("transfer.classification.tasks", "transfer.detection.tasks")


class UnknownTaskError(ValueError):
    """A task or engine name that is not registered; the message lists the known ones."""


class EngineUnavailableError(RuntimeError):
    """The requested engine cannot run here (e.g. detectron2 is not installed); the message says the way out."""


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset may sit under a data root and which entries prove it is complete.

    Candidate ``folders`` are tried in order; the first holding every ``required`` entry is the dataset's root,
    else the ``packaged`` copy when there is one (the ImageNet subset lists).
    """

    name: str
    folders: tuple[str, ...]
    required: tuple[str, ...]
    packaged: Path | None = None  # a copy shipped with the package, used when no folder is complete


@dataclasses.dataclass(frozen=True)
class PaperColumn:
    """One column of a paper table: our ``metric`` beside the paper's ``published_metric``."""

    header: str
    metric: str
    published_metric: str


@dataclasses.dataclass(frozen=True)
class PaperEntry:
    """The paper table (a section of the published-results file) a task reports into, and its columns."""

    table: str
    columns: tuple[PaperColumn, ...]


@dataclasses.dataclass(frozen=True)
class CitedResult:
    """A published number from outside the paper (a peer library's results table) that a task is compared with.

    ``comparable`` is False when the source's protocol cannot be followed by this project (another stem, say):
    the report then names the number and ``note`` in a note, never as a row beside measured results.
    """

    method: str
    values: Mapping[str, float]  # metric -> value
    source: str  # where the number is stated (repository, file, table, commit)
    note: str = ""
    comparable: bool = True


@dataclasses.dataclass(frozen=True)
class TaskRun:
    """The typed arguments of one run of a task."""

    weights: str | os.PathLike | None  # None: the seeded random-init trunk; a core.checkpoint.WeightsFile
    # carries the network (--source) and format to take from the file
    data_root: Path  # the root the spec's ``data_root`` chose (the dataset's own folder)
    output_dir: Path
    arch: str = "resnet50"
    seed: int | None = None
    cache_dir: Path | None = None  # shared feature cache (frozen-feature tasks)
    overrides: tuple[str, ...] = ()  # the engine's own override syntax (key=value, or detectron2 KEY VALUE)
    config_file: str | None = None  # replaces the spec's protocol config
    baseline: bool = False  # a reference column (random init, or a backbone named as the baseline)
    processes: int | None = None  # detection: processes (one per GPU) to train with; None: every GPU of the node
    stem: str | None = None  # the random-init trunk's stem (imagenet or small); weights carry their own


Runner = Callable[["TaskSpec", TaskRun], TaskResult]
RootChooser = Callable[[Mapping[str, Path]], Path]
DataCheck = Callable[[Mapping[str, Path]], "str | None"]


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One transfer task. ``runners`` maps engine names to runners, in order of preference."""

    name: str
    description: str
    datasets: tuple[DatasetLayout, ...]
    metrics: tuple[str, ...]  # the headline metric first; higher is better for all
    runners: Mapping[str, Runner]
    protocol: Protocol
    config: Path | None = None  # the protocol config file the runner reads by default
    paper: PaperEntry | None = None
    cited: CitedResult | None = None  # a peer library's number for tasks outside the paper (small images)
    per_class: Mapping[str, str] = dataclasses.field(default_factory=dict)  # per_class key -> chart title
    stochastic: bool = False  # repeated with seeds seed, seed+1, ... under --trials
    default: bool = True  # part of the suite when no tasks are named
    compared_with_baseline: bool = False  # the report compares its headline metric with the baseline column
    data_root: RootChooser | None = None  # default: the root of the first dataset
    check_data: DataCheck | None = None  # extra consistency check of the found roots

    def __post_init__(self) -> None:
        if not self.metrics or not self.runners or not self.datasets:
            raise ValueError(f"task {self.name!r} needs at least one metric, runner and dataset")

    @property
    def headline_metric(self) -> str:
        return self.metrics[0]

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(self.runners)

    def root(self, found: Mapping[str, Path]) -> Path:
        """The folder handed to the runner, from the roots of the discovered datasets."""
        return self.data_root(found) if self.data_root else found[self.datasets[0].name]


@dataclasses.dataclass(frozen=True)
class Engine:
    """A way of running tasks; ``available`` says whether it can run here, ``how_to_install`` the way out."""

    name: str
    available: Callable[[], bool]
    how_to_install: str = ""


_TASKS: dict[str, TaskSpec] = {}
_ENGINES: dict[str, Engine] = {}
_loaded = False


def register_task(spec: TaskSpec) -> TaskSpec:
    """Adds ``spec``; a second task of the same name is an error (names are the keys of results files)."""
    if spec.name in _TASKS and _TASKS[spec.name] is not spec:
        raise ValueError(f"task {spec.name!r} is registered twice")
    _TASKS[spec.name] = spec
    return spec


def unregister_task(name: str) -> None:
    """Removes a task (for tests that register their own)."""
    _TASKS.pop(name, None)


def register_engine(engine: Engine) -> Engine:
    """Adds an engine (idempotent for the same name)."""
    _ENGINES[engine.name] = engine
    return engine


def _load_task_packages() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in TASK_PACKAGES:
        package = importlib.import_module(package_name)
        for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
            importlib.import_module(f"{package_name}.{module.name}")


def all_tasks() -> dict[str, TaskSpec]:
    """Every registered task, in registration order (task packages first, modules by name)."""
    _load_task_packages()
    return dict(_TASKS)


def get_task(name: str) -> TaskSpec:
    """The task called ``name``; ``UnknownTaskError`` naming the known ones otherwise."""
    tasks = all_tasks()
    if name not in tasks:
        raise UnknownTaskError(f"unknown task {name!r}; known: {', '.join(tasks)}")
    return tasks[name]


def get_engine(name: str) -> Engine:
    """The engine called ``name``; ``UnknownTaskError`` naming the known ones otherwise."""
    _load_task_packages()
    if name not in _ENGINES:
        raise UnknownTaskError(f"unknown engine {name!r}; known: {', '.join(_ENGINES)}")
    return _ENGINES[name]


def choose_engine(spec: TaskSpec, requested: str = "auto") -> str:
    """The engine ``spec`` runs with: ``requested`` if the task has it, or with ``auto`` the first available one.

    ``EngineUnavailableError`` when the requested engine cannot run here; ``UnknownTaskError`` when the task has
    no such engine.
    """
    if requested == "auto":
        for name in spec.engines:
            if get_engine(name).available():
                return name
        engine = get_engine(spec.engines[0])
        raise EngineUnavailableError(f"task {spec.name}: no engine available ({engine.how_to_install})")
    if requested not in spec.runners:
        raise UnknownTaskError(f"task {spec.name} has no engine {requested!r}; its engines: {', '.join(spec.engines)}")
    engine = get_engine(requested)
    if not engine.available():
        raise EngineUnavailableError(f"the {requested} engine is not available here: {engine.how_to_install}")
    return requested


def run_task(spec: TaskSpec, run: TaskRun, engine: str = "auto") -> TaskResult:
    """Runs ``spec`` with ``engine`` (``auto``: the first available one) and returns its result."""
    name = choose_engine(spec, engine)
    return spec.runners[name](spec, run)
