"""``run_suite``: every transfer task the data root has data for, on each backbone, then the report.

Layout of the output folder::

    OUTPUT/runs/<backbone>/<task>/results.json           deterministic tasks (SVM, kNN)
    OUTPUT/runs/<backbone>/<task>/seed<k>/results.json   stochastic tasks, one folder per trial
    OUTPUT/feature_cache/                                 features shared by every task (keyed by weights hash)
    OUTPUT/report.md, report.html, summary.json, plots/   the report
    OUTPUT/suite.json                                     what ran, what was reused, skipped or failed

A task whose folder already holds a ``results.json`` made from the same weights (sha256) and the same request
(task options, engine, seed) is not run again, so an interrupted suite resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.atomic import atomic_write_json
from core.lock import locks_output
from core.backbone import RANDOM_INIT_LABEL
from core.checkpoint import WeightsFile, file_sha256, load_backbone_state_dict, weights_file
from core.resnet import stem_of_state
from core.results import ResultsError, TaskResult, read_result
from transfer.detection import UnsupportedBackboneError
from transfer.registry import (EngineUnavailableError, TaskRun, TaskSpec, UnknownTaskError, all_tasks, choose_engine,
                               run_task)
from transfer.report import write_report
from transfer.suite.config import SuiteConfig
from transfer.suite.discovery import Discovery, discover
from transfer.suite.forecast import log_protocol_forecasts

logger = logging.getLogger(__name__)
RANDOM_INIT_COLUMN = "random init"
REQUEST_FILE = "request.json"


class SuiteError(ValueError):
    """The suite cannot start: bad weights, no data, or a bad option. The message names the culprit."""


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One report column: a weights file, or the random-init baseline (``weights`` None)."""

    label: str
    weights: str | WeightsFile | None  # a WeightsFile when --source or --format was given
    sha256: str | None
    stats: Path | None  # the pretraining stats.jsonl next to the weights, for the report's curves
    baseline: bool = False  # a reference column (random init, or the weights named by --baseline)
    stem: str = "imagenet"  # the trunk's stem (read from the weights; chosen for the random-init column)


@dataclasses.dataclass
class SuiteOutcome:
    """What the suite did; ``failures`` non-empty means the command exits non-zero."""

    runs: dict[str, list[TaskResult]]
    ran: list[str]
    reused: list[str]
    skipped: dict[str, str]
    failures: dict[str, str]
    report: dict[str, Path]


def default_labels(weights: Sequence[str]) -> list[str]:
    """The file stem of each weights file, or ``parent/stem`` where stems repeat."""
    stems = [Path(path).stem for path in weights]
    return [stem if stems.count(stem) == 1 else f"{Path(path).parent.name}/{stem}"
            for stem, path in zip(stems, weights)]


def prepare_backbones(weights: Sequence[str], arch: str, labels: Sequence[str] | None,
                      random_init: bool, baseline: str = "", stem: str = "") -> list[Backbone]:
    """Checks every weights file is a complete ``arch`` trunk (before any work) and names the columns.

    The random-init column gets ``stem``, or else the stem the weights share (the ImageNet stem without weights),
    so a small-image backbone is compared with a random trunk of the same shape.
    """
    if not weights and not random_init:
        raise SuiteError("give at least one weights file (or --random-init for the baseline alone)")
    labels = list(labels) if labels else default_labels(weights)
    if len(labels) != len(weights):
        raise SuiteError(f"got {len(labels)} label(s) for {len(weights)} weights file(s)")
    if len(set(labels)) != len(labels) or (random_init and RANDOM_INIT_COLUMN in labels):
        raise SuiteError(f"backbone labels must be distinct (and not '{RANDOM_INIT_COLUMN}'): {labels}")
    if baseline and baseline not in labels:
        raise SuiteError(f"baseline {baseline!r} is not one of the backbone labels {labels}")
    backbones = []
    for label, path in zip(labels, weights):
        try:
            state, _ = load_backbone_state_dict(path, arch=arch)
            weights_stem = stem_of_state(state, str(path))
        except Exception as error:  # CheckpointError names the file and the tensor
            raise SuiteError(f"weights {path} cannot be used as a {arch} backbone: {error}") from error
        stats = Path(path).parent / "stats.jsonl"
        backbones.append(Backbone(label, path if isinstance(path, WeightsFile) else str(path), file_sha256(path),
                                  stats if stats.is_file() else None, baseline=label == baseline, stem=weights_stem))
    if random_init:
        backbones.append(Backbone(RANDOM_INIT_COLUMN, None, None, None, baseline=True,
                                  stem=_random_init_stem(backbones, stem)))
    return backbones


