"""Command line: ``python -m pretrain CONFIG [key=value ...]`` (one process, or one per GPU under torchrun).

Exit codes: 0 training complete; 2 bad input (config key/type, data folder, checkpoint), a busy or unusable
output folder, or a full disk, reported in one line; 3 training diverged (NaN/inf loss, or NaN/inf/exploded
weights): nothing poisoned was saved, ``checkpoint.pth`` keeps the last good state; 75 stopped by
SIGTERM/SIGUSR1 or ``stop_after_steps`` after saving a checkpoint (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from core.cli import run_cli
from core.config import load_config, resolve_config_file
from pretrain.knn_monitor import KnnMonitor
from pretrain.online_probe import build_online_probe
from pretrain.pretrain_config import CONFIG_DIR, PretrainConfig
from pretrain.signals import EXIT_PREEMPTED
from pretrain.train import pretrain
from pretrain.training_state import TrainingDivergedError

EXIT_DIVERGED = 3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pretrain", description="Barlow Twins pretraining (resumes automatically from "
                                               "OUTPUT_DIR/checkpoint.pth). See docs/pretraining.md.")
    parser.add_argument("config", help="YAML config, e.g. configs/pretrain/barlowtwins_r50_1000ep.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, dotted for sections: epochs=100 data.root=/data/train")
    return parser.parse_args(argv)


def configure_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs pretraining and returns the process exit code (see the module docstring)."""
    args = parse_args(argv)
    configure_logging()

    def run() -> int:
        config = load_config(PretrainConfig, resolve_config_file(args.config, CONFIG_DIR), args.overrides)
        try:
            probe = build_online_probe(config)
            callbacks = [KnnMonitor(config.knn, config.data.image_size), *([probe] if probe else [])]
            outcome = pretrain(config, callbacks=callbacks, step_hooks=[probe] if probe else [])
        except TrainingDivergedError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_DIVERGED
        return EXIT_PREEMPTED if outcome == "preempted" else 0

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
