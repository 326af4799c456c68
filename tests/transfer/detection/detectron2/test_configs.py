"""configs/detectron2: valid YAML whose resolved values (``_BASE_`` chain) are the published protocol's.

Values from Barlow Twins (Appendix, detection) and MoCo's detectron2 configs; checked without detectron2.
"""

import ast
from pathlib import Path

import pytest
import yaml

CONFIG_DIR = Path(__file__).resolve().parents[4] / "configs" / "detectron2"
VOC_TRAIN_SIZES = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
COCO_TRAIN_SIZES = (640, 672, 704, 736, 768, 800)

PROTOCOLS = {
    "voc0712_faster_rcnn_R_50_C4_24k.yaml": {
        "MODEL.MASK_ON": False, "MODEL.ROI_HEADS.NUM_CLASSES": 20,
        "DATASETS.TRAIN": ("voc_2007_trainval", "voc_2012_trainval"), "DATASETS.TEST": ("voc_2007_test",),
        "SOLVER.BASE_LR": 0.1, "SOLVER.MAX_ITER": 24000, "SOLVER.STEPS": (18000, 22000),
        "SOLVER.WARMUP_ITERS": 1000, "SOLVER.WARMUP_FACTOR": 0.333, "SOLVER.WARMUP_METHOD": "linear",
        "INPUT.MIN_SIZE_TRAIN": VOC_TRAIN_SIZES, "INPUT.MIN_SIZE_TEST": 800,
    },
    "voc0712_faster_rcnn_R_50_C4_24k_moco.yaml": {
        "DATASETS.TRAIN": ("voc_2007_trainval", "voc_2012_trainval"), "DATASETS.TEST": ("voc_2007_test",),
        "SOLVER.BASE_LR": 0.02, "SOLVER.WARMUP_ITERS": 100, "SOLVER.WARMUP_FACTOR": 0.001,
        "SOLVER.MAX_ITER": 24000, "SOLVER.STEPS": (18000, 22000), "INPUT.MIN_SIZE_TRAIN": VOC_TRAIN_SIZES,
    },
    "coco_mask_rcnn_R_50_C4_1x.yaml": {
        "MODEL.MASK_ON": True, "DATASETS.TRAIN": ("coco_2017_train",), "DATASETS.TEST": ("coco_2017_val",),
        "SOLVER.BASE_LR": 0.03, "SOLVER.MAX_ITER": 90000, "SOLVER.STEPS": (60000, 80000),
        "INPUT.MIN_SIZE_TRAIN": COCO_TRAIN_SIZES, "INPUT.MIN_SIZE_TEST": 800,
    },
    "coco_mask_rcnn_R_50_C4_2x.yaml": {
        "MODEL.MASK_ON": True, "DATASETS.TRAIN": ("coco_2017_train",), "DATASETS.TEST": ("coco_2017_val",),
        "SOLVER.BASE_LR": 0.03, "SOLVER.MAX_ITER": 180000, "SOLVER.STEPS": (120000, 160000),
        "INPUT.MIN_SIZE_TRAIN": COCO_TRAIN_SIZES,
    },
    "coco_mask_rcnn_R_50_FPN_1x.yaml": {
        "MODEL.MASK_ON": True, "DATASETS.TRAIN": ("coco_2017_train",), "DATASETS.TEST": ("coco_2017_val",),
        "MODEL.BACKBONE.NAME": "build_resnet_fpn_backbone", "MODEL.FPN.NORM": "SyncBN",
        "MODEL.ROI_BOX_HEAD.NORM": "SyncBN", "MODEL.ROI_MASK_HEAD.NORM": "SyncBN",
        "SOLVER.BASE_LR": 0.02, "SOLVER.MAX_ITER": 90000, "SOLVER.STEPS": (60000, 80000),
        "INPUT.MIN_SIZE_TRAIN": COCO_TRAIN_SIZES,
    },
}
C4_CONFIGS = [name for name in PROTOCOLS if "_C4_" in name]
INSTANT_TESTS = {
    "quick_schedules/voc0712_faster_rcnn_R_50_C4_instant_test.yaml": "voc0712_faster_rcnn_R_50_C4_24k.yaml",
    "quick_schedules/coco_mask_rcnn_R_50_C4_instant_test.yaml": "coco_mask_rcnn_R_50_C4_1x.yaml",
    "quick_schedules/coco_mask_rcnn_R_50_FPN_instant_test.yaml": "coco_mask_rcnn_R_50_FPN_1x.yaml",
}
BASES = {"Base-R50-SyncBN.yaml", "Base-RCNN-C4-SyncBN.yaml", "Base-RCNN-FPN-SyncBN.yaml"}


