"""End to end on the generated demo VOC and COCO data (CPU, resnet18, a few iterations)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from core.resume import ResumeError

from core.checkpoint import load_checkpoint
from core.config import config_to_dict
from transfer.detection.__main__ import main as detection_main
from transfer.detection.torchvision.config import load_detection_config
from transfer.detection.torchvision.evaluate import evaluate_coco, evaluate_voc
from transfer.detection.engines import detectron2_available
from transfer.registry import EngineUnavailableError, TaskRun, get_task, run_task
from transfer.detection.torchvision.train import load_datasets, train_and_evaluate
from core.results import read_result

REPO = Path(__file__).resolve().parents[4]
CONFIG_DIR = REPO / "configs" / "torchvision_detection"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "data"
    subprocess.run([sys.executable, str(REPO / "tools" / "make_demo_data.py"), str(out), "--layouts", "voc,coco",
                    "--images-per-class", "2", "--size", "64"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def voc_config(demo_root, weights, output_dir, *overrides):
    return load_detection_config(CONFIG_DIR / "voc_instant_test.yaml", [
        f"data.root={demo_root / 'VOCdevkit'}", f"model.weights={weights}", f"output_dir={output_dir}",
        "solver.max_iter=2", "solver.checkpoint_period=100", *overrides])


def test_voc_training_writes_results_and_resumes(demo_root, weights, tmp_path):
    result = train_and_evaluate(voc_config(demo_root, weights, tmp_path))
    saved = read_result(tmp_path / "results.json")
    assert saved == result
    assert (saved.task, saved.dataset, saved.split, saved.engine) == ("voc0712_detection", "voc2007", "test", "torchvision")
    assert set(saved.metrics) == {"AP", "AP50", "AP75", "coco_AP", "coco_AP50", "coco_AP75"}
    assert all(np.isfinite(value) and 0 <= value <= 100 for value in saved.metrics.values())
    assert set(saved.per_class["ap50"]) <= {"aeroplane", "boat", "bottle", "pottedplant", "tvmonitor"}
    assert [point[0] for point in saved.curves["loss"]] == [1, 2]
    assert saved.weights_sha256 is not None and saved.seed == 0
    first_checkpoint = load_checkpoint(tmp_path / "checkpoint.pth")
    assert first_checkpoint["iteration"] == 2

    resumed = train_and_evaluate(voc_config(demo_root, weights, tmp_path, "solver.max_iter=3"))
    assert [point[0] for point in resumed.curves["loss"]] == [1, 2, 3]
    assert resumed.curves["loss"][:2] == saved.curves["loss"]  # the first two iterations were not re-run
    assert load_checkpoint(tmp_path / "checkpoint.pth")["iteration"] == 3
    # A finished run returns its results without training again.
    assert train_and_evaluate(voc_config(demo_root, weights, tmp_path, "solver.max_iter=3")) == resumed
    # Another seed (or other weights, data, solver) in the same folder is refused rather than resumed.
    with pytest.raises(ResumeError, match=r"made with other settings \(seed: 0 -> 5\)"):
        train_and_evaluate(voc_config(demo_root, weights, tmp_path, "solver.max_iter=3", "seed=5"))


def test_coco_mask_rcnn_through_the_registry(demo_root, weights, tmp_path):
    run = TaskRun(weights=str(weights), data_root=demo_root / "coco", output_dir=tmp_path, seed=3,
                  overrides=(*instant_test_overrides("coco_instant_test.yaml"), "solver.max_iter=2",
                             "solver.checkpoint_period=100"))
    result = run_task(get_task("coco_instance_segmentation"), run, "torchvision")
    assert result.task == "coco_instance_segmentation" and result.dataset == "coco2017" and result.seed == 3
    assert set(result.metrics) == {f"{kind}_{name}" for kind in ("box", "mask") for name in ("AP", "AP50", "AP75")}
    assert all(np.isfinite(value) for value in result.metrics.values())
    assert read_result(tmp_path / "results.json").engine == "torchvision"


def instant_test_overrides(name):
    """The model, solver and loader settings of an instant-test config, as overrides of a protocol config."""
    config = config_to_dict(load_detection_config(CONFIG_DIR / name, ["model.weights=unused"]))
    del config["model"]["weights"]
    return [f"{section}.{key}={json.dumps(value)}" for section in ("model", "solver")
            for key, value in config[section].items()] + [f"data.num_workers={config['data']['num_workers']}"]


def test_ground_truth_as_predictions_scores_100(demo_root, weights, tmp_path):
    """The evaluators on the demo data, fed the ground truth itself (difficult boxes included)."""
    voc = voc_config(demo_root, weights, tmp_path)
    _, voc_test = load_datasets(voc)
    perfect = [{"index": i, "image_id": r.image_id, "boxes": r.boxes, "labels": r.labels,
                "scores": np.ones(len(r.labels))} for i, r in enumerate(voc_test.records)]
    metrics, per_class = evaluate_voc(voc_test, perfect)
    assert metrics == pytest.approx({key: 100.0 for key in metrics})
    assert any(r.difficult.any() for r in voc_test.records)  # the demo data exercises the difficult rule
    coco = load_detection_config(CONFIG_DIR / "coco_instant_test.yaml", [
        f"data.root={demo_root / 'coco'}", f"model.weights={weights}"])
    _, coco_test = load_datasets(coco)
    perfect = [{"index": i, "image_id": r.image_id, "boxes": r.boxes, "labels": r.labels,
                "scores": np.ones(len(r.labels))} for i, r in enumerate(coco_test.records)]
    assert evaluate_coco(coco_test, perfect)[0] == pytest.approx({"box_AP": 100.0, "box_AP50": 100.0, "box_AP75": 100.0})


def test_cli_errors(demo_root, weights, tmp_path, capsys):
    config = str(CONFIG_DIR / "voc_instant_test.yaml")
    status = detection_main(["--engine", "torchvision", "--config-file", config, "--weights", str(weights),
                             "--data-root", str(tmp_path / "no_such_dir"), "--output-dir", str(tmp_path)])
    assert status == 2 and "no_such_dir" in capsys.readouterr().err
    wrong_arch = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), wrong_arch)
    status = detection_main(["--engine", "torchvision", "--config-file", config, "--weights", str(wrong_arch),
                             "--data-root", str(demo_root / "VOCdevkit"), "--output-dir", str(tmp_path)])
    assert status == 2 and "layer1.2" in capsys.readouterr().err  # a tensor resnet18 does not have
    status = detection_main(["--engine", "torchvision", "--config-file", config, "--data-root",
                             str(demo_root / "VOCdevkit"), "--output-dir", str(tmp_path), "solver.bogus=1"])
    assert status == 2 and "solver.bogus" in capsys.readouterr().err
    status = detection_main(["--engine", "torchvision", "--config-file", config, "--weights", str(weights),
                             "--data-root", str(demo_root / "VOCdevkit"), "--output-dir", str(tmp_path / "x"),
                             "--eval-only"])
    assert status == 2 and "checkpoint.pth" in capsys.readouterr().err


@pytest.mark.skipif(detectron2_available(), reason="detectron2 is installed here")
def test_detectron2_engine_without_detectron2(capsys):
    assert detection_main(["--engine", "detectron2", "--config-file", "x.yaml"]) == 2
    assert "--engine torchvision" in capsys.readouterr().err
    run = TaskRun(weights=None, data_root=Path("data"), output_dir=Path("out"))
    with pytest.raises(EngineUnavailableError, match="--engine torchvision"):
        run_task(get_task("voc0712_detection"), run, "detectron2")


def test_two_process_ddp_run_with_torchrun(demo_root, weights, tmp_path):
    """torchrun with 2 CPU processes (Gloo): one results file from rank 0, the batch split over processes."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "transfer.detection", "--engine", "torchvision",
               "--config-file", str(CONFIG_DIR / "voc_instant_test.yaml"), "--weights", str(weights),
               "--data-root", str(demo_root / "VOCdevkit"), "--output-dir", str(tmp_path),
               "solver.max_iter=2", "solver.ims_per_batch=4", "solver.checkpoint_period=100"]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240,
                               env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = read_result(tmp_path / "results.json")
    assert result.config["world_size"] == 2 and result.config["scaled_solver"]["ims_per_batch"] == 4
    assert [point[0] for point in result.curves["loss"]] == [1, 2]
    assert all(np.isfinite(value) for value in result.metrics.values())


