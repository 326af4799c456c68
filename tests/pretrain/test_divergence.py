"""A diverged state is never saved; checkpoints keep a previous generation; disk-full and bad output folders
are one-line errors; two runs never share an output folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.checkpoint import previous_generation
from pretrain.__main__ import main
from pretrain.train import pretrain

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = str(REPO / "configs" / "pretrain" / "demo.yaml")


def tiny_arguments(data_root: Path, output: Path) -> list[str]:
    """``python -m pretrain demo.yaml`` overrides for ResNet-18 at 32 px on 12 images: 3 steps per epoch."""
    return [DEMO_CONFIG, f"output_dir={output}", f"data.root={data_root}", "epochs=2", "batch_size=4",
            "optim.warmup_epochs=1", "data.image_size=32", "data.workers=0", "model.projector=64-64",
            "log_every=1", "progress_bar=false", "tensorboard=false", "knn.every_epochs=0"]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def largest_weight(checkpoint: dict) -> float:
    return max(tensor.abs().max().item() for tensor in checkpoint["model"].values() if tensor.is_floating_point())


def test_exploding_learning_rate_never_overwrites_the_last_good_checkpoint(image_folder, tmp_path, capsys, caplog):
    output = tmp_path / "run"
    arguments = tiny_arguments(image_folder, output)
    assert main([*arguments, "stop_after_steps=2"]) == 75
    good = load(output / "checkpoint.pth")
    assert good["step"] == 2
    capsys.readouterr()
    # The issue's reproduction: step 3's loss is finite (computed before the update), its weights are not.
    for _attempt in range(2):  # and a rerun with the same LR does not make it worse
        assert main([*arguments, "optim.lr_weights=1e30", "checkpoint_every_steps=1"]) == 3
        error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1
        assert "step 3: the weights exploded (largest |value|" in error_lines[0]
        assert f"{output / 'checkpoint.pth'} (step 2) is the last good checkpoint" in error_lines[0]
        assert "Lower optim.lr_weights" in error_lines[0]
        on_disk = load(output / "checkpoint.pth")
        assert on_disk["step"] == 2 and largest_weight(on_disk) == largest_weight(good) < 1e3
        assert all(torch.equal(on_disk["model"][key], good["model"][key]) for key in good["model"])
    caplog.clear()
    with caplog.at_level("INFO"):
        assert main(arguments) == 0  # sane LR: resumes from step 2 and finishes
    assert any(record.message.startswith(f"resuming from {output / 'checkpoint.pth'} at step 2")
               for record in caplog.records)
    assert load(output / "checkpoint.pth")["step"] == 6


def test_poisoned_newest_generation_is_skipped_on_resume(image_folder, tmp_path, tiny_config):
    config = tiny_config(image_folder, tmp_path / "run", checkpoint_every_steps=1, log_every=100)
    assert pretrain(config) == "completed"
    checkpoint = load(tmp_path / "run" / "checkpoint.pth")
    checkpoint["model"]["backbone.conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(checkpoint, tmp_path / "run" / "checkpoint.pth")
    config.epochs = 3
    # The newest generation is poisoned (as an older version could save it): resume uses the previous one.
    assert pretrain(config) == "completed"
    assert load(tmp_path / "run" / "checkpoint.pth")["step"] == 9


def test_corrupt_newest_generation_resumes_from_the_previous(image_folder, tmp_path, tiny_config, caplog):
    output = tmp_path / "run"
    config = tiny_config(image_folder, output, checkpoint_every_steps=1, stop_after_steps=4)
    assert pretrain(config) == "preempted"
    assert (load(output / "checkpoint.pth")["step"], load(previous_generation(output / "checkpoint.pth"))["step"]) \
        == (4, 3)
    (output / "checkpoint.pth").write_bytes(b"PK\x03\x04 truncated")
    config.stop_after_steps = 1
    with caplog.at_level("WARNING"):
        assert pretrain(config) == "preempted"
    fallbacks = [record.message for record in caplog.records if "previous generation" in record.message]
    assert len(fallbacks) == 1 and "checkpoint.prev.pth" in fallbacks[0]
    # The corrupt file was replaced, not rotated into the previous generation: that stays the good step 3.
    assert (load(output / "checkpoint.pth")["step"], load(previous_generation(output / "checkpoint.pth"))["step"]) \
        == (4, 3)
    config.stop_after_steps = None
    assert pretrain(config) == "completed"
    assert load(output / "checkpoint.pth")["step"] == 6


def test_full_disk_is_one_line_and_keeps_the_checkpoint(image_folder, tmp_path, fill_disk, capsys):
    output = tmp_path / "run"
    arguments = tiny_arguments(image_folder, output)
    assert main([*arguments, "stop_after_steps=2"]) == 75
    before = (output / "checkpoint.pth").read_bytes()
    fill_disk()
    capsys.readouterr()
    assert main([*arguments, "checkpoint_every_steps=1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: disk full while writing ") and "bytes free" in error
    assert (output / "checkpoint.pth").read_bytes() == before
    assert not [path for path in output.iterdir() if path.name.endswith(".tmp")]


@pytest.mark.parametrize("make_output, fragment", [
    (lambda tmp: (tmp / "a_file").write_text("x") and tmp / "a_file", "it exists and is not a folder"),
    (lambda tmp: Path("/proc/barlowtwins"), "/proc/barlowtwins"),
])
def test_unusable_output_dir_is_one_line(image_folder, tmp_path, capsys, make_output, fragment):
    assert main(tiny_arguments(image_folder, make_output(tmp_path))) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "as the pretraining output folder" in error[0] and fragment in error[0]


def test_unknown_arch_lists_the_valid_ones(tmp_path, capsys):
    assert main([DEMO_CONFIG, "model.arch=resnet9000"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "config key 'model.arch' has value 'resnet9000', expected one of resnet18, resnet34, resnet50" in error[0]
    assert "(override 'model.arch=resnet9000')" in error[0]


def test_documented_weight_decay_override(tmp_path, capsys):
    from core.config import load_config
    from pretrain.pretrain_config import PretrainConfig

    assert load_config(PretrainConfig, DEMO_CONFIG, ["optim.weight_decay=1e-6"]).optim.weight_decay == 1e-6


def test_second_run_on_a_live_output_dir_refuses(image_folder, tmp_path):
    """A run holding the folder (another process) makes a second run with another seed exit 2 at once."""
    output = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from core.lock import exclusive_output\n"
         "with exclusive_output(sys.argv[1], 'pretraining'):\n    print('locked', flush=True); time.sleep(60)",
         str(output)], stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run([sys.executable, "-m", "pretrain", *tiny_arguments(image_folder, output), "seed=1"],
                                capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                                timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"pid {holder.pid}," in errors[0] and "in use by another pretraining run" in errors[0]
    assert sorted(path.name for path in output.iterdir()) == [".lock"]  # nothing written by the refused run
