#!/usr/bin/env python
"""Converts ResNet weights into detectron2's ``.pkl`` format for detection transfer.

    python tools/convert_to_d2.py INPUT OUTPUT.pkl [--arch resnet50] [--detectron2-check {auto,yes,no}]

INPUT: any checkpoint ``core.checkpoint.load_backbone_state_dict`` reads (``.pth``, ``.safetensors``,
``.pkl``; this project's export or pretraining checkpoint, torchvision/timm weights and the public
SSL releases of docs/checkpoints.md); ``--source``/``--format`` as in every other CLI.
Exits with status 2 and a one-line message naming the problem when the input is not a complete ``--arch``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

# Run as a script from a clone without installing the package: the repository root holds it.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from core.checkpoint import CheckpointError, weights_file  # noqa: E402
from core.checkpoint_formats import add_checkpoint_arguments  # noqa: E402
from core.cli import run_cli  # noqa: E402
from transfer.detection.detectron2.convert import ARCHITECTURES, ConversionError, convert_checkpoint  # noqa: E402

CHECK_CHOICES = {"auto": None, "yes": True, "no": False}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="checkpoint or state dict holding a torchvision ResNet")
    parser.add_argument("output", type=Path, help="detectron2 weights to write (must end in .pkl)")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="resnet50",
                        help="torchvision ResNet of INPUT (default resnet50); detectron2 builds resnet18/34 "
                             "only as FPN backbones")
    parser.add_argument("--detectron2-check", choices=CHECK_CHOICES, default="auto",
                        help="load the output into a detectron2 model (R-C4; R-FPN for resnet18/34) and require "
                             "every trunk tensor to match (auto: when detectron2 is importable)")
    add_checkpoint_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a summary; exit status 2 on bad input (one line naming it)."""
    args = parse_args(argv)

    def run() -> int:
        source = weights_file(args.input, args.source, args.checkpoint_format)
        summary = convert_checkpoint(source, args.output, CHECK_CHOICES[args.detectron2_check], args.arch)
        print(summary.describe())
        return 0

    return run_cli(run, user_errors=(CheckpointError, ConversionError), prog="convert_to_d2.py")


if __name__ == "__main__":
    sys.exit(main())
