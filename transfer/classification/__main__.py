"""Command line for the classification transfer tasks (``transfer.classification.tasks.CLASSIFICATION_TASKS``).

    python -m transfer.classification TASK --weights resnet50.pth --data-root DATA --output OUT [key=value ...]
    torchrun --nproc_per_node 8 -m transfer.classification places205_linear --weights resnet50.pth \
        --data-root /data/places205 --output out/places205 batch_size=256

``key=value`` overrides the task's config (``configs/transfer/<task>.yaml``), e.g. ``epochs=2
image_size=64 features.batch_size=32``. The result is written to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from core.cli import run_cli
from core.results import ResultsError
from transfer.classification.tasks import CLASSIFICATION_TASKS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transfer.classification", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(CLASSIFICATION_TASKS))
    parser.add_argument("--weights", help="backbone weights (.pth): export, pretraining checkpoint, official release")
    parser.add_argument("--random-init", action="store_true", help="evaluate a randomly initialised trunk (baseline)")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--data-root", required=True, help="the data set's own root, e.g. .../VOCdevkit/VOC2007")
    parser.add_argument("--output", required=True, help="output folder (results.json, feature cache, checkpoints)")
    parser.add_argument("--config", help="task config YAML (default: configs/transfer/<task>.yaml)")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_intermixed_args(argv)
    if not args.weights and not args.random_init:
        parser.error("give --weights or --random-init")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def run() -> int:
        result = CLASSIFICATION_TASKS[args.task](args.weights, args.data_root, args.output, arch=args.arch,
                                                 random_init=args.random_init, config_path=args.config,
                                                 overrides=args.overrides)
        print(json.dumps({"task": result.task, "metrics": result.metrics, "results": f"{args.output}/results.json"}))
        return 0

    # FileNotFoundError/ValueError: a missing --config file or data path, an unknown --arch (as before).
    return run_cli(run, user_errors=(ResultsError, FileNotFoundError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
