"""Detection transfer: detectron2 (``train_net``, weight conversion) and torchvision engines.

Importing this package never imports detectron2; only the ``d2_verify``, ``d2_evaluators``,
``roi_heads`` and ``train_net`` modules need it.
"""


class UnsupportedBackboneError(ValueError):
    """A detection engine cannot build a detector around the requested backbone arch (the suite skips the task)."""
