"""train_net end to end on CPU with tiny generated VOC and COCO data (CLI and ``run_detection``), and its
refusals (needs detectron2)."""

import math
import pickle
import statistics
from pathlib import Path

import pytest

pytest.importorskip("detectron2", reason="detectron2 is an optional dependency built from source "
                                         "(docs/detectron2.md); these tests need it importable")

import torch  # noqa: E402
import torchvision  # noqa: E402

from core.checkpoint import file_sha256  # noqa: E402
from core.backbone import build_backbone  # noqa: E402
from transfer.detection import UnsupportedBackboneError  # noqa: E402
from transfer.detection.detectron2 import train_net  # noqa: E402
from transfer.detection.detectron2.convert import convert_checkpoint  # noqa: E402
from core.results import read_result  # noqa: E402
from transfer.registry import TaskRun, get_task, run_task  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[4]
QUICK = REPO_ROOT / "configs" / "detectron2" / "quick_schedules"
VOC_INSTANT = QUICK / "voc0712_faster_rcnn_R_50_C4_instant_test.yaml"
# Fewer iterations and proposals than the instant configs: the same code paths, CPU-sized.
CPU_OVERRIDES = ["MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", "2", "TEST.PRECISE_BN.NUM_ITER", "1",
                 "INPUT.MIN_SIZE_TEST", "96", "MODEL.RPN.POST_NMS_TOPK_TEST", "10",
                 "TEST.DETECTIONS_PER_IMAGE", "10"]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory, make_demo_data_tool):
    root = tmp_path_factory.mktemp("demo") / "data"
    make_demo_data_tool.make_demo_data(root, images_per_class=2, size=64, layouts="voc,coco")
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    torch.save(torchvision.models.resnet50().state_dict(), folder / "resnet50.pth")
    convert_checkpoint(folder / "resnet50.pth", folder / "r50.pkl", check_with_detectron2=False)
    return folder / "r50.pkl"


def run_train_net(*args):
    return train_net.run([str(arg) for arg in args])


def check_ap_metrics(metrics, keys):
    assert set(metrics) == set(keys)
    assert all(math.isfinite(value) and 0.0 <= value <= 100.0 for value in metrics.values())


def test_voc_instant_test_trains_evaluates_and_writes_results(tmp_path, demo_root, weights):
    assert run_train_net("--config-file", VOC_INSTANT, "--demo-data", demo_root, "--seed", 1,
                         "MODEL.WEIGHTS", weights, "OUTPUT_DIR", tmp_path, *CPU_OVERRIDES) == 0
    result = read_result(tmp_path / "results.json")
    assert (result.task, result.engine, result.seed) == ("voc0712_detection", "detectron2", 1)
    check_ap_metrics(result.metrics, ["AP", "AP50", "AP75"])
    # Per-class AP50 over the 20 VOC classes averages to detectron2's own AP50.
    assert len(result.per_class["ap50"]) == 20
    assert statistics.mean(result.per_class["ap50"].values()) == pytest.approx(result.metrics["AP50"], abs=1e-6)
    assert result.config["SEED"] == 1 and result.config["MODEL"]["WEIGHTS"] == str(weights)
    assert result.config["SOLVER"]["MAX_ITER"] == 2
    assert result.curves["loss"][-1][0] == 1.0  # detectron2 logs the last iteration (0-based)
    assert (tmp_path / "model_final.pth").is_file()


def test_coco_c4_instant_test_then_eval_only(tmp_path, demo_root, weights):
    config = QUICK / "coco_mask_rcnn_R_50_C4_instant_test.yaml"
    assert run_train_net("--config-file", config, "--demo-data", demo_root, "MODEL.WEIGHTS", weights,
                         "OUTPUT_DIR", tmp_path, *CPU_OVERRIDES) == 0
    result = read_result(tmp_path / "results.json")
    assert (result.task, result.dataset) == ("coco_instance_segmentation", "demo_coco_2017_val")
    check_ap_metrics(result.metrics, ["box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75"])
    assert run_train_net("--config-file", config, "--demo-data", demo_root, "--eval-only", "--results",
                         tmp_path / "eval.json", "MODEL.WEIGHTS", tmp_path / "model_final.pth",
                         "OUTPUT_DIR", tmp_path / "eval", *CPU_OVERRIDES) == 0
    evaluated = read_result(tmp_path / "eval.json")
    # The same trained model evaluated again gives the same numbers.
    assert evaluated.metrics == pytest.approx(result.metrics)


def test_coco_fpn_instant_test(tmp_path, demo_root, weights):
    assert run_train_net("--config-file", QUICK / "coco_mask_rcnn_R_50_FPN_instant_test.yaml", "--demo-data",
                         demo_root, "MODEL.WEIGHTS", weights, "OUTPUT_DIR", tmp_path,
                         *CPU_OVERRIDES, "SOLVER.MAX_ITER", "1") == 0
    check_ap_metrics(read_result(tmp_path / "results.json").metrics,
                     ["box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75"])


