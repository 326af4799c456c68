"""Reads detectron2 ``.pkl`` weights safely and checks detectron2 will match their names.

detectron2's ``DetectionCheckpointer`` opens ``.pkl`` files with plain ``pickle.load``, which runs any
callable the file names. ``read_detectron2_weights`` unpickles with ``core.safe_pickle`` (numpy arrays
and containers only) and refuses files detectron2 would load without name matching; train_net hands
the dict it returns to detectron2 instead of letting detectron2 unpickle the file again. No detectron2
import here, so this is testable without it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from core.safe_pickle import load_safe_pickle


class WeightsError(ValueError):
    """The weights file is unsafe, unreadable, or would load into detectron2 without name matching."""


def read_detectron2_weights(path: str | Path) -> dict[str, Any]:
    """``{"model": {name: ndarray}, "__author__", "matching_heuristics": True}`` from ``path``, checked.

    Raises ``WeightsError`` naming the file for a pickle referencing anything but numpy arrays and
    containers (never executed), an unreadable file, or a layout without ``matching_heuristics`` (whose
    torchvision-style names detectron2 would match to nothing, silently training from random weights).
    """
    try:
        data = load_safe_pickle(path)
    except pickle.UnpicklingError as error:
        raise WeightsError(f"{path}: not loaded: {error}") from None
    except (OSError, EOFError, ValueError) as error:
        raise WeightsError(f"{path} is not a readable pickle: {error!r}") from None
    if not (isinstance(data, dict) and isinstance(data.get("model"), dict) and data.get("matching_heuristics")):
        raise WeightsError(f"{path} lacks 'matching_heuristics': detectron2 would match no torchvision-style "
                           "names and silently train from random weights; convert it with tools/convert_to_d2.py")
    return data
