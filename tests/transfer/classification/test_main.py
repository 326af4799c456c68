"""The ``python -m transfer.classification`` command line: help, argument errors (end-to-end runs: test_tasks.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from transfer.classification.__main__ import main

REPO = Path(__file__).resolve().parents[3]
TASKS = ["coco14_svm", "imagenet_linear", "imagenet_semisup_10pct", "imagenet_semisup_1pct", "inat18_linear", "knn",
         "places205_linear", "places365_linear", "voc07_lowshot_svm", "voc07_svm"]


def test_module_help_lists_every_task():
    completed = subprocess.run([sys.executable, "-m", "transfer.classification", "--help"], cwd=REPO, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "{" + ",".join(TASKS) + "}" in completed.stdout
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
