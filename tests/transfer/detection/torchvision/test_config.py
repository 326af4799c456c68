"""Protocol configs, linear scaling and the LR schedule of the torchvision detection engine."""

from pathlib import Path

import pytest

from core.config import ConfigError
from transfer.detection.torchvision.config import SolverConfig, load_detection_config, scale_to_world_size
from transfer.detection.torchvision.optim import lr_factor

CONFIG_DIR = Path(__file__).resolve().parents[4] / "configs" / "torchvision_detection"


def test_voc_protocol_values():
    config = load_detection_config(CONFIG_DIR / "voc0712_faster_rcnn_R50_FPN.yaml", ["model.weights=w.pth"])
    assert config.task == "voc0712_detection" and config.model.meta_arch == "faster_rcnn"
    assert config.data.train == ["VOC2007:trainval", "VOC2012:trainval"] and config.data.test == "VOC2007:test"
    assert config.model.min_size_train == list(range(480, 801, 32)) and config.model.min_size_test == 800
    assert (config.solver.max_iter, config.solver.steps, config.solver.ims_per_batch) == (24000, [18000, 22000], 16)
    assert (config.solver.warmup_iters, config.solver.warmup_factor) == (1000, 0.333)
    assert config.model.trainable_layers == 5 and config.model.arch == "resnet50"
    assert config.model.pixel_mean == [0.485, 0.456, 0.406] and config.model.pixel_std == [0.229, 0.224, 0.225]


def test_coco_protocol_values():
    config = load_detection_config(CONFIG_DIR / "coco_mask_rcnn_R50_FPN_1x.yaml", ["model.weights=w.pth"])
    assert config.task == "coco_instance_segmentation" and config.model.meta_arch == "mask_rcnn"
    assert (config.solver.max_iter, config.solver.steps, config.solver.base_lr) == (90000, [60000, 80000], 0.02)
    assert config.model.min_size_train == [640, 672, 704, 736, 768, 800]


@pytest.mark.parametrize("name", ["voc_instant_test.yaml", "coco_instant_test.yaml"])
def test_instant_configs_load(name):
    config = load_detection_config(CONFIG_DIR / name, ["model.weights=w.pth"])
    assert config.model.arch == "resnet18" and config.solver.max_iter <= 10


def test_linear_scaling_to_one_process():
    solver = SolverConfig(ims_per_batch=16, base_lr=0.02, reference_world_size=8, max_iter=24000,
                          steps=[18000, 22000], warmup_iters=1000, checkpoint_period=2000)
    scaled, eval_period = scale_to_world_size(solver, 4000, world_size=2)
    assert scaled.ims_per_batch == 4 and scaled.base_lr == pytest.approx(0.005)
    assert (scaled.max_iter, scaled.steps, scaled.warmup_iters) == (96000, [72000, 88000], 4000)
    assert (scaled.checkpoint_period, eval_period) == (8000, 16000)
    assert scale_to_world_size(solver, 0, world_size=8)[0] == solver
    disabled = SolverConfig(reference_world_size=0)
    assert scale_to_world_size(disabled, 0, world_size=1)[0] == disabled


def test_warmup_then_steps():
    solver = SolverConfig(base_lr=0.02, warmup_iters=1000, warmup_factor=0.001, steps=[60000, 80000], gamma=0.1)
    assert lr_factor(0, solver) == pytest.approx(0.001)
    assert lr_factor(500, solver) == pytest.approx(0.001 * 0.5 + 0.5)
    assert lr_factor(1000, solver) == 1.0
    assert lr_factor(59999, solver) == 1.0
    assert lr_factor(60000, solver) == pytest.approx(0.1)
    assert lr_factor(80000, solver) == pytest.approx(0.01)


@pytest.mark.parametrize("overrides, message", [
    (["data.format=voc", "model.meta_arch=mask_rcnn", "model.weights=w.pth"], "needs masks"),
    ([], "model.weights is not set"),
    (["model.weights=w.pth", "solver.steps=[5, 3]"], "increasing"),
    (["model.weights=w.pth", "model.norm=group"], "model.norm"),
    (["model.weights=w.pth", "model.arch=resnet9000"], "model.arch.*expected one of resnet18, resnet34, resnet50"),
])
def test_bad_configs_are_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_detection_config(None, overrides)
