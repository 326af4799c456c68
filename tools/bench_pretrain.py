"""Benchmarks pretraining throughput: two-view augmentation per CPU core, and training steps per device.

(a) Images/s of the official PIL two-view chain and of ``BarlowTwinsTransform`` on ONE core
    (``torch.set_num_threads(1)``, as in a DataLoader worker), JPEG decoding included: the inputs are
    generated ImageNet-sized (500x375) JPEGs. Time is the thread's CPU time (what one core spends, robust
    to other processes sharing the machine) and the chains alternate image by image; per-round rates and
    their median are reported. Wall-clock rates are printed too.
(b) Training samples/s (forward + backward + LARS step; each sample is two views) of ``BarlowTwins`` for
    the given arch/batch/size on the device; with ``--device cuda`` float32 and bfloat16 autocast +
    channels_last are both measured and compared.
(c) ``--probe``: the online linear probe's share of a training step (``pretrain.online_probe``): steps
    without and with the probe alternate in one run on views cut from real photos
    (``sklearn.datasets.load_sample_images``), and the probe's own update is timed inside each step;
    prints the median probe time / median step time ratio (and the with/without step ratio).

Example: python tools/bench_pretrain.py --images 200 --arch resnet18 --batch 32 --size 112 --steps 5
         python tools/bench_pretrain.py --skip-transforms --probe --arch resnet18 --stem small --size 32 \
             --projector 2048-2048-2048 --batch 256 --steps 10
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretrain.model import BarlowTwins  # noqa: E402
from pretrain.optim import LARS, param_groups_weights_biases  # noqa: E402
from pretrain.schedule import adjust_learning_rate  # noqa: E402
from pretrain.transforms import BarlowTwinsTransform, reference_pil_transform  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="JPEG images per round of the transform benchmark")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per transform chain")
    parser.add_argument("--size", type=int, default=224, help="crop size (transforms) and input size (training)")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--projector", default="8192-8192-8192")
    parser.add_argument("--batch", type=int, default=32, help="training batch size (samples, two views each)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up step)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--amp", action="store_true",
                        help="bfloat16 autocast + channels_last (on cuda both settings are always measured)")
    parser.add_argument("--skip-training", action="store_true", help="only run the transform benchmark")
    parser.add_argument("--skip-transforms", action="store_true", help="skip the transform benchmark (a)")
    parser.add_argument("--stem", default="imagenet", choices=("imagenet", "small"), help="ResNet stem")
    parser.add_argument("--probe", action="store_true", help="(c) the online probe's cost per training step")
    return parser.parse_args(argv)


def generated_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """ImageNet-like 500x375 JPEGs (quality 90): smooth random colour fields plus fine texture."""
    generator = np.random.default_rng(seed)
    blobs = []
    for _ in range(count):
        colours = generator.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        coarse = Image.fromarray(colours).resize((500, 375), Image.BICUBIC)
        texture = generator.normal(0, 18, (375, 500, 3))
        pixels = np.clip(np.asarray(coarse, dtype=np.float64) + texture, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        blobs.append(buffer.getvalue())
    return blobs


def _timed(transform: Callable, blob: bytes) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to decode one JPEG (as an ImageFolder loader does) and make its views."""
    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    transform(Image.open(io.BytesIO(blob)).convert("RGB"))
    return time.thread_time() - cpu_start, time.perf_counter() - wall_start


def bench_transforms(args: argparse.Namespace) -> dict[str, float]:
    torch.set_num_threads(1)
    blobs = generated_jpegs(args.images)
    chains = {"official PIL chain": reference_pil_transform(args.size),
              "BarlowTwinsTransform": BarlowTwinsTransform(args.size)}
    for transform in chains.values():
        for blob in blobs[:10]:
            _timed(transform, blob)  # warm-up
    cpu_rates: dict[str, list[float]] = {name: [] for name in chains}
    wall_seconds = dict.fromkeys(chains, 0.0)
    for _ in range(args.rounds):
        cpu_seconds = dict.fromkeys(chains, 0.0)
        for index, blob in enumerate(blobs):
            names = list(chains) if index % 2 == 0 else list(reversed(chains))
            for name in names:
                cpu, wall = _timed(chains[name], blob)
                cpu_seconds[name] += cpu
                wall_seconds[name] += wall
        for name in chains:
            cpu_rates[name].append(len(blobs) / cpu_seconds[name])
    medians = {name: statistics.median(values) for name, values in cpu_rates.items()}
    walls = {name: len(blobs) * args.rounds / seconds for name, seconds in wall_seconds.items()}
    reference, fast = medians["official PIL chain"], medians["BarlowTwinsTransform"]
    print(f"(a) two-view transform, 1 thread, {args.size}px crops, {args.images} JPEGs 500x375 x {args.rounds} rounds "
          f"(decode included), images per CPU-second (median over rounds) and per wall-second:")
    for name, value in medians.items():
        rounds = ", ".join(f"{rate:.1f}" for rate in cpu_rates[name])
        print(f"    {name:<22} {value:8.1f}  (wall {walls[name]:6.1f})   rounds: {rounds}")
    wall_ratio = walls["BarlowTwinsTransform"] / walls["official PIL chain"]
    print(f"    speed-up               {fast / reference:8.2f}x (wall {wall_ratio:.2f}x)")
    return {"reference": reference, "fast": fast, "ratio": fast / reference}


