"""One process per GPU: how many processes a detection run gets, the command each engine is launched with, the
results read back, and the protocol values predicted for the node (GPUs faked; nothing is launched)."""

import subprocess
import sys
from pathlib import Path

import pytest

from core.results import TaskResult, write_result
from transfer.detection import launch
from transfer.detection.launch import LaunchError, node_processes, protocol_forecast
from transfer.registry import TaskRun, get_task
from transfer.suite.config import SuiteConfig
from transfer.suite.forecast import log_protocol_forecasts, protocol_forecasts


@pytest.fixture
def gpus(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)

    def set_count(count):
        monkeypatch.setattr("torch.cuda.device_count", lambda: count)
    return set_count


@pytest.fixture
def launched(monkeypatch):
    """Replaces the subprocess with one that records the command and writes the results.json a run would."""
    commands = []

    def fake_run(command, check=False):
        commands.append(list(command))
        output = Path(command[command.index("--output-dir") + 1]) if "--output-dir" in command else Path(
            next(item.split("=", 1)[1].strip('"') for item in command if item.startswith("output_dir=")))
        processes = int(command[command.index("--nproc_per_node" if "--nproc_per_node" in command else "--num-gpus")
                                + 1])
        write_result(TaskResult(task="voc0712_detection", dataset="voc2007", split="test", weights="w.pth",
                                metrics={"AP": 50.0}, protocol={"processes": processes}), output / "results.json")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(launch.subprocess, "run", fake_run)
    return commands


def test_processes_follow_the_gpus_of_the_node(gpus, monkeypatch):
    gpus(8)
    assert node_processes() == 8 and node_processes(2) == 2
    gpus(0)
    assert node_processes() == 1
    gpus(8)
    monkeypatch.setenv("LOCAL_RANK", "0")  # one process of a torchrun job: never launched again
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert node_processes() == 4 and not launch.launches_subprocess(node_processes())
    with pytest.raises(ValueError, match="at least 1"):
        monkeypatch.delenv("LOCAL_RANK")
        node_processes(0)


def test_torchvision_run_on_a_multi_gpu_node_is_a_torchrun_subprocess(gpus, launched, tmp_path):
    gpus(4)
    spec = get_task("voc0712_detection")
    run = TaskRun(weights="w.pth", data_root=Path("VOCdevkit"), output_dir=tmp_path, seed=3,
                  overrides=("solver.max_iter=10",), baseline=True)
    result = spec.runners["torchvision"](spec, run)
    assert result.protocol["processes"] == 4 and result.metrics == {"AP": 50.0}
    command = launched[0]
    assert command[:12] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4",
                            "-m", "transfer.detection", "--engine", "torchvision", "--config-file",
                            str(Path(spec.runners["torchvision"].config_path()))]
    assert {"task=voc0712_detection", 'data.root="VOCdevkit"', f'output_dir="{tmp_path}"', "seed=3",
            'model.weights="w.pth"', "model.random_init=false", "baseline=true",
            "model.arch=resnet50"} <= set(command[12:])
    assert command[-1] == "solver.max_iter=10"  # the caller's overrides come last


def test_detectron2_run_on_a_multi_gpu_node_is_a_train_net_subprocess(gpus, launched, tmp_path):
    gpus(8)
    spec = get_task("coco_instance_segmentation")
    run = TaskRun(weights=None, data_root=Path("coco"), output_dir=tmp_path, seed=1)
    assert spec.runners["detectron2"](spec, run).protocol["processes"] == 8
    assert launched == [[sys.executable, "-m", "transfer.detection.detectron2.train_net", "--num-gpus", "8",
                         "--task", "coco_instance_segmentation", "--data-root", "coco", "--output-dir", str(tmp_path),
                         "--seed", "1", "--arch", "resnet50", "--random-init"]]


def test_a_failed_launch_or_results_of_another_launch_are_refused(tmp_path, monkeypatch):
    write_result(TaskResult(task="t", dataset="d", split="s", weights="w", metrics={"AP": 1.0},
                            protocol={"processes": 1}), tmp_path / "results.json")
    with pytest.raises(LaunchError, match="records 1 processes, but 8 were launched"):
        launch.run_launched(["true"], tmp_path, 8, run_command=lambda command: subprocess.CompletedProcess(command, 0))
    with pytest.raises(LaunchError, match="exited with status 3"):
        launch.run_launched(["x"], tmp_path, 8, run_command=lambda command: subprocess.CompletedProcess(command, 3))


def _forecast(task, engine, **options):
    spec = get_task(task)
    run = TaskRun(weights=None, data_root=Path("."), output_dir=Path("."), **options)
    return protocol_forecast(spec, spec.runners[engine], run)


def test_detectron2_forecast_rescales_from_the_reference_world_size(gpus):
    # VOC protocol: batch 16 at LR 0.1 for 24k iterations on 8 GPUs; detectron2 keeps 2 images per GPU.
    gpus(2)
    assert _forecast("voc0712_detection", "detectron2").endswith(
        "total batch 4 (protocol 16), iterations 96000 (24000), learning rate 0.025 (0.1)")
    gpus(8)
    assert _forecast("voc0712_detection", "detectron2") == ""
    assert _forecast("coco_instance_segmentation", "detectron2") == ""
    gpus(0)
    assert _forecast("coco_instance_segmentation", "detectron2").endswith(
        "total batch 2 (protocol 16), iterations 720000 (90000), learning rate 0.00375 (0.03)")
    gpus(8)  # the caller's overrides count
    assert "iterations 100 (protocol 24000)" in _forecast("voc0712_detection", "detectron2",
                                                  overrides=("SOLVER.MAX_ITER", "100"))


def test_torchvision_forecast_names_the_model_and_the_missing_syncbn(gpus):
    gpus(0)
    line = _forecast("voc0712_detection", "torchvision")
    assert line.startswith("voc0712_detection (torchvision, CPU, 1 process) will not follow the paper's protocol: ")
    assert "model Faster R-CNN R50-FPN (protocol Faster R-CNN R50-C4)" in line
    assert "total batch 2 (16), iterations 192000 (24000)" in line and "normalisation BN (SyncBN)" in line
    gpus(8)
    line = _forecast("voc0712_detection", "torchvision")
    assert "(torchvision, 8 GPU processes)" in line and "total batch" not in line and "normalisation" not in line


def test_suite_forecasts_only_tasks_whose_runner_predicts(gpus):
    gpus(8)
    tasks = [get_task(name) for name in ("voc07_svm", "voc0712_detection", "coco_instance_segmentation")]
    forecasts = protocol_forecasts(tasks, {"voc07_svm": "pytorch", "voc0712_detection": "torchvision",
                                           "coco_instance_segmentation": "detectron2"}, SuiteConfig())
    assert list(forecasts) == ["voc0712_detection"]


def test_suite_logs_one_line_per_detection_task_off_protocol(gpus, caplog):
    gpus(1)
    tasks = [get_task(name) for name in ("voc0712_detection", "coco_instance_segmentation")]
    with caplog.at_level("WARNING", logger="transfer.suite.forecast"):
        log_protocol_forecasts(tasks, {name.name: "detectron2" for name in tasks}, SuiteConfig())
    assert [record.getMessage() for record in caplog.records] == [
        "voc0712_detection (detectron2, 1 GPU process) will not follow the paper's protocol: total batch 2 "
        "(protocol 16), iterations 192000 (24000), learning rate 0.0125 (0.1)",
        "coco_instance_segmentation (detectron2, 1 GPU process) will not follow the paper's protocol: total batch 2 "
        "(protocol 16), iterations 720000 (90000), learning rate 0.00375 (0.03)"]
