"""The suite's detectron2 tasks: configs per arch, datasets under a data root, options, and the engine dispatch of
``tv_tasks.run_detection`` (no detectron2 needed)."""

import ast
import sys
import types
from pathlib import Path

import pytest
import yaml

from transfer.detection import UnsupportedBackboneError
from transfer.detection import engines
from transfer.detection.torchvision import tasks as tv_tasks
from transfer.registry import TaskRun, get_task, run_task
from transfer.detection.detectron2.datasets import CocoDataset, VocDataset
from transfer.detection.detectron2.tasks import (
    CONFIG_DIR,
    FPN_COUNTERPARTS,
    TASKS,
    arch_options,
    backbone_name,
    coco2017_datasets,
    model_config,
    task_options,
    voc0712_datasets,
)

QUICK = "quick_schedules"


def test_bottleneck_archs_keep_the_protocol_configs():
    assert model_config(TASKS["voc0712_detection"], None, "resnet50") == \
        (CONFIG_DIR / "voc0712_faster_rcnn_R_50_C4_24k.yaml").resolve()
    for task in ("coco_instance_segmentation", "coco_detection"):
        assert model_config(TASKS[task], None, "resnet101") == (CONFIG_DIR / "coco_mask_rcnn_R_50_C4_1x.yaml").resolve()
    assert arch_options("resnet50") == ["MODEL.RESNETS.DEPTH", "50"]
    assert arch_options("resnet152") == ["MODEL.RESNETS.DEPTH", "152"]


def test_basic_block_archs_run_on_the_fpn_counterpart():
    fpn_instant = (CONFIG_DIR / QUICK / "coco_mask_rcnn_R_50_FPN_instant_test.yaml").resolve()
    voc_instant = CONFIG_DIR / QUICK / "voc0712_faster_rcnn_R_50_C4_instant_test.yaml"
    assert model_config(TASKS["voc0712_detection"], str(voc_instant), "resnet18") == fpn_instant
    assert model_config(TASKS["coco_detection"], None, "resnet34") == \
        (CONFIG_DIR / "coco_mask_rcnn_R_50_FPN_1x.yaml").resolve()
    assert model_config(TASKS["coco_instance_segmentation"], str(fpn_instant), "resnet18") == fpn_instant
    # detectron2 asserts RES2_OUT_CHANNELS == 64 for depth 18/34 (BasicBlock res2 keeps the stem's 64 channels).
    assert arch_options("resnet18") == ["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64"]


@pytest.mark.parametrize("config", ["voc0712_faster_rcnn_R_50_C4_24k.yaml", "voc0712_faster_rcnn_R_50_C4_24k_moco.yaml",
                                    "coco_mask_rcnn_R_50_C4_2x.yaml"])
def test_basic_block_archs_on_c4_configs_without_counterpart_are_refused(config):
    with pytest.raises(UnsupportedBackboneError, match="resnet18.*only as an FPN backbone.*bottleneck res5"):
        model_config(TASKS["voc0712_detection"], str(CONFIG_DIR / config), "resnet18")


def test_unknown_arch_is_unsupported():
    with pytest.raises(UnsupportedBackboneError, match="wide_resnet50_2"):
        model_config(TASKS["voc0712_detection"], None, "wide_resnet50_2")


def test_repository_config_paths_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the shipped copy is found although configs/ is not below the working directory
    relative = f"configs/detectron2/{QUICK}/coco_mask_rcnn_R_50_C4_instant_test.yaml"
    expected = (CONFIG_DIR / QUICK / "coco_mask_rcnn_R_50_C4_instant_test.yaml").resolve()
    assert model_config(TASKS["coco_detection"], relative, "resnet50") == expected
    with pytest.raises(FileNotFoundError, match="absent.yaml"):
        model_config(TASKS["coco_detection"], "absent.yaml", "resnet50")


def read_chain(path, key):
    data = yaml.safe_load(path.read_text())
    section = data
    for part in key.split("."):
        section = (section or {}).get(part)
    if section is None and "_BASE_" in data:
        return read_chain(path.parent / data["_BASE_"], key)
    return section


def test_every_counterpart_is_an_fpn_config_with_the_same_schedule():
    on_disk = {str(path.relative_to(CONFIG_DIR)) for path in CONFIG_DIR.rglob("*.yaml") if "Base" not in path.name}
    c4_configs = {name for name in on_disk if backbone_name(CONFIG_DIR / name) != "build_resnet_fpn_backbone"}
    assert set(FPN_COUNTERPARTS) <= c4_configs
    for c4_config, fpn_config in FPN_COUNTERPARTS.items():
        assert backbone_name(CONFIG_DIR / fpn_config) == "build_resnet_fpn_backbone"
        for key in ("SOLVER.MAX_ITER", "SOLVER.STEPS", "SOLVER.IMS_PER_BATCH", "SOLVER.REFERENCE_WORLD_SIZE",
                    "INPUT.MIN_SIZE_TRAIN", "INPUT.MIN_SIZE_TEST"):
            assert read_chain(CONFIG_DIR / c4_config, key) == read_chain(CONFIG_DIR / fpn_config, key), (c4_config, key)


