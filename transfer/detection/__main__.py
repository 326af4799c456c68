"""``python -m transfer.detection --engine {detectron2,torchvision} ...``: one entry point, two engines.

``--engine detectron2`` hands the remaining arguments to ``transfer.detection.detectron2.train_net.run`` (detectron2's
argument style); ``--engine torchvision`` to ``transfer.detection.torchvision.cli``. Without ``--engine``,
detectron2 is used when it is importable, torchvision otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from transfer.detection.engines import detectron2_available


def _run_detectron2(argv: list[str]) -> int:
    if not detectron2_available():
        print("error: --engine detectron2 needs detectron2, which is not installed (it is not on PyPI: build it "
              "from source, see docs/detectron2.md). Use --engine torchvision to fine-tune with torchvision only.",
              file=sys.stderr)
        return 2
    from transfer.detection.detectron2 import train_net

    return train_net.run(argv)


def _run_torchvision(argv: list[str]) -> int:
    from transfer.detection.torchvision.cli import main

    return main(argv)


ENGINES = {"detectron2": _run_detectron2, "torchvision": _run_torchvision}


def main(argv: Sequence[str] | None = None) -> int:
    """Picks the engine and passes it every other argument."""
    parser = argparse.ArgumentParser(prog="python -m transfer.detection", add_help=False, allow_abbrev=False)
    parser.add_argument("--engine", choices=sorted(ENGINES), default=None)
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    engine = args.engine or ("detectron2" if detectron2_available() else "torchvision")
    return ENGINES[engine](rest)


if __name__ == "__main__":
    sys.exit(main())
