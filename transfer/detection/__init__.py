"""Detection transfer: detectron2 (``train_net``, weight conversion) and torchvision engines.

Importing this package never imports detectron2; only the ``d2_*``, ``roi_heads`` and ``train_net``
modules need it.
"""
