"""The ``python -m transfer.classification`` command line: help, argument errors (end-to-end runs: test_tasks.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from transfer.classification.__main__ import main

REPO = Path(__file__).resolve().parents[3]
TASKS = ["cifar100_knn", "cifar100_linear", "cifar10_knn", "cifar10_linear", "coco14_svm", "imagenet_linear",
         "imagenet_semisup_10pct", "imagenet_semisup_1pct", "inat18_linear", "knn", "places205_linear",
         "places365_linear", "stl10_knn", "stl10_linear", "voc07_lowshot_svm", "voc07_svm"]


def test_module_help_lists_every_task():
    completed = subprocess.run([sys.executable, "-m", "transfer.classification", "--help"], cwd=REPO, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "{" + ",".join(TASKS) + "}" in completed.stdout.replace("\n", "").replace(" ", "")
    assert all(option in completed.stdout for option in ("--weights", "--random-init", "--data-root", "--output"))


def test_weights_or_random_init_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["voc07_svm", "--data-root", str(tmp_path), "--output", str(tmp_path / "out")])
    assert raised.value.code == 2 and "give --weights or --random-init" in capsys.readouterr().err


def test_unknown_task_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["voc12_svm", "--random-init", "--data-root", str(tmp_path), "--output", str(tmp_path)])
    assert raised.value.code == 2 and "invalid choice: 'voc12_svm'" in capsys.readouterr().err


def test_weights_and_random_init_together_is_an_error(tmp_path, capsys):
    code = main(["knn", "--weights", str(tmp_path / "w.pth"), "--random-init", "--data-root", str(tmp_path),
                 "--output", str(tmp_path / "out")])
    assert code == 2 and "not both" in capsys.readouterr().err


def test_malformed_override_names_the_key(tmp_path, capsys):
    code = main(["knn", "--random-init", "--data-root", str(tmp_path), "--output", str(tmp_path / "out"), "k=twenty"])
    assert code == 2 and "'k'" in capsys.readouterr().err


@pytest.mark.parametrize("task, override, key", [
    ("knn", "features.batch_size=-4", "features.batch_size"),  # was: 'need at least one array to concatenate'
    ("knn", "features.num_workers=-1", "features.num_workers"),
    ("knn", "features.chunk_batches=0", "features.chunk_batches"),
    ("knn", "features.image_size=16", "features.image_size"),
    ("knn", "features.layer=res3", "features.layer"),
    ("knn", "features.dtype=float64", "features.dtype"),
    ("knn", "k=0", "k"),
    ("knn", "temperature=0", "temperature"),
    ("voc07_svm", "costs=[]", "costs"),
    ("voc07_svm", "costs=[1.0,-0.5]", "costs"),
    ("voc07_svm", "folds=1", "folds"),
    ("coco14_svm", "n_jobs=0", "n_jobs"),
    ("voc07_lowshot_svm", "k_values=[0,1]", "k_values"),
    ("voc07_lowshot_svm", "num_draws=0", "num_draws"),
    ("places205_linear", "epochs=0", "epochs"),
    ("places205_linear", "batch_size=1", "batch_size"),
    ("places205_linear", "lr=0", "lr"),
    ("places205_linear", "momentum=1.5", "momentum"),
    ("places205_linear", "weight_decay=-1e-4", "weight_decay"),
    ("places205_linear", "gamma=0", "gamma"),
    ("places205_linear", "milestones=[8,4]", "milestones"),
    ("places205_linear", "image_size=16", "image_size"),
    ("places205_linear", "test_transform=ten_crop", "test_transform"),
    ("imagenet_linear", "momentum=0", "momentum"),  # official protocol: nesterov=false, so only with nesterov
])
def test_out_of_range_values_name_their_key_in_one_line(task, override, key, tmp_path, capsys):
    overrides = [override, "nesterov=true"] if task == "imagenet_linear" else [override]
    code = main([task, "--random-init", "--data-root", str(tmp_path), "--output", str(tmp_path / "out"), *overrides])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert f"config key '{key}' has value" in error, error
