"""Benchmarks the online linear probe's share of a pretraining step (``pretrain.online_probe``).

Steps without and with the probe alternate in one run, on views cut from real photos
(``sklearn.datasets.load_sample_images``); the probe's own update is timed inside each step. Prints the median
probe time / median step time ratio, and the with / without step ratio measured in the same run.

Example: python tools/bench_probe.py --arch resnet18 --stem small --size 32 --projector 2048-2048-2048 \
             --batch 256 --steps 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretrain.model import BarlowTwins  # noqa: E402
from pretrain.optim import LARS, param_groups_weights_biases  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--stem", default="small", choices=("imagenet", "small"), help="ResNet stem")
    parser.add_argument("--projector", default="2048-2048-2048")
    parser.add_argument("--size", type=int, default=32, help="view size")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed step pairs (after one warm-up step)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    return parser.parse_args(argv)


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
    torch.set_num_threads(os.cpu_count() or 1)
    times = bench_probe(args)
    print(f"online probe, {args.arch} ({args.stem} stem), batch {args.batch}, {args.size}px, {args.steps} "
          f"alternating step pairs on {args.device}, median seconds: step {times['without']:.4f}, step + probe "
          f"{times['with']:.4f}, probe update {times['probe']:.5f}")
    print(f"    probe update / step    {times['probe'] / times['without']:8.2%}  "
          f"(step with / without probe: {times['with'] / times['without']:.3f}x)")


if __name__ == "__main__":
    main()