def _random_init_stem(backbones: Sequence[Backbone], stem: str) -> str:
    if stem:
        return stem
    stems = sorted({backbone.stem for backbone in backbones})
    if len(stems) > 1:
        raise SuiteError(f"the weights have different stems ({', '.join(stems)}); choose the random-init column's "
                         f"with --stem")
    return stems[0] if stems else "imagenet"


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "backbone"


def _reusable(task_dir: Path, backbone: Backbone, request: dict[str, Any]) -> TaskResult | None:
    """The finished result in ``task_dir`` when it was made from these weights with this request."""
    results_path, request_path = task_dir / "results.json", task_dir / REQUEST_FILE
    if not results_path.is_file() or not request_path.is_file():
        return None
    try:
        result = read_result(results_path)
        previous = json.loads(request_path.read_text())
    except (ResultsError, json.JSONDecodeError) as error:
        logger.warning("re-running %s: %s", task_dir, error)
        return None
    same_weights = (result.weights_sha256 == backbone.sha256 if backbone.sha256
                    else result.weights == RANDOM_INIT_LABEL)
    return result if same_weights and previous == request else None


def missing_data_reason(task: TaskSpec, discovery: Discovery) -> str | None:
    """Why ``task`` cannot run on the discovered data (``None`` when it can)."""
    absent = [layout.name for layout in task.datasets if layout.name not in discovery.found]
    if absent:
        return "; ".join(f"no {dataset}: {discovery.missing[dataset]}" for dataset in absent)
    return task.check_data(discovery.found) if task.check_data else None


def select_tasks(names: Sequence[str]) -> list[TaskSpec]:
    """The named tasks in registry order (every default task when ``names`` is empty); unknown names raise."""
    tasks = all_tasks()
    unknown = sorted(set(names) - set(tasks))
    if unknown:
        raise SuiteError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(tasks)}")
    return [task for task in tasks.values() if (task.name in names if names else task.default)]


@dataclasses.dataclass(frozen=True)
class _Job:
    backbone: Backbone
    task: TaskSpec
    seed: int | None
    directory: Path

    @property
    def name(self) -> str:
        return f"{self.backbone.label}/{self.task.name}" + (f"/seed{self.seed}" if self.seed is not None else "")


def _jobs(backbones: list[Backbone], tasks: list[TaskSpec], config: SuiteConfig, runs_dir: Path) -> list[_Job]:
    jobs = []
    for backbone in backbones:
        for task in tasks:
            task_dir = runs_dir / _slug(backbone.label) / task.name
            seeds = range(config.seed, config.seed + config.trials) if task.stochastic else [None]
            jobs += [_Job(backbone, task, seed, task_dir if seed is None else task_dir / f"seed{seed}")
                     for seed in seeds]
    return jobs


def runnable_tasks(tasks: Sequence[TaskSpec], discovery: Discovery) -> tuple[list[TaskSpec], dict[str, str]]:
    """The tasks that have their data, and the reason for each one left out."""
    runnable, skipped = [], {}
    for task in tasks:
        reason = missing_data_reason(task, discovery)
        if reason is None:
            runnable.append(task)
        else:
            skipped[task.name] = reason
    return runnable, skipped


@locks_output("output_dir", "transfer suite")  # tasks lock their own sub-folders
def run_suite(weights: Sequence[str], data_root: str | Path, output_dir: str | Path, config: SuiteConfig,
              labels: Sequence[str] | None = None, title: str = "Barlow Twins transfer report",
              progress: bool = True) -> SuiteOutcome:
    """Runs the selected tasks for each backbone (resuming finished ones) and writes the report."""
    data_root, output_dir = Path(data_root), Path(output_dir)
    if not data_root.is_dir():
        raise SuiteError(f"data root not found: {data_root}")
    weights = [weights_file(path, config.source or None, config.checkpoint_format or None) for path in weights]
    backbones = prepare_backbones(weights, config.arch, labels, config.random_init, config.baseline, config.stem)
    selected = select_tasks(config.tasks)
    discovery = discover(data_root, [layout for task in selected for layout in task.datasets])
    tasks, skipped = runnable_tasks(selected, discovery)
    if not tasks:
        reasons = "\n  ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise SuiteError(f"no selected task has its data under {data_root}:\n  {reasons}")
    engines = task_engines(tasks, config.engine, skipped)
    tasks = [task for task in tasks if task.name in engines]
    log_protocol_forecasts(tasks, engines, config)
    cache_dir = Path(config.feature_cache) if config.feature_cache else output_dir / "feature_cache"
    outcome = SuiteOutcome(runs={backbone.label: [] for backbone in backbones}, ran=[], reused=[], skipped=skipped,
                           failures={}, report={})
    jobs = _jobs(backbones, tasks, config, output_dir / "runs")
    for job in tqdm(jobs, desc="transfer suite", unit="task", disable=not progress):
        _run_job(job, discovery, config, engines[job.task.name], cache_dir, outcome)
        _write_state(output_dir, data_root, engines, outcome)
    outcome.report = write_report(
        outcome.runs, output_dir,
        pretrain_stats={backbone.label: backbone.stats for backbone in backbones if backbone.stats},
        skipped={**outcome.skipped, **{name: f"failed: {error}" for name, error in outcome.failures.items()}},
        title=title)
    _write_state(output_dir, data_root, engines, outcome)
    return outcome


