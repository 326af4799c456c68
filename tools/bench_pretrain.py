"""Benchmarks pretraining throughput against the official Barlow Twins code, on one generated JPEG folder
(and, with ``--photos``, on one made of real photos).

(a) data path alone, per core: official ``Transform`` (PIL decode), the project's tensor chain on a PIL
    decode (before decode-what-you-crop), the torch loader's decode-what-you-crop chain, and DALI's CPU
    backend (if installed) on one core; images per CPU-second (``bench_data``).
(b) data path alone, per loader: images/s (wall) of the official ``ImageFolder`` + ``Transform`` DataLoader
    and of the project's loaders (torch on the folder, torch on shards of it, DALI if installed), with
    ``--workers`` worker processes.
(c) whole training step (loader + forward + backward + LARS): official fp16 autocast (CUDA only; float32 on a
    CPU, as the official code runs there) vs the project's bf16 autocast + channels_last, each without and
    with ``torch.compile`` (``--compile``), and the ratio project / official (``bench_step``).

The official file is imported from ``--official-main`` (e.g. ``git show HEAD:main.py`` of
facebookresearch/barlowtwins); without it the official figures are left out. On a CPU run it reduced:
``--arch resnet18 --projector 512-512-512 --size 112 --batch 16``.

Example (CPU): python tools/bench_pretrain.py --official-main /tmp/official_main.py --photos --images 96 \\
    --rounds 3 --arch resnet18 --projector 512-512-512 --size 112 --batch 16 --steps 3 --workers 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_data import Rate, bench_loader, bench_per_core, per_core_chains  # noqa: E402
from bench_images import generated_jpegs, photo_jpegs, write_image_folder  # noqa: E402
from bench_official import ensure_process_group, load_official, official_loader, official_transform  # noqa: E402
from bench_step import official_whole_step, project_whole_step  # noqa: E402
from make_shards import make_shards  # noqa: E402
from core.distributed import DistributedContext  # noqa: E402
from pretrain.loaders import build_training_data  # noqa: E402
from pretrain.pretrain_config import DataConfig, PretrainConfig  # noqa: E402
from pretrain.transforms import reference_pil_transform  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-main", type=Path, help="path of the official barlowtwins main.py")
    parser.add_argument("--photos", action="store_true", help="also measure on JPEGs made from real photos")
    parser.add_argument("--images", type=int, default=96, help="JPEGs per set (500x375, quality 90)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the per-core benchmark")
    parser.add_argument("--size", type=int, default=224, help="crop size of the views")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--projector", default="8192-8192-8192")
    parser.add_argument("--batch", type=int, default=32, help="batch size of loaders and training steps")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after 2 warm-up steps)")
    parser.add_argument("--loader-epochs", type=int, default=2, help="timed epochs per loader in (b)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers in (b), (c)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--compile", action="store_true", help="also measure (c) with torch.compile")
    parser.add_argument("--skip-training", action="store_true", help="only (a) and (b)")
    parser.add_argument("--skip-data", action="store_true", help="only (c)")
    return parser.parse_args(argv)


def _ratio_lines(rates: dict[str, Rate], baseline: str) -> None:
    for name, rate in rates.items():
        rounds = ", ".join(f"{value:.1f}" for value in rate.rounds)
        ratio = rate.median / rates[baseline].median
        print(f"    {name:<58} {rate.median:8.1f}  {ratio:5.2f}x   rounds: {rounds}")


def run_per_core(args: argparse.Namespace, sets: dict[str, list[bytes]], official) -> None:
    baseline_transform = official_transform(official, args.size) if official else reference_pil_transform(args.size)
    chains = per_core_chains(baseline_transform, args.size)
    baseline = next(iter(chains))
    for name, blobs in sets.items():
        print(f"(a) data path alone, one core, {args.size}px views, {len(blobs)} {name} JPEGs x {args.rounds} rounds: "
              f"images per CPU-second (median), ratio to the official chain:")
        _ratio_lines(bench_per_core(chains, blobs, args.rounds), baseline)
    if not official:
        print("    (no --official-main: the baseline is the project's re-implementation of the official chain)")


def run_per_loader(args: argparse.Namespace, root: Path, official) -> None:
    train = root / "train"
    shards = root / "shards"
    make_shards(train, shards, shard_size_mb=8, progress=False)
    context = DistributedContext(rank=0, local_rank=0, world_size=1, device=torch.device(args.device))
    loaders = {}
    if official:
        loader = official_loader(official, train, args.batch, args.workers, args.size)
        loaders["official ImageFolder + Transform"] = lambda: (views for views, _labels in loader)
    kinds = [("torch", train, "project torch loader, folder"), ("torch", shards, "project torch loader, shards")]
    try:
        import nvidia.dali  # noqa: F401
        kinds += [("dali", train, "project DALI loader (CPU backend), folder")]
    except ImportError:
        print("    (NVIDIA DALI not installed: no DALI loader figures)")
    for kind, data_root, label in kinds:
        config = PretrainConfig(batch_size=args.batch, data=DataConfig(root=str(data_root), image_size=args.size,
                                                                         workers=args.workers, loader=kind))
        data = build_training_data(config, context)
        loaders[label] = lambda data=data: _epoch(data)
    print(f"(b) data path alone, per loader, {args.workers} worker(s) (DALI: {args.workers} threads), batch "
          f"{args.batch}, {args.size}px, {args.loader_epochs} epoch(s) of {len(list(train.rglob('*.jpg')))} "
          f"images, images/s (wall, worker start-up included), ratio to the first:")
    results = {label: bench_loader(make, args.loader_epochs) for label, make in loaders.items()}
    first = next(iter(results.values()))
    for label, rate in results.items():
        print(f"    {label:<45} {rate:8.1f}  {rate / first:5.2f}x")


def _epoch(data):
    data.set_epoch(0, 0)
    return data.batches


def run_whole_step(args: argparse.Namespace, root: Path, official) -> None:
    device = torch.device(args.device)
    train = root / "train"
    torch.set_num_threads(os.cpu_count() or 1)
    common = dict(arch=args.arch, projector=args.projector, batch=args.batch, size=args.size, workers=args.workers,
                  steps=args.steps, device=device)
    print(f"(c) whole training step (loader + forward + backward + LARS), {args.arch}, projector {args.projector}, "
          f"batch {args.batch}, {args.size}px, {args.workers} worker(s), {args.steps} timed steps on {device}, "
          f"images/s:")
    for compile_model in ([False, True] if args.compile else [False]):
        suffix = " + torch.compile" if compile_model else ""
        official_rate = None
        if official:
            ensure_process_group(device)
            official_rate = official_whole_step(official, train, compile_model=compile_model, **common)
            precision = "fp16 autocast" if device.type == "cuda" else "fp32 (fp16 autocast is CUDA-only)"
            print(f"    official, {precision}{suffix}: {official_rate:8.2f}")
        project_rate = project_whole_step(train, "torch", compile_model=compile_model, **common)
        print(f"    project, torch loader, bf16 + channels_last{suffix}: {project_rate:8.2f}")
        if official_rate:
            print(f"    ratio project / official{suffix}: {project_rate / official_rate:5.2f}x")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    official = load_official(args.official_main) if args.official_main else None
    sets = {"generated": generated_jpegs(args.images)}
    if args.photos:
        sets["photo"], names = photo_jpegs(args.images)
        print(f"photos: {', '.join(names)}")
    if not args.skip_data:
        run_per_core(args, sets, official)
    with tempfile.TemporaryDirectory(prefix="bench_pretrain_") as scratch:
        roots = {}
        for name, blobs in sets.items():
            roots[name] = Path(scratch) / name
            write_image_folder(blobs, roots[name])
        for name, root in roots.items():
            if not args.skip_data:
                print(f"[{name} JPEGs]")
                run_per_loader(args, root, official)
        if not args.skip_training:
            run_whole_step(args, roots["generated"], official)


if __name__ == "__main__":
    main()
