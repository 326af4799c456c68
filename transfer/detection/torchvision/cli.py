"""Command line of the torchvision engine (``python -m transfer.detection --engine torchvision ...``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Sequence

from core.checkpoint_formats import add_checkpoint_arguments
from core.cli import run_cli
from core.config import resolve_config_file
from core.results import ResultsError
from transfer.detection.torchvision.config import load_detection_config
from transfer.detection.torchvision.runner import CONFIG_DIR, ENGINE
from transfer.detection.torchvision.train import train_and_evaluate
from transfer.registry import all_tasks


def torchvision_tasks() -> dict:
    """The registered tasks with a torchvision runner, by name."""
    return {name: spec for name, spec in all_tasks().items() if ENGINE in spec.runners}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m transfer.detection --engine torchvision",
        description="Fine-tune a pretrained ResNet as Faster/Mask R-CNN FPN with torchvision and evaluate it "
                    "(launch with torchrun --nproc_per_node N for several GPUs).")
    parser.add_argument("--config-file", help="YAML config (see configs/torchvision_detection/); with --task it "
                        "replaces the task's protocol config")
    parser.add_argument("--task", choices=sorted(torchvision_tasks()),
                        help="a registered task: its protocol config and overrides")
    parser.add_argument("--weights", help="pretrained backbone (exported <arch>.pth or any supported checkpoint)")
    add_checkpoint_arguments(parser)
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


def _config_source(args: argparse.Namespace) -> tuple:
    """The config file, the overrides and the typed settings the command line asks for (``ConfigError`` for a
    bad file name)."""
    config_path = resolve_config_file(args.config_file, CONFIG_DIR) if args.config_file else None
    overrides = []
    if args.task:
        runner = torchvision_tasks()[args.task].runners[ENGINE]
        config_path = runner.config_path(args.config_file)
        overrides = [*runner.overrides, f"task={args.task}"]
    settings = {key: value for key, value in (("model.weights", args.weights), ("data.root", args.data_root),
                                              ("model.weights_source", args.source),
                                              ("model.weights_format", args.checkpoint_format),
                                              ("output_dir", args.output_dir), ("seed", args.seed),
                                              ("model.random_init", args.random_init or None))
                if value is not None}
    return config_path, [*overrides, *args.overrides], settings


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv``, runs, prints the metrics; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.task or args.config_file):
        parser.error("give --task or --config-file")
    is_main = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if is_main else logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    return run_cli(lambda: _run(args), user_errors=(ResultsError,))


def _run(args: argparse.Namespace) -> int:
    config = load_detection_config(*_config_source(args))
    result = train_and_evaluate(config, resume=args.resume, eval_only=args.eval_only)
    if result is not None:
        print(json.dumps({"task": result.task, "engine": result.engine, "metrics": result.metrics}, indent=2))
    return 0