def _literal(value):
    # detectron2 YAML writes tuples as "(480, 512)" strings, which yacs evaluates.
    if isinstance(value, str) and value.startswith("("):
        return ast.literal_eval(value)
    return value


def _merge(base, override):
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged.get(key, {}), value) if isinstance(value, dict) else _literal(value)
    return merged


def resolve(path):
    """The config after its ``_BASE_`` chain, as detectron2 merges it (paths relative to the file)."""
    data = yaml.safe_load(path.read_text())
    base = data.pop("_BASE_", None)
    return _merge(resolve(path.parent / base), data) if base else _merge({}, data)


def value(config, dotted):
    for key in dotted.split("."):
        config = config[key]
    return config


def test_every_config_in_the_folder_is_covered_by_these_tests():
    on_disk = {str(path.relative_to(CONFIG_DIR)) for path in CONFIG_DIR.rglob("*.yaml")}
    assert on_disk == set(PROTOCOLS) | set(INSTANT_TESTS) | BASES


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_shared_trunk_settings(name):
    config = resolve(CONFIG_DIR / name)
    assert value(config, "MODEL.RESNETS.NORM") == "SyncBN"
    assert value(config, "MODEL.RESNETS.STRIDE_IN_1X1") is False
    assert value(config, "MODEL.RESNETS.DEPTH") == 50
    assert value(config, "MODEL.BACKBONE.FREEZE_AT") == 0
    assert value(config, "INPUT.FORMAT") == "RGB"
    assert value(config, "MODEL.PIXEL_MEAN") == [123.675, 116.28, 103.53]
    assert value(config, "MODEL.PIXEL_STD") == [58.395, 57.12, 57.375]
    assert value(config, "TEST.PRECISE_BN.ENABLED") is True
    assert value(config, "SOLVER.IMS_PER_BATCH") == 16
    assert value(config, "SOLVER.REFERENCE_WORLD_SIZE") == 8
    assert value(config, "MODEL.WEIGHTS") == ""  # must come from the command line


@pytest.mark.parametrize("name", C4_CONFIGS)
def test_c4_configs_use_the_extra_norm_res5_head(name):
    config = resolve(CONFIG_DIR / name)
    assert value(config, "MODEL.ROI_HEADS.NAME") == "Res5ROIHeadsExtraNorm"
    assert value(config, "MODEL.BACKBONE.NAME") == "build_resnet_backbone"
    assert value(config, "MODEL.RPN.PRE_NMS_TOPK_TEST") == 6000
    assert value(config, "MODEL.RPN.POST_NMS_TOPK_TEST") == 1000


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_protocol_values(name):
    config = resolve(CONFIG_DIR / name)
    for key, expected in PROTOCOLS[name].items():
        assert value(config, key) == expected, key


@pytest.mark.parametrize("name", sorted(INSTANT_TESTS))
def test_instant_tests_keep_the_protocol_model_on_demo_data(name):
    config, protocol = resolve(CONFIG_DIR / name), resolve(CONFIG_DIR / INSTANT_TESTS[name])
    for key in ("MODEL.RESNETS", "MODEL.BACKBONE", "MODEL.MASK_ON", "MODEL.PIXEL_MEAN", "INPUT.FORMAT",
                "MODEL.ROI_HEADS.NAME"):
        assert value(config, key) == value(protocol, key), key
    datasets = value(config, "DATASETS.TRAIN") + value(config, "DATASETS.TEST")
    assert all(dataset.startswith("demo_") for dataset in datasets)
    # Batch 2 per GPU; REFERENCE_WORLD_SIZE 1 lets detectron2 scale it to any GPU count.
    assert value(config, "SOLVER.IMS_PER_BATCH") == 2 and value(config, "SOLVER.REFERENCE_WORLD_SIZE") == 1
    assert value(config, "SOLVER.MAX_ITER") <= 100
