"""The task registry: one spec per task, read by the suite and the report; a new task is one module + its config."""

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest

from transfer import registry
from transfer.registry import (EngineUnavailableError, TaskSpec, UnknownTaskError, choose_engine, get_task,
                               register_task)
from transfer.suite import SuiteConfig, run_suite

TOY_MODULE = '''
"""A toy classification task: kNN on a folder pair, written as a user would add a task."""
from pathlib import Path

from transfer.classification.tasks.knn import run_knn
from transfer.protocol import Protocol
from transfer.registry import DatasetLayout, TaskSpec, register_task

register_task(TaskSpec(
    name="toy_folder_knn",
    description="kNN on a labelled folder pair",
    datasets=(DatasetLayout("toy_folders", ("imagefolder",), ("train", "val")),),
    metrics=("top1",),
    runners={"pytorch": run_knn},
    protocol=Protocol({"arch": "resnet18", "feature_layer": "res5", "feature_dim": 512, "image_size": 64},
                      "this test"),
    config=Path(__file__).with_name("toy_folder_knn.yaml"),
    compared_with_baseline=True,
))
'''
TOY_CONFIG = """
dataset: imagefolder
train_split: train
val_split: val
k: 5
features:
  layer: res5
  image_size: 64
  batch_size: 16
  num_workers: 0
"""


@pytest.fixture
def toy_task(tmp_path):
    """The toy module and its config in a folder of their own, imported (which registers the task)."""
    folder = tmp_path / "toy_package"
    folder.mkdir()
    (folder / "toy_folder_knn.py").write_text(textwrap.dedent(TOY_MODULE))
    (folder / "toy_folder_knn.yaml").write_text(TOY_CONFIG)
    spec = importlib.util.spec_from_file_location("toy_folder_knn", folder / "toy_folder_knn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield get_task("toy_folder_knn")
    registry.unregister_task("toy_folder_knn")
    sys.modules.pop("toy_folder_knn", None)


def test_a_new_task_runs_through_the_suite_and_the_report(toy_task, small_demo_data, tmp_path):
    config = SuiteConfig(tasks=["toy_folder_knn"], arch="resnet18", random_init=True)
    outcome = run_suite([], small_demo_data, tmp_path / "suite", config, progress=False)
    assert outcome.failures == {} and sorted(outcome.ran) == ["random init/toy_folder_knn"]
    result = outcome.runs["random init"][0]
    assert result.task == "toy_folder_knn" and result.baseline
    assert result.protocol["feature_dim"] == 512  # a resnet18's pooled res5, recorded by the shared runner
    markdown = (tmp_path / "suite" / "report.md").read_text()
    assert "## toy_folder_knn: kNN on a labelled folder pair" in markdown
    assert f"| random init | {result.metrics['top1']:.1f} | as specified |" in markdown
    summary = json.loads((tmp_path / "suite" / "summary.json").read_text())
    assert summary["backbones"]["random init"]["tasks"]["toy_folder_knn"]["paper_protocol"] is True


def test_registry_refuses_duplicates_and_names_unknown_tasks(toy_task):
    with pytest.raises(ValueError, match="registered twice"):
        register_task(TaskSpec(**{**toy_task.__dict__, "description": "another"}))
    with pytest.raises(UnknownTaskError, match="unknown task 'voc07'; known: .*voc07_svm"):
        get_task("voc07")


def test_engine_choice(monkeypatch):
    spec = get_task("voc0712_detection")
    assert choose_engine(get_task("knn")) == "pytorch"
    monkeypatch.setattr("transfer.detection.engines.detectron2_available", lambda: False)
    assert choose_engine(spec, "auto") == "torchvision"
    with pytest.raises(EngineUnavailableError, match="not installed"):
        choose_engine(spec, "detectron2")
    with pytest.raises(UnknownTaskError, match="has no engine 'mmdet'"):
        choose_engine(spec, "mmdet")
    monkeypatch.setattr("transfer.detection.engines.detectron2_available", lambda: True)
    assert choose_engine(spec, "auto") == "detectron2"


def test_every_paper_column_is_a_published_metric():
    from transfer.published import published_results

    for spec in registry.all_tasks().values():
        if spec.paper is not None:
            metrics = published_results()[spec.paper.table]["metric"]
            for column in spec.paper.columns:
                assert column.published_metric in metrics, (spec.name, column)
                assert column.metric in spec.metrics, (spec.name, column)
