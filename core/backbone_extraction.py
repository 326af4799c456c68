"""Finds which registered format a checkpoint object is, and extracts its torchvision-named backbone.

Detection never guesses: a file that no format matches is refused naming the closest format (by key
overlap) and what it lacked; a file that two formats match is refused naming the ``--format`` choice;
a file holding two networks gives the one its authors evaluate and says so in one log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import torch

from core.checkpoint_formats import CHECKPOINT_FORMATS, TORCHVISION_STEM_KEY, CheckpointFormat, Layout, StateDict

logger = logging.getLogger(__name__)


class CheckpointLayoutError(ValueError):
    """The checkpoint's layout is unknown, ambiguous, or lacks the requested network."""


@dataclass(frozen=True)
class Extraction:
    """A backbone taken out of a checkpoint: the tensors (torchvision names) and how each file key was used."""

    format: CheckpointFormat
    source: str
    layout: Layout
    state: StateDict
    renamed: dict[str, str]  # file key (nested keys joined by '/') -> torchvision name, where they differ
    kept: list[str]  # file keys used under their own (torchvision) name
    dropped: list[str]  # every other tensor in the file (heads, other networks, optimizer state)
    other_sources: tuple[str, ...] = field(default=())  # networks the file also holds


def flat_tensor_keys(node: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    """Every tensor of a nested checkpoint as ``outer/inner/key`` (lists are indexed)."""
    if torch.is_tensor(node):
        yield "/".join(path)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from flat_tensor_keys(value, (*path, str(key)))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from flat_tensor_keys(value, (*path, str(index)))


def locate(checkpoint: Mapping, layout: Layout) -> Mapping | None:
    """The mapping at ``layout.path`` in ``checkpoint``, or ``None`` where the path does not exist."""
    node: Any = checkpoint
    for part in layout.path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def layout_matches(checkpoint_format: CheckpointFormat, checkpoint: Mapping, layout: Layout) -> bool:
    """Whether ``checkpoint`` holds a ResNet stem tensor where ``layout`` says the backbone is."""
    node = locate(checkpoint, layout)
    stem = layout.prefix + checkpoint_format.file_key(TORCHVISION_STEM_KEY)
    return node is not None and torch.is_tensor(node.get(stem)) and checkpoint_format.requires(checkpoint)


def matching_formats(checkpoint: Mapping) -> list[CheckpointFormat]:
    """Every registered format with at least one layout present in ``checkpoint``."""
    return [fmt for fmt in CHECKPOINT_FORMATS.values()
            if any(layout_matches(fmt, checkpoint, layout) for layout in fmt.layouts)]


def _closest_format(checkpoint: Mapping, expected: list[str]) -> str:
    """The format whose layout shares most keys with ``checkpoint``, and what that layout lacked."""
    best: tuple[float, str] = (-1.0, "")
    for fmt in CHECKPOINT_FORMATS.values():
        for layout in fmt.layouts:
            node = locate(checkpoint, layout)
            if node is None:
                lack = f"it lacked the entry {layout.describe().split(' keys')[0]}"
                best = max(best, (0.0, f"{fmt.name} ({layout.describe()}): {lack}"))
                continue
            wanted = {layout.prefix + fmt.file_key(key): key for key in expected}
            absent = [name for name in wanted if name not in node]
            overlap = 1.0 - len(absent) / max(len(wanted), 1)
            lack = (f"it had {len(wanted) - len(absent)} of its {len(wanted)} backbone tensors and lacked e.g. "
                    f"{', '.join(absent[:3])}" if absent else f"it lacked {fmt.marker}")
            best = max(best, (overlap + 0.5, f"{fmt.name} ({layout.describe()}): {lack}"))
    return best[1]


def _describe_top_level(checkpoint: Mapping) -> str:
    keys = list(map(str, checkpoint))
    return ", ".join(keys[:8]) + (f", ... ({len(keys)} keys)" if len(keys) > 8 else "")


def detect_format(checkpoint: Mapping, expected: list[str], format_name: str | None = None) -> CheckpointFormat:
    """The one format ``checkpoint`` has (or ``format_name``, checked); ``expected``: the torchvision backbone keys.

    Raises ``CheckpointLayoutError`` for an unknown layout (naming the closest format and what it lacked),
    a layout two formats match (naming the ``--format`` choice), or a ``format_name`` the file does not have.
    """
    if format_name is not None:
        if format_name not in CHECKPOINT_FORMATS:
            raise CheckpointLayoutError(f"unknown format '{format_name}'; formats: {', '.join(CHECKPOINT_FORMATS)}")
        chosen = CHECKPOINT_FORMATS[format_name]
        if not any(layout_matches(chosen, checkpoint, layout) for layout in chosen.layouts):
            where = "; ".join(layout.describe() for layout in chosen.layouts)
            raise CheckpointLayoutError(f"not a '{format_name}' file: no ResNet under {where} "
                                        f"(top-level keys: {_describe_top_level(checkpoint)})")
        return chosen
    matches = matching_formats(checkpoint)
    if len(matches) > 1:
        names = [fmt.name for fmt in matches]
        raise CheckpointLayoutError(f"the file has the layouts of {len(names)} formats ({', '.join(names)}), which "
                                    f"convert it differently; choose one with --format {' or --format '.join(names)}")
    if not matches:
        raise CheckpointLayoutError(
            f"unrecognised checkpoint layout (top-level keys: {_describe_top_level(checkpoint)}); tried "
            f"{', '.join(CHECKPOINT_FORMATS)}; closest: {_closest_format(checkpoint, expected)}")
    return matches[0]


def _source_layout(checkpoint_format: CheckpointFormat, checkpoint: Mapping, source: str) -> Layout:
    if source not in checkpoint_format.sources:
        raise CheckpointLayoutError(f"format '{checkpoint_format.name}' has no source '{source}'; its sources: "
                                    f"{', '.join(checkpoint_format.sources)}")
    found = [layout for layout in checkpoint_format.layouts
             if layout.source == source and layout_matches(checkpoint_format, checkpoint, layout)]
    if not found:
        raise CheckpointLayoutError(f"this '{checkpoint_format.name}' file holds no '{source}' network")
    if len(found) > 1:
        raise CheckpointLayoutError(f"this '{checkpoint_format.name}' file holds the '{source}' network twice: "
                                    + " and ".join(layout.describe() for layout in found))
    return found[0]


def extract_backbone(checkpoint: Mapping, checkpoint_format: CheckpointFormat, source: str | None = None,
                     origin: str = "checkpoint") -> Extraction:
    """The ``source`` network (default: the evaluated one) of ``checkpoint`` in torchvision names, fc dropped."""
    present = [name for name in checkpoint_format.sources
               if any(layout.source == name and layout_matches(checkpoint_format, checkpoint, layout)
                      for layout in checkpoint_format.layouts)]
    chosen = source or checkpoint_format.default_source
    layout = _source_layout(checkpoint_format, checkpoint, chosen)
    others = tuple(name for name in present if name != chosen)
    if source is None and others:
        logger.info("%s: %s file holds %d networks; using '%s' (the one its authors evaluate); --source %s "
                    "picks the other", origin, checkpoint_format.name, len(present), chosen, " or ".join(others))
    node = locate(checkpoint, layout)
    assert node is not None  # layout_matches checked it
    under_prefix = {key[len(layout.prefix):]: value for key, value in node.items()
                    if isinstance(key, str) and key.startswith(layout.prefix) and torch.is_tensor(value)}
    state = {key: value for key, value in checkpoint_format.filter_fn(under_prefix).items()
             if not key.startswith("fc.")}
    base = "/".join(layout.path)
    renamed, kept = {}, []
    for name in state:
        file_key = layout.prefix + checkpoint_format.file_key(name)
        full_key = f"{base}/{file_key}" if base else file_key
        if full_key == name:
            kept.append(name)
        else:
            renamed[full_key] = name
    used = set(kept) | set(renamed)
    dropped = [key for key in flat_tensor_keys(checkpoint) if key not in used]
    return Extraction(checkpoint_format, chosen, layout, state, renamed, kept, dropped, others)