def test_engine_dispatch_passes_the_other_arguments(monkeypatch):
    import transfer.detection
    import transfer.detection.__main__ as entry

    calls = []
    fake_train_net = type(sys)("transfer.detection.detectron2.train_net")
    fake_train_net.run = lambda argv: calls.append(list(argv)) or 0
    monkeypatch.setitem(sys.modules, "transfer.detection.detectron2.train_net", fake_train_net)
    monkeypatch.setattr(transfer.detection, "train_net", fake_train_net, raising=False)
    monkeypatch.setattr(entry, "detectron2_available", lambda: True)
    assert entry.main(["--config-file", "c.yaml", "--engine", "detectron2", "--num-gpus", "8", "SOLVER.MAX_ITER", "5"]) == 0
    assert entry.main(["--config-file", "c.yaml"]) == 0  # detectron2 is the default when importable
    assert calls == [["--config-file", "c.yaml", "--num-gpus", "8", "SOLVER.MAX_ITER", "5"], ["--config-file", "c.yaml"]]
    torchvision_calls = []
    monkeypatch.setitem(entry.ENGINES, "torchvision", lambda argv: torchvision_calls.append(argv) or 0)
    monkeypatch.setattr(entry, "detectron2_available", lambda: False)
    assert entry.main(["--task", "voc0712_detection"]) == 0 and torchvision_calls == [["--task", "voc0712_detection"]]


def test_interrupted_training_resumes_bit_identical_to_the_uninterrupted_run(demo_root, weights, tmp_path,
                                                                            monkeypatch):
    """Stopped right after the checkpoint of iteration 2 (of 4), then run again: the batches, flips, resolutions
    and RPN/ROI samples of iterations 3-4 are those of an uninterrupted run, so the weights end bit-identical."""
    import transfer.detection.torchvision.train as train

    def config(output):
        return voc_config(demo_root, weights, tmp_path / output, "solver.max_iter=4", "solver.checkpoint_period=2")

    reference = train_and_evaluate(config("uninterrupted"))
    save = train.save_checkpoint

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt("simulated kill after the checkpoint of iteration 2")

    monkeypatch.setattr(train, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(config("interrupted"))
    assert load_checkpoint(tmp_path / "interrupted" / "checkpoint.pth")["iteration"] == 2
    monkeypatch.setattr(train, "save_checkpoint", save)
    torch.manual_seed(1234)  # a new process: the global generators are in another state
    resumed = train_and_evaluate(config("interrupted"))
    assert resumed.curves == reference.curves and resumed.metrics == reference.metrics
    final = [load_checkpoint(tmp_path / output / "checkpoint.pth")["model"]
             for output in ("uninterrupted", "interrupted")]
    assert final[0].keys() == final[1].keys()
    assert all(torch.equal(final[0][key], final[1][key]) for key in final[0])
