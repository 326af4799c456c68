"""Every classification task end to end on generated demo data (tiny resnet18, 64 px), plus the CLI."""

import math
from pathlib import Path

import pytest
import torch

from core.backbone import build_backbone
from transfer.classification.__main__ import main as classify_main
from core.results import read_result
from transfer.classification.tasks import CLASSIFICATION_TASKS

REPO = Path(__file__).resolve().parents[3]
FEATURES = ["features.image_size=64", "features.batch_size=8", "features.num_workers=0", "features.chunk_batches=1"]
LINEAR = ["epochs=1", "image_size=64", "batch_size=8", "num_workers=0"]


@pytest.fixture(scope="module")
def demo(small_demo_data):
    return small_demo_data


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(build_backbone("resnet18").state_dict(), path)
    return path


TASKS = {
    "voc07_svm": ("VOCdevkit/VOC2007", FEATURES + ["n_jobs=1", "costs=[0.1,1.0]"], {"mAP"}),
    "coco14_svm": ("coco", FEATURES + ["n_jobs=1", "costs=[0.1,1.0]", "folds=2"], {"mAP"}),
    "voc07_lowshot_svm": ("VOCdevkit/VOC2007", FEATURES + ["n_jobs=1", "k_values=[1,2]", "num_draws=2", "costs=[1.0]"],
                          {"mAP@k1", "mAP@k1_std", "mAP@k2", "mAP@k2_std"}),
    "knn": ("imagefolder", FEATURES + ["dataset=imagefolder"], {"top1"}),
    "places205_linear": ("places205", LINEAR, {"top1", "top5"}),
    "places365_linear": ("places365", LINEAR + ["mode=features"] + FEATURES, {"top1", "top5"}),
    "inat18_linear": ("inat2018", LINEAR + ["mode=features"] + FEATURES, {"top1", "top5"}),
    "imagenet_linear": ("imagenet", LINEAR, {"top1", "top5"}),
    "imagenet_semisup_1pct": ("imagenet", LINEAR, {"top1", "top5"}),
    "imagenet_semisup_10pct": ("imagenet", LINEAR + ["mode=images"], {"top1", "top5"}),
}


def test_registry_covers_the_contract():
    assert set(CLASSIFICATION_TASKS) == set(TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_end_to_end(task, demo, weights, tmp_path):
    root, overrides, metric_keys = TASKS[task]
    returned = CLASSIFICATION_TASKS[task](str(weights), str(demo / root), str(tmp_path), arch="resnet18",
                                          overrides=overrides)
    result = read_result(tmp_path / "results.json")
    assert result == returned
    assert result.task == task and metric_keys <= set(result.metrics)
    assert all(math.isfinite(value) and 0 <= value <= 100 for key, value in result.metrics.items()
               if not key.endswith("_std"))
    assert result.weights_sha256 and result.wall_time_s > 0 and result.config["arch"] == "resnet18"
    if task == "voc07_svm":
        assert result.dataset == "voc2007" and result.split == "test"
        assert set(result.per_class["ap"]) == set(result.per_class["cost"]) and len(result.per_class["ap"]) == 5
        assert result.metrics["mAP"] == pytest.approx(sum(result.per_class["ap"].values()) / 5)


def test_linear_training_resumes_from_its_checkpoint(demo, weights, tmp_path):
    run = CLASSIFICATION_TASKS["places205_linear"]
    run(str(weights), str(demo / "places205"), str(tmp_path), arch="resnet18", overrides=LINEAR)
    assert (tmp_path / "checkpoint.pth").is_file()
    result = run(str(weights), str(demo / "places205"), str(tmp_path), arch="resnet18",
                 overrides=[*LINEAR, "epochs=2"])
    assert [epoch for epoch, _ in result.curves["top1"]] == [1, 2]


def test_random_init_baseline(demo, tmp_path):
    result = CLASSIFICATION_TASKS["knn"](None, str(demo / "imagefolder"), str(tmp_path), arch="resnet18",
                                         random_init=True, overrides=FEATURES + ["dataset=imagefolder"])
    assert result.weights == "random-init" and result.weights_sha256 is None


def test_keyword_overrides_and_unknown_keys(demo, weights, tmp_path):
    result = CLASSIFICATION_TASKS["knn"](str(weights), str(demo / "imagefolder"), str(tmp_path), arch="resnet18",
                                         overrides=FEATURES, dataset="imagefolder", k=3)
    assert result.config["k"] == 3
    with pytest.raises(ValueError, match="unknown config key 'epochz'"):
        CLASSIFICATION_TASKS["places205_linear"](str(weights), str(demo / "places205"), str(tmp_path),
                                                 arch="resnet18", overrides=["epochz=1"])


def test_cli_reports_bad_inputs(demo, weights, tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    state = build_backbone("resnet18").state_dict()
    state["fc_typo.weight"] = torch.zeros(1)
    torch.save(state, bad)
    code = classify_main(["knn", "--weights", str(bad), "--arch", "resnet18", "--data-root",
                          str(demo / "imagefolder"), "--output", str(tmp_path / "o"), "dataset=imagefolder"])
    assert code == 2 and "fc_typo.weight" in capsys.readouterr().err
    code = classify_main(["voc07_svm", "--weights", str(weights), "--arch", "resnet18", "--data-root",
                          str(tmp_path / "missing"), "--output", str(tmp_path / "o")])
    assert code == 2 and str(tmp_path / "missing") in capsys.readouterr().err


def test_cli_runs_a_task(demo, weights, tmp_path, capsys):
    code = classify_main(["knn", "--weights", str(weights), "--arch", "resnet18", "--data-root",
                          str(demo / "imagefolder"), "--output", str(tmp_path), "dataset=imagefolder", *FEATURES])
    assert code == 0 and '"top1"' in capsys.readouterr().out
    assert read_result(tmp_path / "results.json").metrics["top1"] >= 0