def bench_training(args: argparse.Namespace, amp: bool) -> float:
    """Samples/s of forward + backward + LARS step; ``amp``: bfloat16 autocast and channels_last."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = BarlowTwins(args.arch, args.projector, batch_size=args.batch).to(device)
    memory_format = torch.channels_last if amp else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = LARS(param_groups_weights_biases(model), lr=0, weight_decay=1e-6,
                     weight_decay_filter=True, lars_adaptation_filter=True)
    views = [torch.randn(args.batch, 3, args.size, args.size, device=device).to(memory_format=memory_format)
             for _ in range(2)]

    def step(index: int) -> None:
        adjust_learning_rate(optimizer, index, steps_per_epoch=1000, epochs=100, batch_size=args.batch)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model(*views)
        loss.backward()
        optimizer.step()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    step(0)  # warm-up (allocations, cuDNN autotuning)
    synchronize()
    start = time.perf_counter()
    for index in range(1, args.steps + 1):
        step(index)
    synchronize()
    return args.batch * args.steps / (time.perf_counter() - start)


def photo_views(batch: int, size: int, device: torch.device) -> list[torch.Tensor]:
    """Two batches of ``size`` px crops of scikit-learn's sample photos, normalised as training views."""
    from sklearn.datasets import load_sample_images

    photos = [torch.tensor(photo).permute(2, 0, 1).float().div(255) for photo in load_sample_images().images]
    generator = torch.Generator().manual_seed(0)
    views = []
    for _ in range(2):
        crops = []
        for index in range(batch):
            photo = photos[index % len(photos)]
            side = int(torch.randint(size, min(photo.shape[1:]) + 1, (1,), generator=generator))
            top = int(torch.randint(0, photo.shape[1] - side + 1, (1,), generator=generator))
            left = int(torch.randint(0, photo.shape[2] - side + 1, (1,), generator=generator))
            crop = photo[:, top:top + side, left:left + side][None]
            crops.append(torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear", antialias=True))
        views.append(((torch.cat(crops) - 0.45) / 0.225).to(device))
    return views


def bench_probe(args: argparse.Namespace) -> dict[str, float]:
    """Median step time without / with the online probe (alternating), and the probe update's own median time."""
    from pretrain.online_probe import OnlineProbe
    from pretrain.pretrain_config import ProbeConfig

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = BarlowTwins(args.arch, args.projector, batch_size=args.batch, stem=args.stem).to(device)
    optimizer = LARS(param_groups_weights_biases(model), lr=0.01, weight_decay=1e-6,
                     weight_decay_filter=True, lars_adaptation_filter=True)
    views = photo_views(args.batch, args.size, device)
    labels = torch.arange(args.batch, device=device) % 10
    probe = OnlineProbe(model.projector[0].in_features, 10, heldout=None, config=ProbeConfig(), labels=None)
    probe.bind(device)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(with_probe: bool) -> tuple[float, float]:
        synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, features = model(*views, return_features=True)
        loss.backward()
        optimizer.step()
        synchronize()
        probe_start = time.perf_counter()
        if with_probe:
            probe.after_step(features.flatten(1), labels)
        synchronize()
        end = time.perf_counter()
        return end - start, end - probe_start

    step(True)  # warm-up
    without, with_probe, probe_only = [], [], []
    for _ in range(args.steps):
        without.append(step(False)[0])
        total, probe_time = step(True)
        with_probe.append(total)
        probe_only.append(probe_time)
    return {"without": statistics.median(without), "with": statistics.median(with_probe),
            "probe": statistics.median(probe_only)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.skip_transforms:
        bench_transforms(args)
    if args.probe:
        torch.set_num_threads(os.cpu_count() or 1)
        times = bench_probe(args)
        print(f"(c) online probe, {args.arch} ({args.stem} stem), batch {args.batch}, {args.size}px, {args.steps} "
              f"alternating step pairs on {args.device}, median seconds: step {times['without']:.4f}, step + probe "
              f"{times['with']:.4f}, probe update {times['probe']:.5f}")
        print(f"    probe update / step    {times['probe'] / times['without']:8.2%}  "
              f"(step with / without probe: {times['with'] / times['without']:.3f}x)")
    if args.skip_training:
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    torch.set_num_threads(os.cpu_count() or 1)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    settings = [False, True] if args.device == "cuda" else [args.amp]
    print(f"(b) training step (forward + backward + LARS), {args.arch}, projector {args.projector}, "
          f"batch {args.batch}, {args.size}px, {args.steps} steps on {args.device} "
          f"({torch.get_num_threads()} threads), samples/s (2 views each):")
    results = {}
    for amp in settings:
        label = "bf16 autocast + channels_last" if amp else "fp32"
        results[amp] = bench_training(args, amp)
        print(f"    {label:<30} {results[amp]:8.2f}")
    if len(results) == 2:
        print(f"    bf16 speed-up                  {results[True] / results[False]:8.2f}x")


if __name__ == "__main__":
    main()
