"""The two detection engines as the registry knows them: detectron2 (the paper's protocol, optional, built from
source) and torchvision (always available). Importing this module never imports detectron2."""

from __future__ import annotations

import importlib.util

from transfer.registry import Engine, register_engine

DETECTRON2_INSTALL = ("detectron2 is not installed (it is not on PyPI: build it from source, see docs/detectron2.md); "
                      "use the torchvision engine (--engine torchvision) instead")


def detectron2_available() -> bool:
    """Whether ``import detectron2`` would succeed."""
    return importlib.util.find_spec("detectron2") is not None


DETECTRON2 = register_engine(Engine("detectron2", available=lambda: detectron2_available(),
                                    how_to_install=DETECTRON2_INSTALL)).name
TORCHVISION = register_engine(Engine("torchvision", available=lambda: True)).name
