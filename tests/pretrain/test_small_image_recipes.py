"""The small-image recipes carry their sources' values and each trains one epoch on the miniature data."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from pretrain.online_probe import build_online_probe
from pretrain.pretrain_config import PretrainConfig
from pretrain.stats import read_stats
from pretrain.train import pretrain

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
# recipe -> (miniature layout folder, published figure the header must cite)
RECIPES = {
    "cifar10_resnet18.yaml": ("cifar10/cifar-10-batches-py", "92.10"),
    "cifar100_resnet18.yaml": ("cifar100/cifar-100-python", "70.90"),
    "stl10_resnet18.yaml": ("stl10/stl10_binary", "91.02"),
    "imagenet100_resnet18.yaml": ("imagefolder/train", "80.38"),
}


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_has_solo_learn_small_image_values_and_cites_its_figure(name):
    config = load_config(PretrainConfig, CONFIGS / name)
    # solo-learn scripts/pretrain/{cifar,imagenet-100}/barlow.yaml: batch 256 (total), proj 2048, scale_loss 0.1,
    # LARS lr 0.3 (one rate), eta 0.02, clip_lr, weight decay 1e-4; asymmetric solarization 0.0 / 0.2.
    assert config.batch_size == 256 and config.model.projector == "2048-2048-2048"
    assert (config.model.lambd, config.model.scale_loss) == (0.0051, 0.1)
    optim = config.optim
    assert optim.lr_weights * config.batch_size / 256 == optim.lr_biases * config.batch_size / 256 == 0.3
    assert (optim.eta, optim.clip_lr, optim.weight_decay, optim.end_factor) == (0.02, True, 1e-4, 0.0)
    assert config.augment.solarize_probability == (0.0, 0.2)
    small = config.data.image_size <= 96
    assert config.model.stem == ("small" if small else "imagenet")
    assert config.augment.blur_probability == ((0.0, 0.0) if small else (1.0, 0.1))
    assert RECIPES[name][1] in (CONFIGS / name).read_text()


@pytest.fixture(scope="module")
def miniature(tmp_path_factory, make_demo_data_tool):
    out = tmp_path_factory.mktemp("miniature")
    make_demo_data_tool.make_demo_data(out, images_per_class=4, size=64,
                                       layouts="cifar10,cifar100,stl10,imagefolder")
    return out


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_trains_one_epoch_on_miniature_data(name, miniature, tmp_path):
    folder, _ = RECIPES[name]
    # The recipe as shipped, but one epoch (no warm-up), a batch that fits 20 images, 16 px to keep CPU time low.
    config = load_config(PretrainConfig, CONFIGS / name, [
        f"data.root={miniature / folder}", f"output_dir={tmp_path}", "epochs=1", "optim.warmup_epochs=0",
        "batch_size=10", "data.workers=0", "data.image_size=16", "progress_bar=false", "tensorboard=false",
        "precision=fp32", "probe.every_epochs=1"])
    probe = build_online_probe(config)
    assert probe is not None  # every miniature layout is labelled with a held-out split
    assert pretrain(config, callbacks=[probe], step_hooks=[probe]) == "completed"
    rows = read_stats(tmp_path / "stats.jsonl")
    assert any("probe_top1" in row for row in rows)
    assert (tmp_path / "resnet18.pth").is_file()
    assert (tmp_path / "resnet18.json").read_text().count(config.model.stem) == 1
