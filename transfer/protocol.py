"""Protocols: the values that make a transfer number comparable with the paper's, and the check against them.

A task's spec (``transfer.registry.TaskSpec``) carries the ``Protocol`` of the number it reports: total batch,
iterations or epochs, base learning rate, feature layer and dimension, image size, detector model, backbone
architecture. Every run records the values it actually used, after any rescaling to the number of processes, in
``results.json`` (``TaskResult.protocol``). ``protocol_differences`` compares the two; the report puts a result
in the paper-style tables only when nothing differs, and otherwise names each differing value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

# The vocabulary of protocol facts, in the order the report names them.
PROTOCOL_KEYS: dict[str, str] = {
    "arch": "backbone",
    "stem": "stem",
    "engine": "engine",
    "model": "model",
    "processes": "processes",
    "total_batch": "total batch",
    "iterations": "iterations",
    "epochs": "epochs",
    "mode": "head input",
    "optimizer": "optimizer",
    "base_lr": "learning rate",
    "backbone_lr": "trunk learning rate",
    "lr_schedule": "schedule",
    "norm": "normalisation",
    "feature_layer": "feature layer",
    "feature_dim": "feature dim",
    "image_size": "image size",
    "train_subset": "train subset",
    "augmentation": "train augmentation",
    "trunk_batchnorm": "trunk BatchNorm",
    "knn_k": "k",
    "knn_temperature": "temperature",
    "metric": "metric",
}
NOT_RECORDED = "not recorded"


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The protocol values a result must have used, and the source that fixes them (paper section or code)."""

    values: Mapping[str, Any]
    source: str

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(PROTOCOL_KEYS))
        if unknown:
            raise ValueError(f"unknown protocol key(s) {', '.join(unknown)}; known: {', '.join(PROTOCOL_KEYS)}")


def _same(used: Any, expected: Any) -> bool:
    if isinstance(expected, float) or isinstance(used, float):
        return (isinstance(used, (int, float)) and not isinstance(used, bool)
                and math.isclose(float(used), float(expected), rel_tol=1e-6, abs_tol=1e-12))
    return used == expected


def protocol_differences(used: Mapping[str, Any] | None, protocol: Protocol) -> dict[str, tuple[Any, Any]]:
    """``{key: (used, expected)}`` for every protocol value the run did not match; a value the results file does
    not record counts as different (``NOT_RECORDED``)."""
    used = used or {}
    differences = {}
    for key, expected in protocol.values.items():
        value = used.get(key, NOT_RECORDED)
        if value == NOT_RECORDED or not _same(value, expected):
            differences[key] = (value, expected)
    return differences


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_differences(differences: Mapping[str, tuple[Any, Any]]) -> str:
    """``"total batch 2 (protocol 16), iterations 192000 (24000)"`` in ``PROTOCOL_KEYS`` order."""
    parts = []
    for index, key in enumerate(key for key in PROTOCOL_KEYS if key in differences):
        used, expected = differences[key]
        parts.append(f"{PROTOCOL_KEYS[key]} {_show(used)} ({'protocol ' if index == 0 else ''}{_show(expected)})")
    return ", ".join(parts)
