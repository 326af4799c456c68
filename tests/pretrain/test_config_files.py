"""The shipped pretraining configs load and carry the paper's values (Zbontar et al., 2021)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from pretrain.pretrain_config import PretrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "pretrain"


def test_paper_recipe_1000_epochs():
    config = load_config(PretrainConfig, CONFIGS / "barlowtwins_r50_1000ep.yaml")
    assert (config.epochs, config.batch_size) == (1000, 2048)
    assert (config.model.arch, config.model.projector, config.model.lambd) == ("resnet50", "8192-8192-8192", 0.0051)
    optim = config.optim
    assert (optim.lr_weights, optim.lr_biases, optim.weight_decay) == (0.2, 0.0048, 1.5e-6)
    assert (optim.momentum, optim.eta, optim.warmup_epochs, optim.end_factor) == (0.9, 0.001, 10, 0.001)
    assert config.data.image_size == 224 and config.knn.every_epochs == 0
    assert "1e-6" in (CONFIGS / "barlowtwins_r50_1000ep.yaml").read_text()  # the official code's value is noted


def test_300_epoch_variant():
    config = load_config(PretrainConfig, CONFIGS / "barlowtwins_r50_300ep.yaml")
    assert (config.epochs, config.batch_size, config.optim.lr_weights) == (300, 1024, 0.25)
    assert (config.optim.lr_biases, config.optim.weight_decay, config.model.lambd) == (0.0048, 1.5e-6, 0.0051)
    assert config.model.projector == "8192-8192-8192" and config.model.arch == "resnet50"


def test_defaults_are_the_paper_recipe():
    assert load_config(PretrainConfig, CONFIGS / "barlowtwins_r50_1000ep.yaml").optim == PretrainConfig().optim
    assert PretrainConfig().model == load_config(PretrainConfig, CONFIGS / "barlowtwins_r50_1000ep.yaml").model


def test_demo_config_is_small_and_monitors_knn():
    config = load_config(PretrainConfig, CONFIGS / "demo.yaml")
    assert config.model.arch == "resnet18" and config.data.image_size <= 64
    assert config.data.root == "demo_output/pretrain_data/imagefolder/train"
    assert config.knn.every_epochs == 5 and config.knn.val_root == "demo_output/data/imagefolder/val"


@pytest.mark.parametrize("override, fragment", [
    ("model.projector=8192-x", "model.projector"),
    ("batch_size=0", "'batch_size' has value 0"),
    ("epochs=5", "must exceed optim.warmup_epochs"),
    ("precision=fp8", "config key 'precision'"),
    ("knn.every_epochs=2", "knn.train_root"),
    ("data.workers=-1", "data.workers"),
])
def test_invalid_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        load_config(PretrainConfig, CONFIGS / "barlowtwins_r50_1000ep.yaml", [override])