def test_backbone_name_follows_the_base_chain(tmp_path):
    (tmp_path / "base.yaml").write_text("MODEL:\n  BACKBONE:\n    NAME: build_resnet_fpn_backbone\n")
    (tmp_path / "child.yaml").write_text('_BASE_: "base.yaml"\nSOLVER:\n  MAX_ITER: 3\n')
    (tmp_path / "c4.yaml").write_text('_BASE_: "child.yaml"\nMODEL:\n  BACKBONE:\n    NAME: build_resnet_backbone\n')
    (tmp_path / "plain.yaml").write_text("SOLVER:\n  MAX_ITER: 3\n")
    assert backbone_name(tmp_path / "child.yaml") == "build_resnet_fpn_backbone"
    assert backbone_name(tmp_path / "c4.yaml") == "build_resnet_backbone"
    assert backbone_name(tmp_path / "plain.yaml") == "build_resnet_backbone"  # detectron2's default


def test_task_datasets_under_a_data_root(tmp_path):
    tmp_path = tmp_path.resolve()  # the dataset names hold the resolved root
    devkit = tmp_path / "VOCdevkit"
    train, test = voc0712_datasets(devkit)
    assert train == [
        VocDataset(f"voc_2007_trainval@{devkit}", devkit / "VOC2007", "trainval", 2007, "voc_2007_trainval"),
        VocDataset(f"voc_2012_trainval@{devkit}", devkit / "VOC2012", "trainval", 2012, "voc_2012_trainval")]
    assert test == VocDataset(f"voc_2007_test@{devkit}", devkit / "VOC2007", "test", 2007, "voc_2007_test")
    train, test = coco2017_datasets(tmp_path / "coco")
    assert train == [CocoDataset(f"coco_2017_train@{tmp_path / 'coco'}",
                                 tmp_path / "coco" / "annotations" / "instances_train2017.json",
                                 tmp_path / "coco" / "train2017", "coco_2017_train")]
    assert test.required_paths() == [tmp_path / "coco" / "annotations" / "instances_val2017.json",
                                     tmp_path / "coco" / "val2017"]
    assert (TASKS["coco_instance_segmentation"].mask_on, TASKS["coco_detection"].mask_on,
            TASKS["voc0712_detection"].mask_on) == (True, False, False)


def test_task_options_decode_as_yacs_does():
    options = task_options(TASKS["voc0712_detection"], ["a@/d/it's", "b@/d"], "c@/d", 20)
    values = dict(zip(options[::2], options[1::2]))
    # yacs' merge_from_list decodes strings with ast.literal_eval.
    assert ast.literal_eval(values["DATASETS.TRAIN"]) == ("a@/d/it's", "b@/d")
    assert ast.literal_eval(values["DATASETS.TEST"]) == ("c@/d",)
    assert ast.literal_eval(values["MODEL.MASK_ON"]) is False
    assert ast.literal_eval(values["MODEL.ROI_HEADS.NUM_CLASSES"]) == 20
    assert "MODEL.ROI_HEADS.NUM_CLASSES" not in task_options(TASKS["coco_detection"], ["x"], "y", None)


def test_detectron2_engine_is_handed_every_argument(monkeypatch):
    calls = []
    fake_train_net = types.ModuleType("transfer.detection.detectron2.train_net")
    fake_train_net.run_detection = lambda *args, **kwargs: calls.append((args, kwargs)) or "result"
    monkeypatch.setitem(sys.modules, "transfer.detection.detectron2.train_net", fake_train_net)
    monkeypatch.setattr(engines, "detectron2_available", lambda: True)
    run = TaskRun(weights="w.pth", data_root=Path("coco"), output_dir=Path("out"), overrides=("SOLVER.MAX_ITER", "4"),
                  seed=2, config_file="c.yaml", baseline=True)
    assert run_task(get_task("coco_detection"), run, "detectron2") == "result"
    assert calls == [(("coco_detection", "w.pth", "coco", "out"),
                      {"random_init": False, "overrides": ("SOLVER.MAX_ITER", "4"), "seed": 2,
                       "config_file": "c.yaml", "arch": "resnet50", "baseline": True})]
    run_task(get_task("voc0712_detection"), TaskRun(weights=None, data_root=Path("v"), output_dir=Path("o"),
                                                     arch="resnet18"), "detectron2")
    assert calls[-1][1]["arch"] == "resnet18" and calls[-1][1]["random_init"] is True


def test_torchvision_engine_config_file_replaces_the_protocol_config(monkeypatch):
    monkeypatch.setattr(tv_tasks, "train_and_evaluate", lambda config: config)
    instant = Path(tv_tasks.CONFIG_DIR) / "voc_instant_test.yaml"
    instant_values = yaml.safe_load(instant.read_text())
    config = tv_tasks.run_detection("voc0712_detection", "w.pth", "VOCdevkit", "out", config_file=str(instant))
    assert config.model.arch == instant_values["model"]["arch"]
    assert config.solver.max_iter == instant_values["solver"]["max_iter"]
    assert (config.data.root, config.model.weights) == ("VOCdevkit", "w.pth")
    protocol = tv_tasks.run_detection("voc0712_detection", "w.pth", "VOCdevkit", "out")
    assert (protocol.solver.max_iter, protocol.model.arch) == (24000, "resnet50")
    assert tv_tasks.run_detection("voc0712_detection", "w.pth", "VOCdevkit", "out", config_file=str(instant),
                                  arch="resnet34").model.arch == "resnet34"
