"""detectron2 evaluation output -> the project's results JSON (no detectron2 needed)."""

import json
import math

import pytest

from transfer.detection.detectron2.results import build_task_result, dataset_and_split, loss_curve, metrics_and_per_class
from core.results import read_result, write_result
from transfer.detection.detectron2.results import detectron2_metric, protocol_facts, task_for
from transfer.protocol import describe_differences, protocol_differences
from transfer.registry import get_task

VOC_OUTPUT = {"bbox": {"AP": 55.1, "AP50": 81.2, "AP75": 61.0, "AP50-aeroplane": 85.0, "AP50-tvmonitor": 77.4}}
COCO_OUTPUT = {"bbox": {"AP": 39.2, "AP50": 59.4, "AP75": 42.5, "APs": 20.0, "AP-person": 50.0, "AP-kite": math.nan},
               "segm": {"AP": 34.3, "AP50": 56.0, "AP75": 36.5, "APl": 50.1, "AP-person": 44.0}}


def test_voc_results_follow_the_contract(tmp_path):
    (tmp_path / "metrics.json").write_text(
        json.dumps({"iteration": 19, "total_loss": 1.5, "lr": 0.1}) + "\n"
        + json.dumps({"iteration": 39, "total_loss": 1.25}) + "\n"
        + json.dumps({"bbox/AP": 1.0, "iteration": 39}) + "\n" + '{"iteration": 5')
    result = build_task_result(spec=get_task("voc0712_detection"), dataset_name="voc_2007_test", split="test",
                               weights=str(tmp_path / "absent.pkl"), results=VOC_OUTPUT, config={"SEED": 3},
                               seed=3, wall_time_s=12.0, output_dir=tmp_path)
    assert (result.task, result.dataset, result.split, result.engine) == ("voc0712_detection", "voc2007", "test",
                                                                          "detectron2")
    assert result.metrics == {"AP": 55.1, "AP50": 81.2, "AP75": 61.0}
    assert result.per_class == {"ap50": {"aeroplane": 85.0, "tvmonitor": 77.4}}
    assert result.curves == {"loss": [[19.0, 1.5], [39.0, 1.25]]}
    assert result.weights_sha256 is None and result.seed == 3
    write_result(result, tmp_path / "results.json")
    assert read_result(tmp_path / "results.json") == result


def test_coco_mask_results_follow_the_contract(tmp_path):
    result = build_task_result(spec=get_task("coco_instance_segmentation"), dataset_name="coco_2017_val", split=None,
                               weights="w.pkl", results=COCO_OUTPUT, config={}, seed=None, wall_time_s=1.0,
                               output_dir=tmp_path)
    assert (result.task, result.dataset, result.split) == ("coco_instance_segmentation", "coco2017", "val")
    assert result.metrics == {"box_AP": 39.2, "box_AP50": 59.4, "box_AP75": 42.5,
                              "mask_AP": 34.3, "mask_AP50": 56.0, "mask_AP75": 36.5}
    assert result.per_class == {"box_ap": {"person": 50.0}, "mask_ap": {"person": 44.0}}  # NaN left out
    assert result.curves == {}


def test_coco_box_only_and_missing_group():
    metrics, _ = metrics_and_per_class(get_task("coco_detection"), {"bbox": COCO_OUTPUT["bbox"]})
    assert set(metrics) == {"box_AP", "box_AP50", "box_AP75"}
    with pytest.raises(ValueError, match="segm/AP"):
        metrics_and_per_class(get_task("coco_instance_segmentation"), {"bbox": COCO_OUTPUT["bbox"]})


def test_user_dataset_names_are_kept():
    assert dataset_and_split("demo_voc_2007_test", "test") == ("demo_voc_2007_test", "test")
    assert dataset_and_split("my_coco_val") == ("my_coco_val", "test")
    assert dataset_and_split("voc_2012_val") == ("voc2012", "val")


def test_missing_metrics_file_gives_no_curve(tmp_path):
    assert loss_curve(tmp_path) == []


def test_rerun_into_the_same_output_keeps_only_the_latest_points(tmp_path):
    # detectron2 appends to metrics.json: a second run from scratch, then a resume from iteration 29.
    lines = [{"iteration": 19, "total_loss": 3.0}, {"iteration": 39, "total_loss": 2.0},
             {"iteration": 19, "total_loss": 2.5}, {"iteration": 39, "total_loss": 1.5},
             {"iteration": 59, "total_loss": 1.0}, {"iteration": 39, "total_loss": 1.4}]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(line) for line in lines))
    assert loss_curve(tmp_path) == [[19.0, 2.5], [39.0, 1.4]]


def test_tasks_and_metric_groups_come_from_the_registry():
    assert task_for("pascal_voc", False).name == "voc0712_detection"
    assert task_for("coco", True).name == "coco_instance_segmentation"
    assert task_for("coco", False).name == "coco_detection"
    with pytest.raises(ValueError, match="0 registered tasks"):
        task_for("lvis", False)
    assert [detectron2_metric(name) for name in ("AP50", "box_AP75", "mask_AP")] == [
        ("bbox", "AP50"), ("bbox", "AP75"), ("segm", "AP")]


def test_protocol_facts_of_a_one_process_run_name_the_rescaled_values():
    # The VOC protocol config (IMS_PER_BATCH 16, BASE_LR 0.1, MAX_ITER 24000, REFERENCE_WORLD_SIZE 8) as
    # detectron2's auto_scale_workers leaves it for one process: k = 1/8.
    config = {"MODEL": {"MASK_ON": False, "BACKBONE": {"NAME": "build_resnet_backbone"},
                        "RESNETS": {"DEPTH": 50, "NORM": "SyncBN"}},
              "SOLVER": {"IMS_PER_BATCH": 2, "BASE_LR": 0.0125, "MAX_ITER": 192000, "REFERENCE_WORLD_SIZE": 1}}
    facts = protocol_facts(config, processes=1, arch="resnet50")
    assert facts["model"] == "Faster R-CNN R50-C4" and facts["processes"] == 1
    differences = protocol_differences(facts, get_task("voc0712_detection").protocol)
    assert describe_differences(differences) == \
        "total batch 2 (protocol 16), iterations 192000 (24000), learning rate 0.0125 (0.1)"
    eight = dict(config, SOLVER={"IMS_PER_BATCH": 16, "BASE_LR": 0.1, "MAX_ITER": 24000})
    assert protocol_differences(protocol_facts(eight, processes=8, arch="resnet50"),
                                get_task("voc0712_detection").protocol) == {}
