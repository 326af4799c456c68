"""Command line for the classification transfer tasks (every task of ``transfer.registry`` run by the pytorch engine).

    python -m transfer.classification TASK --weights resnet50.pth --data-root DATA --output OUT [key=value ...]
    torchrun --nproc_per_node 8 -m transfer.classification places205_linear --weights resnet50.pth \\
        --data-root /data/places205 --output out/places205 batch_size=256

``key=value`` overrides the task's config (``configs/transfer/<task>.yaml``), e.g. ``epochs=2
image_size=64 features.batch_size=32``. The result is written to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from core.checkpoint import weights_file
from core.checkpoint_formats import add_checkpoint_arguments
from core.cli import run_cli
from core.results import ResultsError
from transfer.classification.task_setup import ENGINE
from transfer.registry import TaskRun, all_tasks, run_task


def classification_tasks() -> dict:
    """The registered tasks this command runs (those with a pytorch runner)."""
    return {name: spec for name, spec in all_tasks().items() if ENGINE in spec.runners}


def main(argv: Sequence[str] | None = None) -> int:
    tasks = classification_tasks()
    parser = argparse.ArgumentParser(prog="python -m transfer.classification", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(tasks))
    parser.add_argument("--weights", help="backbone weights (.pth): export, pretraining checkpoint, official release")
    parser.add_argument("--random-init", action="store_true", help="evaluate a randomly initialised trunk (baseline)")
    parser.add_argument("--baseline", action="store_true", help="mark the result as a reference column of the report")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--stem", choices=("imagenet", "small"),
                        help="stem of the --random-init trunk (default imagenet; weights carry their own)")
    parser.add_argument("--seed", type=int, help="seed of the stochastic tasks (linear, semi-supervised)")
    add_checkpoint_arguments(parser)
    parser.add_argument("--data-root", required=True, help="the data set's own root, e.g. .../VOCdevkit/VOC2007")
    parser.add_argument("--output", required=True, help="output folder (results.json, feature cache, checkpoints)")
    parser.add_argument("--config", help="task config YAML (default: configs/transfer/<task>.yaml)")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_intermixed_args(argv)
    if not args.weights and not args.random_init:
        parser.error("give --weights or --random-init")
    if args.weights and args.random_init:
        print(f"error: give either --weights ({args.weights}) or --random-init, not both", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run = TaskRun(weights=weights_file(args.weights, args.source, args.checkpoint_format),
                  data_root=Path(args.data_root), output_dir=Path(args.output), arch=args.arch, seed=args.seed,
                  overrides=tuple(args.overrides), config_file=args.config, baseline=args.baseline or args.random_init,
                  stem=args.stem)

    def body() -> int:
        result = run_task(tasks[args.task], run, ENGINE)
        print(json.dumps({"task": result.task, "metrics": result.metrics, "results": f"{args.output}/results.json"}))
        return 0

    # FileNotFoundError/ValueError: a missing --config file or data path, an unknown --arch (as before).
    return run_cli(body, user_errors=(ResultsError, FileNotFoundError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
