"""A plain (non-editable) install works from any folder: the shipped configs and data travel with the packages."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["pretrain/configs/barlowtwins_r50_1000ep.yaml", "transfer/classification/configs/voc07_svm.yaml",
           "transfer/detection/torchvision/configs/voc_instant_test.yaml",
           "transfer/detection/detectron2/configs/quick_schedules/voc0712_faster_rcnn_R_50_C4_instant_test.yaml",
           "transfer/suite/configs/demo.yaml", "transfer/published/barlow_twins_published_results.json"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (without its dependencies) into a folder of its own."""
    root = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "wheel"), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next((root / "wheel").glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert set(SHIPPED) <= names, sorted(set(SHIPPED) - names)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(root / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return root / "site"


def run_cli(installed: Path, cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(installed))  # ahead of the editable checkout
    return subprocess.run([sys.executable, *arguments], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=300)


def test_installed_commands_find_their_configs_from_another_folder(installed, tmp_path):
    located = run_cli(installed, tmp_path, "-c", "import transfer; print(transfer.__file__)")
    assert located.stdout.strip().startswith(str(installed))
    # The README's repository-relative config path resolves to the installed copy.
    pretrain = run_cli(installed, tmp_path, "-m", "pretrain", "configs/pretrain/demo.yaml",
                       f"data.root={tmp_path / 'no_images'}")
    assert pretrain.returncode == 2 and "data folder not found" in pretrain.stderr
    suite = run_cli(installed, tmp_path, "-m", "transfer.suite", "--data-root", str(tmp_path / "absent"),
                    "--output", str(tmp_path / "out"), "--config", "configs/suite/demo.yaml")
    assert suite.returncode == 2 and "data root not found" in suite.stderr
    detection = run_cli(installed, tmp_path, "-m", "transfer.detection", "--engine", "torchvision", "--task",
                        "voc0712_detection", "--data-root", str(tmp_path / "absent"), "--output-dir",
                        str(tmp_path / "det"), "--random-init")
    assert detection.returncode == 2 and str(tmp_path / "absent") in detection.stderr
    for module in ("transfer.classification", "transfer.report"):
        assert run_cli(installed, tmp_path, "-m", module, "--help").returncode == 0, module
