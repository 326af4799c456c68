"""Typed configuration shared by every stage: YAML files plus ``key=value`` overrides.

A stage declares its options as a (possibly nested) ``@dataclass`` with defaults. ``load_config``
reads a YAML mapping, applies command-line overrides (dotted keys reach nested dataclasses,
``optim.lr=0.3``), and checks every key and value against the dataclass, so a typo or a wrong type
fails before any work starts, with a message naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Sequence, TypeVar, Union

import yaml

ConfigT = TypeVar("ConfigT")


class ConfigError(ValueError):
    """A configuration file or override is malformed, names an unknown key, or has a wrong type."""


def require_value(condition: bool, key: str, value: object, expectation: str) -> None:
    """For a config dataclass's ``__post_init__``: a ``ValueError`` naming ``key`` unless ``condition`` holds
    (``load_config`` turns it into a ``ConfigError``)."""
    if not condition:
        raise ValueError(f"config key '{key}' has value {value!r}, expected {expectation}")


def load_config(cls: type[ConfigT], path: str | Path | None = None, overrides: Sequence[str] = ()) -> ConfigT:
    """Builds ``cls`` from its defaults, the YAML file at ``path`` (if any), then ``overrides``.

    Later sources win. Each override is ``key=value`` where ``value`` is parsed as YAML
    (``epochs=10``, ``projector=512-512``, ``sizes=[480,512]``, ``name=null``).
    """
    values: dict[str, Any] = {}
    if path is not None:
        values = _read_yaml_mapping(Path(path))
        _check_keys(cls, values, source=str(path))
    for override in overrides:
        key, raw_value = _split_override(override)
        _set_dotted(cls, values, key.split("."), _parse_value(raw_value, override), source=f"override '{override}'")
    return _build(cls, values, source=str(path) if path is not None else "overrides", prefix="")


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict form of a config dataclass (YAML/JSON serialisable)."""
    return _to_plain(dataclasses.asdict(config))


def save_config(config: Any, path: str | Path) -> None:
    """Writes the resolved config as YAML, loadable again with ``load_config``."""
    from core.atomic import atomic_write

    with atomic_write(path, mode="w") as handle:
        yaml.safe_dump(config_to_dict(config), handle, sort_keys=False)


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values, got {type(data).__name__}")
    return data


def _split_override(override: str) -> tuple[str, str]:
    key, separator, value = override.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"override '{override}' must have the form key=value")
    return key.strip(), value


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {field.name: field for field in dataclasses.fields(cls)}


def _resolved_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_keys(cls: type, values: dict[str, Any], source: str, prefix: str = "") -> None:
    fields = _fields(cls)
    hints = _resolved_types(cls)
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(_unknown_key_message(cls, prefix + str(key), source))
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            _check_keys(hints[key], value, source, prefix=f"{prefix}{key}.")


def _unknown_key_message(cls: type, dotted_key: str, source: str) -> str:
    valid = ", ".join(sorted(_fields(cls)))
    return f"unknown config key '{dotted_key}' in {source}; valid keys here: {valid}"


def _parse_value(raw_value: str, override: str) -> Any:
    try:
        return yaml.safe_load(raw_value)
    except yaml.YAMLError as error:
        raise ConfigError(f"override '{override}': the value is not valid YAML ({error})") from error


def _set_dotted(cls: type, values: dict[str, Any], parts: list[str], value: Any, source: str, prefix: str = "") -> None:
    fields = _fields(cls)
    head = parts[0]
    if head not in fields:
        raise ConfigError(_unknown_key_message(cls, prefix + ".".join(parts), source))
    if len(parts) == 1:
        values[head] = value
        return
    field_type = _resolved_types(cls)[head]
    if not dataclasses.is_dataclass(field_type):
        raise ConfigError(f"config key '{head}' is not a section, cannot set '{'.'.join(parts)}' ({source})")
    nested = values.setdefault(head, {})
    if not isinstance(nested, dict):
        raise ConfigError(f"config key '{head}' must be a mapping ({source})")
    _set_dotted(field_type, nested, parts[1:], value, source, prefix=f"{prefix}{head}.")


def _build(cls: type[ConfigT], values: dict[str, Any], source: str, prefix: str) -> ConfigT:
    hints = _resolved_types(cls)
    kwargs: dict[str, Any] = {}
    for name, field in _fields(cls).items():
        expected = hints[name]
        dotted = prefix + name
        if dataclasses.is_dataclass(expected):
            nested_values = values.get(name, {})
            if not isinstance(nested_values, dict):
                raise ConfigError(f"config key '{dotted}' must be a mapping, got {nested_values!r} ({source})")
            kwargs[name] = _build(expected, nested_values, source, prefix=dotted + ".")
        elif name in values:
            kwargs[name] = _coerce(values[name], expected, dotted, source)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid config ({source}): {error}") from error


def _coerce(value: Any, expected: Any, key: str, source: str) -> Any:
    """Returns ``value`` as type ``expected`` or raises ``ConfigError`` naming the key."""
    origin = typing.get_origin(expected)
    if expected is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(expected)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key, source)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"config key '{key}' has value {value!r}, expected {_type_name(expected)} ({source})")
    if origin is typing.Literal:
        if value in typing.get_args(expected):
            return value
        choices = ", ".join(repr(choice) for choice in typing.get_args(expected))
        raise ConfigError(f"config key '{key}' has value {value!r}, expected one of {choices} ({source})")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' has value {value!r}, expected a list ({source})")
        item_types = typing.get_args(expected)
        if origin is tuple and item_types and item_types[-1] is not Ellipsis:
            if len(item_types) != len(value):
                raise ConfigError(f"config key '{key}' needs {len(item_types)} items, got {value!r} ({source})")
            return tuple(_coerce(item, item_type, key, source) for item, item_type in zip(value, item_types))
        item_type = item_types[0] if item_types else Any
        items = [_coerce(item, item_type, key, source) for item in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' has value {value!r}, expected a mapping ({source})")
        return dict(value)
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # YAML reads "8192-8192" as str but "2048" as int
    if isinstance(expected, type) and isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"config key '{key}' has value {value!r}, expected {_type_name(expected)} ({source})")


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def shipped_config_dir(module_file: str) -> Path:
    """The ``configs/`` folder shipped as package data beside ``module_file`` (its package's own folder)."""
    return Path(module_file).resolve().parent / "configs"


def resolve_config_file(path: str | Path, shipped_dir: Path) -> Path:
    """The config file a user named: an existing path as given, else one shipped in ``shipped_dir``.

    A shipped config may be named by file name (``demo.yaml``), by stem (``demo``), or by its path in the
    repository (``configs/pretrain/demo.yaml``), so the documented commands work from any working directory
    after a plain ``pip install``. ``ConfigError`` lists the shipped configs when nothing matches.
    """
    given = Path(path).expanduser()
    if given.is_file():
        return given
    parts = given.parts
    tail = Path(*parts[parts.index("configs") + 2:]) if "configs" in parts[:-1] else given
    for candidate in (shipped_dir / tail, shipped_dir / f"{tail}.yaml", shipped_dir / given.name):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(str(item.relative_to(shipped_dir)) for item in shipped_dir.rglob("*.yaml")))
    raise ConfigError(f"config file not found: {path} (neither a file nor a shipped config; shipped: {shipped})")
