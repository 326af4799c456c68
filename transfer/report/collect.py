"""Collects the ``results.json`` files under result directories, one backbone per directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transfer.report.errors import ReportError
from core.results import ResultsError, TaskResult, read_result

RESULTS_FILE = "results.json"


def collect_results(results_dir: str | Path) -> list[TaskResult]:
    """Every ``**/results.json`` under ``results_dir`` (sorted by path); errors name the offending file."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"results directory not found: {results_dir}")
    paths = sorted(results_dir.rglob(RESULTS_FILE))
    if not paths:
        raise ReportError(f"no {RESULTS_FILE} found under {results_dir}")
    try:
        return [read_result(path) for path in paths]
    except ResultsError as error:
        raise ReportError(f"bad results file: {error}") from error


def collect_runs(results_dirs: Sequence[str | Path],
                 labels: Sequence[str] | None = None) -> dict[str, list[TaskResult]]:
    """Backbone label -> results, one label per directory (default: the directory's name)."""
    if labels is not None and len(labels) != len(results_dirs):
        raise ReportError(f"got {len(labels)} label(s) for {len(results_dirs)} results director(y/ies)")
    names = list(labels) if labels is not None else [Path(directory).resolve().name for directory in results_dirs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ReportError(f"duplicate backbone label(s) {', '.join(duplicates)}: pass distinct --labels")
    return {name: collect_results(directory) for name, directory in zip(names, results_dirs)}
