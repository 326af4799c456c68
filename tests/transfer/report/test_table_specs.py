"""Detection rows name the model that produced them, read from the resolved config in the results."""

from transfer.report.table_specs import engine_description
from core.results import TaskResult


def result(config: dict, engine: str) -> TaskResult:
    return TaskResult(task="voc0712_detection", dataset="voc2007", split="test", weights="w.pth",
                      metrics={"AP": 1.0}, engine=engine, config=config)


def test_detectron2_depth_and_head_come_from_the_config():
    c4 = {"MODEL": {"RESNETS": {"DEPTH": 50}, "BACKBONE": {"NAME": "build_resnet_backbone"}}}
    fpn18 = {"MODEL": {"RESNETS": {"DEPTH": 18}, "BACKBONE": {"NAME": "build_resnet_fpn_backbone"}}}
    assert engine_description("detectron2", [result(c4, "detectron2")]) == "detectron2 R50-C4"
    assert engine_description("detectron2", [result(fpn18, "detectron2")]) == "detectron2 R18-FPN"


def test_torchvision_arch_and_defaults():
    assert engine_description("torchvision", [result({"model": {"arch": "resnet18"}}, "torchvision")]).startswith(
        "torchvision R18-FPN (not directly comparable")
    assert engine_description("torchvision").startswith("torchvision R50-FPN")
    assert engine_description(None) == "—"
    assert engine_description("mmdet") == "mmdet"
