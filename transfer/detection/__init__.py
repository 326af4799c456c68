"""Detection transfer: detectron2 (``train_net``, weight conversion) and torchvision engines.

The engine-neutral front (``engines``, ``launch``, ``tasks``) and the two engines, ``torchvision/`` and
``detectron2/``. Importing this package never imports detectron2; only ``detectron2.verify``,
``detectron2.evaluators``, ``detectron2.roi_heads`` and ``detectron2.train_net`` need it.
"""


class UnsupportedBackboneError(ValueError):
    """A detection engine cannot build a detector around the requested backbone arch (the suite skips the task)."""
