"""``python -m transfer.inspect CKPT [--arch A] [--source S] [--format F]``: what a weights file holds, and how to evaluate it.

Prints the detected format and network, the tensors kept, renamed and dropped, the torchvision ResNet
it fits (every tensor with its shape), its sha256 and the command lines that evaluate it. Exit status
2 with one line on stderr when the file cannot be read or is not a supported ResNet checkpoint.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Sequence

from core.backbone_extraction import Extraction
from core.checkpoint import (
    SAFETENSORS_SUFFIX,
    CheckpointError,
    extract_from_file,
    file_sha256,
    fitting_archs,
    safetensors_metadata,
)
from core.checkpoint_formats import add_checkpoint_arguments

EXAMPLES = 3  # example keys printed per group


def _examples(names: Sequence[str]) -> str:
    shown = ", ".join(names[:EXAMPLES])
    return f" (e.g. {shown}{', ...' if len(names) > EXAMPLES else ''})" if names else ""


def describe_tensors(extraction: Extraction) -> list[str]:
    """Counts and examples of the file's tensors kept as they are, renamed, and dropped."""
    renamed = [f"{old} -> {new}" for old, new in extraction.renamed.items()]
    return [f"  kept     {len(extraction.kept):5d}{_examples(extraction.kept)}",
            f"  renamed  {len(renamed):5d}{_examples(renamed)}",
            f"  dropped  {len(extraction.dropped):5d}{_examples(extraction.dropped)}"]


def evaluation_commands(path: Path, arch: str, choices: Sequence[str]) -> list[str]:
    """The command lines that evaluate ``path`` as an ``arch`` backbone (``choices``: --source/--format flags)."""
    weights = shlex.quote(str(path))
    extra = " ".join([f"--arch {arch}", *choices])
    return [
        f"python -m transfer.classification knn --weights {weights} {extra} --data-root DATA/imagenet "
        "--output out/knn",
        f"python -m transfer.suite {weights} {extra} --data-root DATA --output out/suite",
        f"python tools/convert_to_d2.py {weights} out/{arch}_detectron2.pkl {extra}",
        f"python -m transfer.detection --engine torchvision --task voc0712_detection --weights {weights} "
        f"{' '.join(choices)}{' ' if choices else ''}--data-root DATA/VOCdevkit --output-dir out/voc0712 "
        f"model.arch={arch}",
    ]


def report(path: Path, arch: str | None, source: str | None, format_name: str | None) -> list[str]:
    """The lines ``python -m transfer.inspect`` prints; raises ``CheckpointError`` for bad input."""
    extraction = extract_from_file(path, arch or "resnet50", source, format_name)
    fits = fitting_archs(extraction.state)
    lines = [f"file:     {path}", f"sha256:   {file_sha256(path)}"]
    if path.suffix == SAFETENSORS_SUFFIX:
        metadata = safetensors_metadata(path)
        lines.append(f"metadata: {', '.join(f'{k}={v}' for k, v in sorted(metadata.items())) or '(none)'}")
    fmt = extraction.format
    lines += [f"format:   {fmt.name} ({fmt.releases})",
              f"network:  {extraction.source} at {extraction.layout.describe()}"
              + (f"; the file also holds {', '.join(extraction.other_sources)} "
                 f"(--source {extraction.other_sources[0]} picks it)"
                 if extraction.other_sources else ""),
              f"tensors:  {len(extraction.state)} backbone tensors in torchvision names", *describe_tensors(extraction)]
    if arch is not None and arch not in fits:
        raise CheckpointError(f"{path}: the {fmt.name} backbone is not a complete {arch}"
                              + (f" (it fits {', '.join(fits)})" if fits else ""))
    if not fits:
        raise CheckpointError(f"{path}: the {fmt.name} backbone ({len(extraction.state)} tensors) fits no torchvision "
                              "ResNet (resnet18 ... wide_resnet101_2): every tensor must be present with its shape")
    chosen = arch or fits[0]
    lines.append(f"arch:     {chosen} (every tensor present with its shape"
                 + (f"; also fits {', '.join(a for a in fits if a != chosen)})" if len(fits) > 1 else ")"))
    choices = [*([f"--source {source}"] if source else []), *([f"--format {format_name}"] if format_name else [])]
    lines.append("evaluate:")
    lines += [f"  {command}" for command in evaluation_commands(path, chosen, choices)]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transfer.inspect", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="weights file (.pth, .pth.tar, .ckpt, .torch, .safetensors, .pkl)")
    parser.add_argument("--arch", default=None, help="torchvision ResNet to check against (default: the one it fits)")
    add_checkpoint_arguments(parser)
    args = parser.parse_args(argv)
    try:
        lines = report(args.checkpoint, args.arch, args.source, args.checkpoint_format)
    except CheckpointError as error:
        print(f"python -m transfer.inspect: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
