"""Fixtures for the pretraining-runner tests: tiny generated image folders and a tiny training config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pretrain.pretrain_config import DataConfig, ModelConfig, OptimConfig, PretrainConfig


def _write_images(folder: Path, count: int, size: int = 40, seed: int = 0, start: int = 0) -> list[Path]:
    """``count`` random RGB JPEGs named img_<n>.jpg in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(seed)
    paths = []
    for number in range(start, start + count):
        pixels = generator.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        path = folder / f"img_{number:03d}.jpg"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """An ImageFolder tree with 2 classes x 6 images (12 images)."""
    root = tmp_path / "train"
    _write_images(root / "circle", 6, seed=1)
    _write_images(root / "square", 6, seed=2, start=6)
    return root


def _tiny_config(data_root: Path, output_dir: Path, **changes) -> PretrainConfig:
    """ResNet-18 at 32 px, projector 64-64, batch 4: 3 steps per epoch on 12 images, 2 epochs."""
    config = PretrainConfig(
        output_dir=str(output_dir), epochs=2, batch_size=4, seed=3, log_every=1, checkpoint_every_steps=100,
        progress_bar=False, tensorboard=False,
        model=ModelConfig(arch="resnet18", projector="64-64"),
        optim=OptimConfig(warmup_epochs=1),
        data=DataConfig(root=str(data_root), image_size=32, workers=0),
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="session")
def write_images():
    """``write_images(folder, count, size=40, seed=0, start=0)``: random RGB JPEGs img_<n>.jpg."""
    return _write_images


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(data_root, output_dir, **top_level_changes) -> PretrainConfig`` (see ``_tiny_config``)."""
    return _tiny_config
