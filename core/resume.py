"""The one resume guard: a run may continue a checkpoint only with the settings that made it.

Every resumable trainer (pretraining, linear and semi-supervised heads, the torchvision detection engine) saves
its settings in its checkpoint and calls ``check_resume`` before loading it, naming the keys that are free to
change (output folders, logging, worker counts, a schedule that may be extended).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ResumeError(ValueError):
    """A checkpoint was made with other settings; the message names every differing key and both values."""


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 0.2}}`` -> ``{"optim.lr": 0.2}``."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _free(key: str, free_keys: frozenset[str]) -> bool:
    parts = key.split(".")
    return any(".".join(parts[:length]) in free_keys for length in range(1, len(parts) + 1))


def changed_settings(saved: Mapping[str, Any], new: Mapping[str, Any],
                     free_keys: frozenset[str] = frozenset()) -> list[str]:
    """``"key: old -> new"`` for every dotted key (outside ``free_keys`` and their sections) that differs."""
    old, current = flatten_settings(saved), flatten_settings(new)
    return [f"{key}: {old.get(key)!r} -> {current.get(key)!r}" for key in sorted(old.keys() | current.keys())
            if not _free(key, free_keys) and old.get(key) != current.get(key)]


def check_resume(saved: Mapping[str, Any], new: Mapping[str, Any], free_keys: frozenset[str] = frozenset(),
                 source: str = "the checkpoint") -> None:
    """Raises ``ResumeError`` unless ``new`` settings equal the ``saved`` ones outside ``free_keys``."""
    changes = changed_settings(saved, new, free_keys)
    if changes:
        raise ResumeError(f"{source} was made with other settings ({', '.join(changes)}); resume with the same "
                          "settings or use another output folder")
