"""The detectron2 detection engine: weight conversion, the paper's configs and ``train_net``. Only ``train_net``,
``verify``, ``evaluators`` and ``roi_heads`` import detectron2."""