def refusal(capsys, *args):
    assert run_train_net(*args) == 2
    return capsys.readouterr().err


def test_missing_or_empty_weights_are_refused(tmp_path, demo_root, capsys):
    common = ["--config-file", VOC_INSTANT, "--demo-data", demo_root, "OUTPUT_DIR", tmp_path]
    error = refusal(capsys, *common, "MODEL.WEIGHTS", "/absent/r50.pkl")
    assert "MODEL.WEIGHTS file not found: /absent/r50.pkl" in error
    assert "MODEL.WEIGHTS is empty" in refusal(capsys, *common)
    with open(tmp_path / "plain.pkl", "wb") as handle:
        pickle.dump({"model": {}, "__author__": "someone"}, handle)
    assert "matching_heuristics" in refusal(capsys, *common, "MODEL.WEIGHTS", tmp_path / "plain.pkl")
    assert not (tmp_path / "model_final.pth").exists()


def test_config_key_typos_are_refused(tmp_path, demo_root, weights, capsys):
    common = ["--demo-data", demo_root, "MODEL.WEIGHTS", weights]
    error = refusal(capsys, "--config-file", VOC_INSTANT, *common, "MODEL.RESNET.NORM", "BN")
    assert "command-line overrides: Non-existent key: MODEL.RESNET.NORM (a typo?" in error
    typo_file = tmp_path / "typo.yaml"
    typo_file.write_text(f'_BASE_: "{VOC_INSTANT}"\nSOLVER:\n  MAX_ITERS: 10\n')
    error = refusal(capsys, "--config-file", typo_file, *common)
    assert str(typo_file) in error and "SOLVER.MAX_ITERS" in error
    assert "config file not found" in refusal(capsys, "--config-file", tmp_path / "absent.yaml", *common)


