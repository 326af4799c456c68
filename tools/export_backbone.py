#!/usr/bin/env python
"""Writes the torchvision backbone weights (no ``fc``) of a checkpoint to ``.pth`` and ``.safetensors`` files.

    python tools/export_backbone.py CHECKPOINT OUT.pth [--arch resnet50] [--source NETWORK] [--format NAME]

Writes OUT.pth and OUT.safetensors (its metadata names the arch and the source format).

CHECKPOINT may be this project's ``checkpoint.pth``, the official release's ``checkpoint.pth`` or
``resnet50.pth``, or any torchvision ResNet state dict. The output loads into ``torchvision.models.<arch>()``
with ``load_state_dict(..., strict=False)`` reporting only ``fc.weight`` / ``fc.bias`` missing.
Exit code 2 names the problem when the file is missing, unreadable or not a ``--arch`` checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from core.checkpoint import file_sha256  # noqa: E402
from core.checkpoint_formats import add_checkpoint_arguments  # noqa: E402
from pretrain.export import export_backbone, export_paths  # noqa: E402
from core.cli import run_cli  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="pretraining checkpoint or backbone state dict")
    parser.add_argument("output", type=Path, help="where to write the backbone state dict (.pth)")
    parser.add_argument("--arch", default="resnet50", help="torchvision ResNet name (default resnet50)")
    add_checkpoint_arguments(parser)
    args = parser.parse_args(argv)

    def run() -> int:
        source_format = export_backbone(args.checkpoint, args.output, arch=args.arch, source=args.source,
                                        format_name=args.checkpoint_format)
        for path in export_paths(args.output):
            print(f"{args.checkpoint} ({source_format}) -> {path} ({args.arch} backbone, "
                  f"sha256 {file_sha256(path)[:12]})")
        return 0

    return run_cli(run, user_errors=(ValueError,))  # ValueError: CheckpointError, or an unknown --arch


if __name__ == "__main__":
    sys.exit(main())
