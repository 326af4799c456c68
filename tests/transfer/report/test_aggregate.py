"""Grouping of trials and their mean / sample std / count."""

import dataclasses
import math

import pytest

from transfer.report.aggregate import aggregate_results, aggregate_runs
from transfer.report.errors import ReportError
from transfer.report.tables import format_stat


def test_trials_mean_and_sample_std(sample_runs):
    places = next(a for a in aggregate_results("x", sample_runs["resnet50.pth (ours)"]) if a.task == "places205_linear")
    stat = places.metrics["top1"]
    assert stat.n == 3
    assert stat.mean == pytest.approx((57.0 + 50.0 + 52.0) / 3)
    assert stat.std == pytest.approx(math.sqrt(((50 - 53) ** 2 + (52 - 53) ** 2 + (57 - 53) ** 2) / 2))
    assert places.seeds == [0, 1, 2]
    assert format_stat(stat) == "53.0 ± 3.61 (n=3)"
    assert places.metrics["top5"].std == 0.0


def test_single_trial_has_no_std_and_task_spread_is_attached(sample_runs):
    aggregates = {a.task: a for a in aggregate_results("x", sample_runs["resnet50.pth (ours)"])}
    voc = aggregates["voc07_svm"].metrics["mAP"]
    assert (voc.mean, voc.std, voc.n) == (80.0, None, 1)
    assert format_stat(voc) == "80.0"
    lowshot = aggregates["voc07_lowshot_svm"].metrics
    assert set(lowshot) == {"mAP@1", "mAP@8"}
    assert lowshot["mAP@8"].within_run_std == 2.25
    assert format_stat(lowshot["mAP@8"]) == "40.0 ± 2.25"


def test_engines_are_separate_evaluations(sample_runs):
    from core.results import TaskResult

    results = [TaskResult(task="voc0712_detection", dataset="voc2007", split="test", weights="w", engine=engine,
                          metrics={"AP": value}, seed=seed)
               for engine, value, seed in (("detectron2", 50.0, 0), ("torchvision", 40.0, 0), ("detectron2", 52.0, 1))]
    aggregates = aggregate_results("x", results)
    assert [(a.engine, a.metrics["AP"].mean, a.metrics["AP"].n) for a in aggregates] == [
        ("detectron2", 51.0, 2), ("torchvision", 40.0, 1)]


def test_runs_with_other_protocol_values_are_not_trials_of_one_evaluation(sample_runs):
    places = [result for result in sample_runs["resnet50.pth (ours)"] if result.task == "places205_linear"]
    one_process = dataclasses.replace(places[0], protocol={**places[0].protocol, "processes": 1}, seed=9)
    aggregates = [a for a in aggregate_results("x", [*places, one_process]) if a.task == "places205_linear"]
    assert sorted(len(aggregate.results) for aggregate in aggregates) == [1, 3]
    assert {aggregate.protocol_facts["processes"] for aggregate in aggregates} == {1, 8}


def test_gap_names_what_differs_from_the_task_protocol(sample_runs):
    aggregates = {a.task: a for a in aggregate_results("x", sample_runs["resnet50.pth (ours)"])}
    assert aggregates["voc07_svm"].gap == ""
    assert aggregates["coco_instance_segmentation"].gap == ("model Mask R-CNN R50-FPN (protocol Mask R-CNN R50-C4), "
                                                            "total batch 2 (16)")
    assert aggregates["mystery_task"].gap is None  # not a registered task


def test_bad_inputs_are_rejected():
    with pytest.raises(ReportError, match="empty"):
        aggregate_runs({})
    with pytest.raises(ReportError, match="'ours'.*TaskResult.*dict"):
        aggregate_runs({"ours": [{"task": "knn"}]})
