"""The ``tools/convert_to_d2.py`` command line: run as a script, its summary and its exit status."""

import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "tools" / "convert_to_d2.py"


def run_script(*args):
    # Without PYTHONPATH: the script itself must find the package from a plain clone.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory):
    """The official release's ``checkpoint.pth`` layout, with a projector and optimizer state."""
    backbone = {f"module.backbone.{key}": value for key, value in torchvision.models.resnet50().state_dict().items()
                if not key.startswith("fc.")}
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pth"
    torch.save({"epoch": 1000, "model": {**backbone, "module.projector.0.weight": torch.zeros(4, 2048),
                                         "module.bn.running_mean": torch.zeros(4)},
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.2}]}}, path)
    return path


def test_script_converts_and_summarises(tmp_path, official_checkpoint):
    result = run_script(official_checkpoint, tmp_path / "r50.pkl", "--detectron2-check", "no")
    assert result.returncode == 0, result.stderr
    assert "ddp-backbone" in result.stdout and "318 tensors" in result.stdout
    with open(tmp_path / "r50.pkl", "rb") as handle:
        data = pickle.load(handle)
    assert data["matching_heuristics"] is True
    assert not any("projector" in key or key.startswith("bn.") for key in data["model"])


def load_cli():
    spec = importlib.util.spec_from_file_location("convert_to_d2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_refuses_incomplete_checkpoint_with_status_1(tmp_path, capsys):
    state = torchvision.models.resnet50().state_dict()
    del state["layer2.1.bn1.running_var"]
    torch.save(state, tmp_path / "broken.pth")
    # In process (the script's exit status is main's return value; the subprocess test above runs the script).
    assert load_cli().main([str(tmp_path / "broken.pth"), str(tmp_path / "out.pkl"), "--detectron2-check", "no"]) == 2
    error = capsys.readouterr().err
    assert "error" in error and "layer2.1.bn1.running_var" in error
    assert not (tmp_path / "out.pkl").exists()


def test_cli_refuses_missing_input_and_wrong_suffix(tmp_path, capsys, official_checkpoint):
    cli = load_cli()
    assert cli.main([str(tmp_path / "absent.pth"), str(tmp_path / "out.pkl")]) == 2
    error = capsys.readouterr().err
    assert "absent.pth" in error and "not found" in error
    assert cli.main([str(official_checkpoint), str(tmp_path / "out.pth"), "--detectron2-check", "no"]) == 2
    assert ".pkl" in capsys.readouterr().err and not (tmp_path / "out.pth").exists()


def test_cli_converts_a_resnet18_with_arch(tmp_path, capsys):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    cli = load_cli()
    assert cli.main([str(tmp_path / "resnet18.pth"), str(tmp_path / "r18.pkl"), "--arch", "resnet18",
                     "--detectron2-check", "no"]) == 0
    output = capsys.readouterr().out
    assert "arch: resnet18" in output and "120 tensors" in output  # 6 stem + 8 blocks x 12 + 3 shortcuts x 6
    # Without --arch the file is checked as the default resnet50, and refused.
    assert cli.main([str(tmp_path / "resnet18.pth"), str(tmp_path / "r50.pkl"), "--detectron2-check", "no"]) == 2
    assert "resnet50" in capsys.readouterr().err and not (tmp_path / "r50.pkl").exists()
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path / "resnet18.pth"), str(tmp_path / "x.pkl"), "--arch", "vgg16"])
    assert "invalid choice: 'vgg16'" in capsys.readouterr().err
