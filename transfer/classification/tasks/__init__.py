"""The classification transfer tasks. Each module registers its ``TaskSpec`` (``transfer.registry``) on import;
every module of this package is imported when the registry is first read, so a new task is one new module here
plus its config in ``transfer/classification/configs/``."""
