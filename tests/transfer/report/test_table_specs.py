"""Detection rows name the model that produced them: from the protocol values the results record, else from the
resolved config; and the paper tables are built from the registry in the published column order."""

from transfer.registry import all_tasks
from transfer.report.table_specs import engine_description, paper_table_specs
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
    assert engine_description("torchvision", [result({"model": {"arch": "resnet18"}}, "torchvision")]) == \
        "torchvision R18-FPN"
    assert engine_description("torchvision") == "torchvision R50-FPN"
    assert engine_description(None) == "—"
    assert engine_description("mmdet") == "mmdet"


def test_recorded_model_wins_over_the_config():
    recorded = TaskResult(task="voc0712_detection", dataset="voc2007", split="test", weights="w.pth",
                          metrics={"AP": 1.0}, engine="detectron2", protocol={"model": "Faster R-CNN R18-FPN"},
                          config={"MODEL": {"RESNETS": {"DEPTH": 50}}})
    assert engine_description("detectron2", [recorded]) == "detectron2 R18-FPN"


def test_paper_tables_follow_the_published_column_order():
    specs = {spec.key: spec for spec in paper_table_specs(all_tasks())}
    assert list(specs) == ["transfer_classification", "transfer_detection", "imagenet_linear",
                           "imagenet_semi_supervised"]
    detection = specs["transfer_detection"]
    assert [column.published_metric for column in detection.columns] == [
        "voc0712_AP", "voc0712_AP50", "voc0712_AP75", "coco_box_AP", "coco_box_AP50", "coco_box_AP75",
        "coco_mask_AP", "coco_mask_AP50", "coco_mask_AP75"]
    # COCO box AP comes from Mask R-CNN only; Faster R-CNN COCO results have their own table.
    assert {column.task for column in detection.columns if column.header.startswith("COCO")} == \
        {"coco_instance_segmentation"}
    assert [column.task for column in specs["transfer_classification"].columns] == [
        "places205_linear", "voc07_svm", "inat18_linear"]
