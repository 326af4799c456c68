"""Every classification task end to end on generated demo data (tiny resnet18, 64 px), plus the CLI."""

import logging
import math
import shutil
from pathlib import Path

import pytest
import torch

from core.backbone import build_backbone
from transfer.classification.__main__ import main as classify_main
from transfer.classification.datasets import DatasetError
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


@pytest.fixture
def broken_imagefolder(demo, tmp_path):
    """A copy of the demo ImageFolder (train/val) whose first training image is not an image."""
    root = tmp_path / "broken"
    shutil.copytree(demo / "imagefolder", root)
    broken = sorted((root / "train").rglob("*.jpg"))[0]
    broken.write_bytes(b"not a jpeg")
    return root, broken


def test_unreadable_image_in_a_loader_worker_is_one_line_naming_the_file(broken_imagefolder, weights, tmp_path,
                                                                          capsys):
    root, broken = broken_imagefolder
    code = classify_main(["knn", "--weights", str(weights), "--arch", "resnet18", "--data-root", str(root),
                          "--output", str(tmp_path / "out"), "dataset=imagefolder", *FEATURES,
                          "features.num_workers=2"])
    error = capsys.readouterr().err
    assert code == 2 and "Traceback" not in error
    last = error.strip().splitlines()[-1]
    assert last.startswith("error: imagefolder/train: cannot read image ") and str(broken) in last
    assert "features.skip_unreadable=true" in last


def test_skipped_unreadable_images_are_warned_once_and_recorded(broken_imagefolder, demo, weights, tmp_path, caplog):
    root, broken = broken_imagefolder
    with caplog.at_level(logging.WARNING):
        knn = CLASSIFICATION_TASKS["knn"](str(weights), str(root), str(tmp_path / "knn"), arch="resnet18",
                                          overrides=[*FEATURES, "dataset=imagefolder", "features.skip_unreadable=true"])
        linear = CLASSIFICATION_TASKS["places205_linear"](
            str(weights), str(root), str(tmp_path / "linear"), arch="resnet18",
            overrides=[*LINEAR, "epochs=2", "dataset=imagefolder", "features.skip_unreadable=true"])
    for result in (knn, linear):
        assert result.config["skipped_unreadable_images"] == 1
        assert result.config["skipped_unreadable_paths"] == [str(broken)]
    warnings = [record for record in caplog.records if str(broken) in record.getMessage()]
    assert len(warnings) == 2  # once per task, though the linear run met it in each of its 2 epochs
    clean = CLASSIFICATION_TASKS["knn"](str(weights), str(demo / "imagefolder"), str(tmp_path / "clean"),
                                        arch="resnet18", overrides=[*FEATURES, "dataset=imagefolder"])
    assert clean.config["skipped_unreadable_images"] == 0 and "skipped_unreadable_paths" not in clean.config
    # The feature cache remembers the skipped image: reusing it without skip_unreadable is the same error.
    with pytest.raises(DatasetError, match=f"holds 1 unreadable image\\(s\\), e.g. {broken}"):
        CLASSIFICATION_TASKS["knn"](str(weights), str(root), str(tmp_path / "knn"), arch="resnet18",
                                    overrides=[*FEATURES, "dataset=imagefolder"])


def test_batch_larger_than_the_training_set(demo, weights, tmp_path, caplog):
    places = CLASSIFICATION_TASKS["places205_linear"]
    with pytest.raises(ValueError, match=r"batch_size 64 exceeds the 20 training images \(train\), but the LR is "
                                         r"scaled by batch_size/256"):
        places(str(weights), str(demo / "places205"), str(tmp_path / "a"), arch="resnet18",
               overrides=[*LINEAR, "batch_size=64"])
    assert not (tmp_path / "a" / "checkpoint.pth").exists()
    # Unscaled LR (the semi-supervised protocols): full-batch steps on a small subset are allowed, with a warning.
    with caplog.at_level(logging.WARNING):
        result = CLASSIFICATION_TASKS["imagenet_semisup_1pct"](str(weights), str(demo / "imagenet"),
                                                               str(tmp_path / "b"), arch="resnet18",
                                                               overrides=[*LINEAR, "batch_size=64"])
    assert "batch_size 64 exceeds the 5 training images" in caplog.text and len(result.curves["loss"]) == 1
