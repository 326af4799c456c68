"""The detection transfer tasks. Each module registers its ``TaskSpec`` (``transfer.registry``) with a runner per
engine; every module of this package is imported when the registry is first read."""
