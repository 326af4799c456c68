"""Every classification task end to end on generated demo data (tiny resnet18, 64 px), plus the CLI."""

import logging
import math
import shutil
from pathlib import Path

import pytest
import torch

from core.backbone import build_backbone
from transfer.catalog import DatasetError
from core.results import read_result
from transfer.classification.__main__ import classification_tasks
from transfer.classification.__main__ import main as classify_main
from transfer.registry import TaskRun, get_task, run_task

REPO = Path(__file__).resolve().parents[3]
# 64 px images: global-average-pooled res5 (the protocol's 8192-d res5_vissl8k needs 224 px).
FEATURES = ["features.layer=res5", "features.image_size=64", "features.batch_size=8", "features.num_workers=0",
            "features.chunk_batches=1"]
LINEAR = ["epochs=1", "image_size=64", "batch_size=8", "num_workers=0", "features.layer=res5"]
SMALL_IMAGE_DATA = {"cifar10": "cifar10/cifar-10-batches-py", "cifar100": "cifar100/cifar-100-python",
                    "stl10": "stl10/stl10_binary"}
SMALL_FEATURES = ["features.batch_size=8", "features.num_workers=0", "features.chunk_batches=1"]
SMALL_LINEAR = ["epochs=1", "batch_size=8", "num_workers=0"]


def run(task, weights, data_root, output_dir, overrides=(), **options):
    """One run of a registered task on a resnet18 (``weights`` None: the random-init trunk)."""
    return run_task(get_task(task), TaskRun(weights=weights and str(weights), data_root=Path(data_root),
                                            output_dir=Path(output_dir), arch="resnet18",
                                            overrides=tuple(overrides), **options))


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
    # The small-image tasks at their own sizes (32 / 96 px); k=200 is capped at the 20 training images.
    **{f"{name}_knn": (folder, SMALL_FEATURES, {"top1"}) for name, folder in SMALL_IMAGE_DATA.items()},
    **{f"{name}_linear": (folder, SMALL_LINEAR, {"top1", "top5"}) for name, folder in SMALL_IMAGE_DATA.items()},
}


def test_every_classification_task_is_exercised():
    assert set(classification_tasks()) == set(TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_end_to_end(task, demo, weights, tmp_path):
    root, overrides, metric_keys = TASKS[task]
    returned = run(task, weights, demo / root, tmp_path, overrides)
    result = read_result(tmp_path / "results.json")
    assert result == returned
    assert result.task == task and metric_keys <= set(result.metrics)
    assert all(math.isfinite(value) and 0 <= value <= 100 for key, value in result.metrics.items()
               if not key.endswith("_std"))
    assert result.weights_sha256 and result.wall_time_s > 0 and result.config["arch"] == "resnet18"
    assert result.protocol["arch"] == "resnet18" and result.protocol["processes"] == 1 and not result.baseline
    if task == "voc07_svm":
        assert result.dataset == "voc2007" and result.split == "test"
        assert set(result.per_class["ap"]) == set(result.per_class["cost"]) and len(result.per_class["ap"]) == 5
        assert result.metrics["mAP"] == pytest.approx(sum(result.per_class["ap"].values()) / 5)


def test_linear_training_resumes_from_its_checkpoint(demo, weights, tmp_path):
    run("places205_linear", weights, demo / "places205", tmp_path, LINEAR)
    assert (tmp_path / "checkpoint.pth").is_file()
    result = run("places205_linear", weights, demo / "places205", tmp_path, [*LINEAR, "epochs=2"])
    assert [epoch for epoch, _ in result.curves["top1"]] == [1, 2]


def test_random_init_is_the_baseline(demo, tmp_path):
    result = run("knn", None, demo / "imagefolder", tmp_path, FEATURES + ["dataset=imagefolder"])
    assert result.weights == "random-init" and result.weights_sha256 is None and result.baseline


def test_seed_cache_folder_and_unknown_keys(demo, weights, tmp_path):
    result = run("places205_linear", weights, demo / "places205", tmp_path / "a", LINEAR, seed=3)
    assert result.seed == 3
    run("knn", weights, demo / "imagefolder", tmp_path / "k", FEATURES + ["dataset=imagefolder"],
        cache_dir=tmp_path / "cache")
    assert any((tmp_path / "cache").iterdir()) and not (tmp_path / "k" / "feature_cache").exists()
    assert result.protocol["total_batch"] == 8 and result.protocol["base_lr"] == pytest.approx(0.01 * 8 / 256)
    with pytest.raises(ValueError, match="unknown config key 'epochz'"):
        run("places205_linear", weights, demo / "places205", tmp_path / "b", ["epochz=1"])


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
        knn = run("knn", weights, root, tmp_path / "knn",
                  [*FEATURES, "dataset=imagefolder", "features.skip_unreadable=true"])
        linear = run("places205_linear", weights, root, tmp_path / "linear",
                     [*LINEAR, "epochs=2", "dataset=imagefolder", "features.skip_unreadable=true"])
    for result in (knn, linear):
        assert result.config["skipped_unreadable_images"] == 1
        assert result.config["skipped_unreadable_paths"] == [str(broken)]
    warnings = [record for record in caplog.records if str(broken) in record.getMessage()]
    assert len(warnings) == 2  # once per task, though the linear run met it in each of its 2 epochs
    clean = run("knn", weights, demo / "imagefolder", tmp_path / "clean", [*FEATURES, "dataset=imagefolder"])
    assert clean.config["skipped_unreadable_images"] == 0 and "skipped_unreadable_paths" not in clean.config
    # The feature cache remembers the skipped image: reusing it without skip_unreadable is the same error.
    with pytest.raises(DatasetError, match=f"holds 1 unreadable image\\(s\\), e.g. {broken}"):
        run("knn", weights, root, tmp_path / "knn", [*FEATURES, "dataset=imagefolder"])


def test_batch_larger_than_the_training_set(demo, weights, tmp_path, caplog):
    with pytest.raises(ValueError, match=r"batch_size 64 exceeds the 20 training images \(train\), but the LR is "
                                         r"scaled by batch_size/256"):
        run("places205_linear", weights, demo / "places205", tmp_path / "a", [*LINEAR, "batch_size=64"])
    assert not (tmp_path / "a" / "checkpoint.pth").exists()
    # Unscaled LR (the semi-supervised protocols): full-batch steps on a small subset are allowed, with a warning.
    with caplog.at_level(logging.WARNING):
        result = run("imagenet_semisup_1pct", weights, demo / "imagenet", tmp_path / "b", [*LINEAR, "batch_size=64"])
    assert "batch_size 64 exceeds the 5 training images" in caplog.text and len(result.curves["loss"]) == 1
