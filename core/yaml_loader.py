"""The YAML reader of config files and ``key=value`` overrides: PyYAML's safe loader with numbers as Python
reads them.

PyYAML follows YAML 1.1, whose float pattern needs a dot and a signed exponent: ``1e-6``, ``1e30`` and
``1E+6`` are read as *strings* there, although ``float()`` (and YAML 1.2) read them as numbers. ``ConfigLoader``
resolves every plain scalar that ``float()`` accepts in decimal notation (``1e-6``, ``1E6``, ``.5``, ``5.``,
``-1e+30``, ``1_000.5``) as a float, plus YAML's ``.inf`` / ``.nan``; integers stay integers. Words such as
``inf`` or ``nan`` stay strings, as in YAML. The subclass is local: ``yaml.safe_load`` is unchanged.

Numbers keep the text they were written with (``NumberText``), so that a string-typed key given ``1e-6`` keeps
``"1e-6"`` rather than Python's ``"1e-06"``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

FLOAT_TAG = "tag:yaml.org,2002:float"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_PATTERN = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?
                               |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                               |[-+]?\.(?:inf|Inf|INF)
                               |\.(?:nan|NaN|NAN))$""", re.X)


class FloatText(float):
    """A float that remembers how it was written."""

    text: str


class IntText(int):
    """An int that remembers how it was written."""

    text: str


NumberText = (FloatText, IntText)


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the float rule above and numbers that keep their text."""

    def construct_yaml_float(self, node: yaml.ScalarNode) -> FloatText:
        value = FloatText(super().construct_yaml_float(node))
        value.text = node.value
        return value

    def construct_yaml_int(self, node: yaml.ScalarNode) -> IntText:
        value = IntText(super().construct_yaml_int(node))
        value.text = node.value
        return value


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "-+0123456789.":
    # Before the int rule, which does not match a dot or an exponent.
    ConfigLoader.yaml_implicit_resolvers.setdefault(_first, []).insert(0, (FLOAT_TAG, FLOAT_PATTERN))
ConfigLoader.add_constructor(FLOAT_TAG, ConfigLoader.construct_yaml_float)
ConfigLoader.add_constructor(INT_TAG, ConfigLoader.construct_yaml_int)


def load_yaml(text: str) -> Any:
    """Parses one YAML document with ``ConfigLoader``."""
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def plain(value: Any) -> Any:
    """``value`` with ``FloatText`` / ``IntText`` turned back into float / int (for saving and comparing)."""
    if isinstance(value, FloatText):
        return float(value)
    if isinstance(value, IntText):
        return int(value)
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
