#!/usr/bin/env python
"""Does pretraining learn on real images? kNN top-1 of a small-stem ResNet-18 after Barlow Twins on
scikit-learn's handwritten digits, against the same trunk at random initialisation, over several seeds.

    python tools/learning_check.py [--seeds 0,1,2] [key=value ...]

The 1797 8x8 grayscale digits of ``sklearn.datasets.load_digits`` (real handwriting from 43 writers,
installed with scikit-learn) are resized to ``data.image_size`` px RGB (8: as they are) and split into a fixed train
(1200) and held-out (597) set. Pretraining (``configs/pretrain/learning_check_digits.yaml``, labels unused)
runs on the train images; kNN (k=20, temperature 0.07, ``core.knn``) votes the held-out images' classes
from the train images' features. Prints per-seed figures, mean +- std and the gap; docs/benchmarks.md
records them.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from core.backbone import build_backbone  # noqa: E402
from core.config import load_config  # noqa: E402
from pretrain.knn_monitor import evaluate_knn  # noqa: E402
from pretrain.pretrain_config import CONFIG_DIR, PretrainConfig  # noqa: E402
from pretrain.train import pretrain  # noqa: E402

RECIPE = CONFIG_DIR / "learning_check_digits.yaml"
TRAIN_IMAGES = 1200
SPLIT_SEED = 0


def write_digits(root: Path, image_size: int) -> tuple[Path, Path]:
    """Writes the digits as ``root/{train,val}/<digit>/<n>.png`` RGB images of ``image_size`` px."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.images))
    for split, indices in (("train", order[:TRAIN_IMAGES]), ("val", order[TRAIN_IMAGES:])):
        for index in indices:
            pixels = (digits.images[index] * (255 / 16)).round().astype(np.uint8)  # 17 gray levels, 0..16
            image = Image.fromarray(pixels).resize((image_size, image_size), Image.BICUBIC).convert("RGB")
            folder = root / split / str(digits.target[index])
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{index:04d}.png")
    return root / "train", root / "val"


def knn_of(backbone: torch.nn.Module, train_root: Path, val_root: Path, image_size: int) -> float:
    return evaluate_knn(backbone, str(train_root), str(val_root), image_size, torch.device("cpu"), batch_size=256)


def check_seed(seed: int, work_dir: Path, overrides: Sequence[str]) -> tuple[float, float, float]:
    """(random-init kNN top-1, pretrained kNN top-1, pretraining seconds) for one seed."""
    config = load_config(PretrainConfig, RECIPE, [f"seed={seed}", f"output_dir={work_dir / f'seed{seed}'}",
                                                 *overrides])
    train_root, val_root = write_digits(work_dir / "digits", config.data.image_size)
    config.data.root = str(train_root)
    torch.manual_seed(seed)
    random_trunk = build_backbone(config.model.arch, config.model.stem)
    random_top1 = knn_of(random_trunk, train_root, val_root, config.data.image_size)
    start = time.perf_counter()
    outcome = pretrain(config)
    seconds = time.perf_counter() - start
    if outcome != "completed":
        raise RuntimeError(f"pretraining ended {outcome}")
    from core.backbone import load_backbone

    trained = load_backbone(Path(config.output_dir) / f"{config.model.arch}.pth", config.model.arch).model
    return random_top1, knn_of(trained, train_root, val_root, config.data.image_size), seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=lambda text: [int(seed) for seed in text.split(",")], default=[0, 1, 2],
                        help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, e.g. epochs=10")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for seed in args.seeds:
            random_top1, trained_top1, seconds = check_seed(seed, Path(work_dir), args.overrides)
            rows.append((random_top1, trained_top1))
            print(f"seed {seed}: random init {random_top1:.1f}  pretrained {trained_top1:.1f}  "
                  f"gap {trained_top1 - random_top1:+.1f}  ({seconds:.0f} s pretraining)", flush=True)
    randoms, trained = [row[0] for row in rows], [row[1] for row in rows]
    gaps = [t - r for r, t in rows]
    spread = (lambda values: statistics.stdev(values) if len(values) > 1 else 0.0)
    print(f"kNN top-1 on {len(rows)} seed(s), {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads: random init {statistics.mean(randoms):.1f} +- {spread(randoms):.1f}, "
          f"pretrained {statistics.mean(trained):.1f} +- {spread(trained):.1f}, "
          f"gap {statistics.mean(gaps):+.1f} +- {spread(gaps):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