def task_engines(tasks: Sequence[TaskSpec], requested: str, skipped: dict[str, str]) -> dict[str, str]:
    """The engine of each task: ``requested`` where the task has it (``auto``: its first available engine);
    a task whose engine cannot run here is skipped with the reason. A bad engine name raises ``SuiteError``."""
    engines = {}
    for task in tasks:
        wanted = requested if requested in task.runners else "auto"
        try:
            engines[task.name] = choose_engine(task, wanted)
        except EngineUnavailableError as error:
            if requested != "auto":
                raise SuiteError(str(error)) from None
            skipped[task.name] = str(error)
        except UnknownTaskError as error:
            raise SuiteError(str(error)) from None
    return engines


def _request(job: _Job, config: SuiteConfig, engine: str) -> dict[str, Any]:
    """What a finished run must match to be reused: task, seed, arch, engine, and the options it ran with."""
    overrides, config_file = config.options(job.task.name, engine)
    return {"task": job.task.name, "seed": job.seed, "arch": config.arch, "engine": engine, "overrides": overrides,
            "config_file": config_file, "baseline": job.backbone.baseline,
            **({"source": config.source} if config.source else {}),
            **({"stem": job.backbone.stem} if job.backbone.stem != "imagenet" else {})}


def _run_job(job: _Job, discovery: Discovery, config: SuiteConfig, engine: str, cache_dir: Path,
             outcome: SuiteOutcome) -> None:
    request = _request(job, config, engine)
    previous = _reusable(job.directory, job.backbone, request)
    if previous is not None:
        outcome.runs[job.backbone.label].append(previous)
        outcome.reused.append(job.name)
        return
    job.directory.mkdir(parents=True, exist_ok=True)
    (job.directory / REQUEST_FILE).unlink(missing_ok=True)
    started = time.time()
    run = TaskRun(weights=job.backbone.weights, data_root=job.task.root(discovery.found), output_dir=job.directory,
                  arch=config.arch, seed=job.seed, cache_dir=cache_dir, overrides=tuple(request["overrides"]),
                  config_file=request["config_file"], baseline=job.backbone.baseline,
                  stem=job.backbone.stem if job.backbone.weights is None else None)
    try:
        result = run_task(job.task, run, engine)
    except UnsupportedBackboneError as reason:
        outcome.skipped.setdefault(job.task.name, f"{engine} engine: {reason}")
        return
    except KeyboardInterrupt:
        raise
    except Exception as error:  # one broken task must not lose the others; the exit status reports it
        (job.directory / "error.log").write_text(traceback.format_exc())
        outcome.failures[job.name] = f"{type(error).__name__}: {error} (traceback in {job.directory / 'error.log'})"
        logger.error("%s failed: %s", job.name, error)
        return
    atomic_write_json(job.directory / REQUEST_FILE, request)
    outcome.runs[job.backbone.label].append(result)
    outcome.ran.append(job.name)
    logger.info("%s done in %.0f s: %s", job.name, time.time() - started, result.metrics)


def _write_state(output_dir: Path, data_root: Path, engines: dict[str, str], outcome: SuiteOutcome) -> None:
    atomic_write_json(output_dir / "suite.json", {
        "data_root": str(data_root), "engines": engines, "ran": outcome.ran, "reused": outcome.reused,
        "skipped": outcome.skipped, "failures": outcome.failures,
        "report": {name: str(path) for name, path in outcome.report.items()}})
