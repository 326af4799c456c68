"""Reads plain pickles (detectron2 ``.pkl`` weights) without running code from the file.

``pickle.load`` calls whatever callable a file names, so a downloaded ``.pkl`` can run arbitrary
commands. ``load_safe_pickle`` resolves only the globals that rebuild numpy arrays and plain
containers; any other global (``os.system``, ``builtins.eval``, a class of some package) is refused
before it is called.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import Any

import numpy as np

# (module, name) pairs a weights pickle may reference. numpy 2 moved ``numpy.core`` to ``numpy._core``.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),  # protocol 5 arrays
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol 2 spells bytes written by Python 3
    ("collections", "OrderedDict"),
    *(("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "bytearray")),
    *(("__builtin__", name) for name in ("dict", "list", "tuple", "set", "frozenset")),  # Python 2 pickles
})


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside ``ALLOWED_GLOBALS``."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` only returns numpy array builders and builtin containers."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(f"refusing to load global '{module}.{name}' (only numpy arrays and plain "
                                    "containers are allowed in a weights pickle)")
        if module.startswith("numpy."):
            # numpy 1 has no numpy._core and numpy 2 warns on numpy.core: resolve either on the installed one.
            core = getattr(np, "_core", None) or np.core
            return getattr(getattr(core, module.rsplit(".", 1)[1]), name)
        if module == "numpy":
            return getattr(np, name)
        if module == "collections":
            return collections.OrderedDict
        return super().find_class(module, name)


def load_safe_pickle(path: str | Path) -> Any:
    """Unpickles ``path`` allowing only numpy arrays and builtin containers (``latin1`` for Python 2 files)."""
    with open(path, "rb") as handle:
        return RestrictedUnpickler(handle, encoding="latin1").load()
