"""CLI: ``python -m transfer.suite WEIGHTS [WEIGHTS ...] --data-root DIR --output OUT [options] [key=value ...]``.

Runs every transfer task that has data under DIR for each weights file (one report column each), resumes
finished tasks, and writes OUT/report.md, OUT/report.html and OUT/summary.json. Options map onto
``transfer.suite.config.SuiteConfig``; ``--config FILE`` and trailing ``key=value`` overrides set the rest
(e.g. ``overrides.voc07_svm=[features.batch_size=32]``). Exit status: 0 when every task ran or was
skipped for a stated reason, 1 when a task failed, 2 for bad input (one line: a config key, a missing path, an
output folder in use by another suite or not writable, a full disk).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from core.checkpoint_formats import add_checkpoint_arguments
from core.cli import run_cli
from core.config import load_config, resolve_config_file
from core.results import ResultsError
from transfer.registry import all_tasks
from transfer.report import ReportError
from transfer.suite.config import CONFIG_DIR, SuiteConfig
from transfer.suite.runner import SuiteError, run_suite


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m transfer.suite", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=f"tasks: {', '.join(all_tasks())}")
    parser.add_argument("weights", nargs="*", help="backbone weights files (.pth), one report column each")
    parser.add_argument("--data-root", required=True, help="folder holding VOCdevkit/, coco/, places205/, ...")
    parser.add_argument("--output", required=True, help="folder for the runs, feature cache and report")
    parser.add_argument("--config", help="YAML file of SuiteConfig keys (e.g. configs/suite/demo.yaml)")
    parser.add_argument("--labels", nargs="+", help="report column name per weights file (default: file names)")
    parser.add_argument("--tasks", nargs="+", help="tasks to run (default: every default task with data)")
    parser.add_argument("--trials", type=int, help="seeds per stochastic task (linear, detection); mean ± std")
    parser.add_argument("--random-init", action="store_true", default=None, help="add a random-init column")
    parser.add_argument("--engine", choices=("auto", "detectron2", "torchvision"), help="detection engine")
    parser.add_argument("--arch", help="torchvision ResNet of the weights (default resnet50)")
    parser.add_argument("--stem", choices=("imagenet", "small"),
                        help="stem of the random-init column (default: the weights' stem)")
    parser.add_argument("--baseline", metavar="LABEL", help="mark this backbone as a reference column (like random init)")
    add_checkpoint_arguments(parser)
    parser.add_argument("--title", default="Barlow Twins transfer report")
    args, extra = parser.parse_known_args(argv)
    # key=value items may follow the weights; argparse sees them as weights.
    # key=value items may also follow --tasks, which would take them as task names.
    trailing = [item for item in args.tasks or [] if "=" in item]
    args.tasks = [item for item in args.tasks or [] if "=" not in item] or None
    args.overrides = [*[item for item in args.weights if "=" in item], *trailing, *extra]
    args.weights = [item for item in args.weights if "=" not in item]
    unknown = [item for item in args.overrides if "=" not in item]
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)}")
    return args


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    flags = {"tasks": args.tasks, "trials": args.trials, "random_init": args.random_init, "engine": args.engine,
             "arch": args.arch, "stem": args.stem, "baseline": args.baseline, "source": args.source,
             "checkpoint_format": args.checkpoint_format}
    return [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]


def _spread(summary: dict, backbone: str, task: str, metric: str) -> str:
    """`` ± std (n=N)`` of a task's metric over its trials, or "" for a single trial."""
    aggregate = summary.get("backbones", {}).get(backbone, {}).get("tasks", {}).get(task, {})
    value = aggregate.get("metrics", {}).get(metric, {})
    if not value or value.get("std") is None or value.get("n", 1) < 2:
        return ""
    return f" ± {value['std']:.1f} (n={value['n']})"


def _print_random_init_comparison(summary_path: Path) -> None:
    summary = json.loads(summary_path.read_text())
    comparison = summary.get("random_init_comparison") or []
    for backbone in dict.fromkeys(entry["backbone"] for entry in comparison):
        entries = [entry for entry in comparison if entry["backbone"] == backbone]
        wins = sum(entry["beats_baseline"] for entry in entries)
        print(f"{backbone} beats {entries[0]['baseline']} on {wins} of {len(entries)} classification task(s) "
              f"(mean ± std over trials):")
        for entry in entries:
            value = f"{entry['value']:.1f}{_spread(summary, backbone, entry['task'], entry['metric'])}"
            baseline = (f"{entry['baseline_value']:.1f}"
                        f"{_spread(summary, entry['baseline'], entry['task'], entry['metric'])}")
            print(f"  {entry['task']:<24} {entry['metric']:<5} {value:>17} vs {baseline:>17}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return run_cli(lambda: _run(args), user_errors=(SuiteError, ReportError, ResultsError))


def _run(args: argparse.Namespace) -> int:
    config_file = resolve_config_file(args.config, CONFIG_DIR) if args.config else None
    config = load_config(SuiteConfig, config_file, [*args.overrides, *_flag_overrides(args)])
    outcome = run_suite(args.weights, args.data_root, args.output, config, labels=args.labels, title=args.title)
    print(f"ran {len(outcome.ran)} task(s), reused {len(outcome.reused)}, skipped {len(outcome.skipped)}, "
          f"failed {len(outcome.failures)}")
    for task, reason in outcome.skipped.items():
        print(f"  skipped {task}: {reason}")
    for job, error in outcome.failures.items():
        print(f"  FAILED {job}: {error}", file=sys.stderr)
    _print_random_init_comparison(outcome.report["summary"])
    for name in ("html", "markdown", "summary"):
        print(f"report: {outcome.report[name]}")
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main())
