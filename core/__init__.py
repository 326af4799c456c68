"""Shared infrastructure below both stages: config, atomic writes, distributed context, checkpoints and the
backbone loader, the results schema, the stats log, resume checks. Imports nothing from ``pretrain`` or
``transfer``."""
