"""Command line of the torchvision engine (``python -m transfer.detection --engine torchvision ...``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

from core.checkpoint import CheckpointError
from core.config import ConfigError, resolve_config_file
from core.resume import ResumeError
from transfer.detection.torchvision.config import load_detection_config
from transfer.detection.torchvision.datasets import DatasetError
from transfer.detection.torchvision.tasks import CONFIG_DIR, TASKS
from transfer.detection.torchvision.train import train_and_evaluate
from core.results import ResultsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m transfer.detection --engine torchvision",
        description="Fine-tune a pretrained ResNet as Faster/Mask R-CNN FPN with torchvision and evaluate it "
                    "(launch with torchrun --nproc_per_node N for several GPUs).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config-file", help="YAML config (see configs/torchvision_detection/)")
    source.add_argument("--task", choices=sorted(TASKS), help="use the protocol config of a task")
    parser.add_argument("--weights", help="pretrained backbone (exported <arch>.pth or any supported checkpoint)")
    parser.add_argument("--data-root", help="dataset root: the VOCdevkit directory, or the coco directory")
    parser.add_argument("--output-dir", help="where config, checkpoint and results.json go")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--random-init", action="store_true", help="train from a random backbone (baseline)")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="ignore OUTPUT_DIR/checkpoint.pth and start again (it is overwritten)")
    parser.add_argument("--resume", dest="resume", action="store_true", help="resume if a checkpoint exists (default)")
    parser.add_argument("--eval-only", action="store_true", help="evaluate OUTPUT_DIR/checkpoint.pth without training")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. solver.max_iter=100")
    return parser


def _quoted(key: str, value: object) -> str:
    return f"{key}={json.dumps(value)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv``, runs, prints the metrics; returns the exit status."""
    args = build_parser().parse_args(argv)
    is_main = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if is_main else logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    config_path = resolve_config_file(args.config_file, CONFIG_DIR) if args.config_file else None
    overrides = []
    if args.task:
        config_name, task_overrides = TASKS[args.task]
        config_path, overrides = CONFIG_DIR / config_name, list(task_overrides)
    overrides += [_quoted(key, value) for key, value in (("model.weights", args.weights), ("data.root", args.data_root),
                                                          ("output_dir", args.output_dir), ("seed", args.seed))
                  if value is not None]
    if args.random_init:
        overrides.append("model.random_init=true")
    try:
        config = load_detection_config(config_path, [*overrides, *args.overrides])
        result = train_and_evaluate(config, resume=args.resume, eval_only=args.eval_only)
    except (ConfigError, DatasetError, CheckpointError, ResultsError, ResumeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps({"task": result.task, "engine": result.engine, "metrics": result.metrics}, indent=2))
    return 0