def test_missing_datasets_are_refused(tmp_path, demo_root, weights, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # builtin names point under DETECTRON2_DATASETS or ./datasets: absent here
    protocol = REPO_ROOT / "configs" / "detectron2" / "voc0712_faster_rcnn_R_50_C4_24k.yaml"
    error = refusal(capsys, "--config-file", protocol, "MODEL.WEIGHTS", weights)
    assert "voc_2007_trainval" in error and "DETECTRON2_DATASETS" in error and "VOC2007" in error
    error = refusal(capsys, "--config-file", VOC_INSTANT, "MODEL.WEIGHTS", weights,
                    "DATASETS.TRAIN", '("demo_never_registered",)')
    assert "'demo_never_registered' is not registered" in error and "--demo-data" in error
    error = refusal(capsys, "--config-file", VOC_INSTANT, "--register-voc", f"mine={tmp_path / 'VOC2007'}:test",
                    "MODEL.WEIGHTS", weights)
    assert "dataset 'mine': missing" in error
    error = refusal(capsys, "--config-file", QUICK / "coco_mask_rcnn_R_50_C4_instant_test.yaml", "--demo-data",
                    demo_root, "MODEL.WEIGHTS", weights, "MODEL.ROI_HEADS.NUM_CLASSES", "80")
    assert "'demo_coco_2017_train' has 5 classes but MODEL.ROI_HEADS.NUM_CLASSES is 80" in error


def test_user_registered_datasets_are_usable(tmp_path, demo_root, weights, capsys):
    voc = demo_root / "VOCdevkit" / "VOC2007"
    coco = demo_root / "coco"
    parser = train_net.argument_parser()
    cfg = train_net.prepare(parser.parse_args([
        "--config-file", str(VOC_INSTANT), "--register-voc", f"user_voc_train={voc}:trainval",
        "--register-voc", f"user_voc_test={voc}:test:2007", "MODEL.WEIGHTS", str(weights),
        "DATASETS.TRAIN", '("user_voc_train",)', "DATASETS.TEST", '("user_voc_test",)']))
    assert cfg.DATASETS.TEST == ("user_voc_test",)
    cfg = train_net.prepare(parser.parse_args([
        "--config-file", str(QUICK / "coco_mask_rcnn_R_50_C4_instant_test.yaml"),
        "--register-coco", f"user_coco={coco / 'annotations' / 'instances_val2017.json'}:{coco / 'val2017'}",
        "MODEL.WEIGHTS", str(weights), "DATASETS.TRAIN", '("user_coco",)', "DATASETS.TEST", '("user_coco",)']))
    assert cfg.DATASETS.TRAIN == ("user_coco",)
    with pytest.raises(SystemExit):
        parser.parse_args(["--register-voc", "broken"])
    assert "NAME=DIR:SPLIT[:YEAR]" in capsys.readouterr().err


# The registered tasks' detectron2 runner in this process (train_net.run_detection), as the suite calls it.


def run_detection(task, weights, data_root, output_dir, **options):
    run = TaskRun(weights=weights, data_root=Path(data_root), output_dir=Path(output_dir), processes=1, **options)
    return run_task(get_task(task), run, "detectron2")


RUN_OVERRIDES = ["SOLVER.MAX_ITER", "2", "TEST.PRECISE_BN.NUM_ITER", "1", "INPUT.MIN_SIZE_TEST", "96",
                 "MODEL.RPN.POST_NMS_TOPK_TEST", "10", "TEST.DETECTIONS_PER_IMAGE", "10"]


def test_run_detection_resnet18_demo_path(tmp_path, demo_root):
    """The demo pipeline: an exported resnet18.pth on the suite's VOC C4 instant config runs as R18-FPN."""
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pth"
    torch.save(build_backbone("resnet18").state_dict(), weights)
    result = run_detection("voc0712_detection", str(weights), str(demo_root / "VOCdevkit"), str(tmp_path / "out"),
                           overrides=RUN_OVERRIDES, seed=4, arch="resnet18",
                           config_file=str(VOC_INSTANT))
    assert read_result(tmp_path / "out" / "results.json") == result
    assert (result.task, result.dataset, result.split, result.engine, result.seed) == (
        "voc0712_detection", "voc2007", "test", "detectron2", 4)
    check_ap_metrics(result.metrics, ["AP", "AP50", "AP75"])
    assert len(result.per_class["ap50"]) == 20
    assert (result.weights, result.weights_sha256) == (str(weights), file_sha256(weights))
    assert [point[0] for point in result.curves["loss"]] == [1.0]
    model = result.config["MODEL"]
    assert (model["RESNETS"]["DEPTH"], model["RESNETS"]["RES2_OUT_CHANNELS"]) == (18, 64)
    assert model["BACKBONE"]["NAME"] == "build_resnet_fpn_backbone" and model["MASK_ON"] is False
    assert model["ROI_HEADS"]["NUM_CLASSES"] == 20  # the VOC classes, not the FPN instant config's 5 COCO ones
    assert model["WEIGHTS"] == str(tmp_path / "out" / "resnet18_detectron2.pkl")
    assert [Path(name.partition("@")[2]) for name in result.config["DATASETS"]["TRAIN"]] == \
        [(demo_root / "VOCdevkit").resolve()] * 2


def test_run_detection_coco_box_only_from_random_weights(tmp_path, demo_root):
    result = run_detection("coco_detection", None, str(demo_root / "coco"), str(tmp_path),
                           overrides=[*RUN_OVERRIDES, "SOLVER.MAX_ITER", "1"],
                           config_file=str(QUICK / "coco_mask_rcnn_R_50_C4_instant_test.yaml"))
    assert (result.task, result.dataset, result.split) == ("coco_detection", "coco2017", "val")
    check_ap_metrics(result.metrics, ["box_AP", "box_AP50", "box_AP75"])
    assert (result.weights, result.weights_sha256) == ("random-init", None)
    assert result.config["MODEL"]["WEIGHTS"] == "" and result.config["MODEL"]["MASK_ON"] is False
    assert result.config["MODEL"]["RESNETS"]["DEPTH"] == 50


def test_run_detection_refusals_before_training(tmp_path, demo_root, weights):
    with pytest.raises(train_net.SetupError, match=r"needs --data-root to be a VOCdevkit folder"):
        run_detection("voc0712_detection", str(weights), str(demo_root / "VOCdevkit" / "VOC2007"), str(tmp_path))
    (tmp_path / "VOCdevkit").mkdir()
    (tmp_path / "VOCdevkit" / "VOC2007").symlink_to(demo_root / "VOCdevkit" / "VOC2007")
    with pytest.raises(train_net.SetupError, match=r"missing .*VOCdevkit/VOC2012/Annotations"):
        run_detection("voc0712_detection", str(weights), str(tmp_path / "VOCdevkit"), str(tmp_path))
    with pytest.raises(train_net.SetupError, match="KEY VALUE"):
        run_detection("coco_detection", str(weights), str(demo_root / "coco"), str(tmp_path),
                      overrides=["SOLVER.MAX_ITER"])
    with pytest.raises(UnsupportedBackboneError, match="FPN"):
        run_detection("voc0712_detection", str(weights), str(demo_root / "VOCdevkit"), str(tmp_path),
                      arch="resnet34")
    with pytest.raises(train_net.SetupError, match="MODEL.MASK_ON"):
        run_detection("coco_detection", None, str(demo_root / "coco"), str(tmp_path),
                      config_file=str(QUICK / "coco_mask_rcnn_R_50_C4_instant_test.yaml"),
                      overrides=["MODEL.MASK_ON", "True"])
    assert not (tmp_path / "model_final.pth").exists()
