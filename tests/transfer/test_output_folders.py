"""Every transfer command refuses, in one line and with exit status 2, an output folder that another process
is using or that cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest

from transfer.classification.__main__ import main as classification_main
from transfer.detection.__main__ import main as detection_main
from transfer.detection.torchvision.runner import CONFIG_DIR as DETECTION_CONFIGS
from transfer.suite.__main__ import main as suite_main


def suite(output: Path, data_root: Path, weights: Path) -> int:
    return suite_main([str(weights), "--data-root", str(data_root), "--output", str(output), "--arch", "resnet18",
                       "--tasks", "knn"])


def classification(output: Path, data_root: Path, weights: Path) -> int:
    return classification_main(["knn", "--weights", str(weights), "--arch", "resnet18", "--data-root",
                                str(data_root / "imagenet"), "--output", str(output)])


def detection(output: Path, data_root: Path, weights: Path) -> int:
    return detection_main(["--engine", "torchvision", "--config-file", str(DETECTION_CONFIGS / "voc_instant_test.yaml"),
                           "--weights", str(weights), "--data-root", str(data_root / "VOCdevkit"), "--output-dir",
                           str(output)])


COMMANDS = {"transfer suite": suite, "knn": classification, "detection": detection}


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("what", COMMANDS)
def test_folder_in_use_is_refused(what, tmp_path, hold_output_lock, small_demo_data, capsys):
    weights = tmp_path / "absent.pth"  # never read: the folder is checked first
    holder = hold_output_lock(tmp_path / "out", what)
    capsys.readouterr()
    assert COMMANDS[what](tmp_path / "out", small_demo_data, weights) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{tmp_path / 'out'} is in use by another {what} run" in line and f"pid {holder.pid}," in line


@pytest.mark.parametrize("what", COMMANDS)
@pytest.mark.parametrize("make_output, fragment", [
    (lambda tmp: (tmp / "a_file").write_text("x") and tmp / "a_file", "it exists and is not a folder"),
    (lambda tmp: Path("/proc/barlowtwins-output"), "/proc/barlowtwins-output"),
])
def test_unusable_output_folder_is_one_line(what, make_output, fragment, tmp_path, small_demo_data, capsys):
    assert COMMANDS[what](make_output(tmp_path), small_demo_data, tmp_path / "absent.pth") == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: cannot use") and f"as the {what} output folder" in line and fragment in line
