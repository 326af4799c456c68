"""Two CPU processes on gloo, launched by torchrun exactly as tools/pretrain.sh does on a GPU node."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from pretrain.stats import read_stats

REPO = Path(__file__).resolve().parents[2]


def test_two_process_gloo_training(image_folder, tmp_path):
    output = tmp_path / "run"
    overrides = [f"output_dir={output}", f"data.root={image_folder}", "epochs=2", "optim.warmup_epochs=1",
                 "batch_size=4", "data.image_size=32", "data.workers=0", "model.arch=resnet18",
                 "model.projector=64-64", "log_every=1", "progress_bar=false", "tensorboard=false",
                 "knn.every_epochs=0"]
    environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "pretrain", str(REPO / "configs/pretrain/demo.yaml"), *overrides],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    # 12 images over 2 processes with 2 per process and step: 3 steps per epoch.
    checkpoint = torch.load(output / "checkpoint.pth", map_location="cpu", weights_only=True)
    assert checkpoint["step"] == 6 and checkpoint["steps_per_epoch"] == 3
    assert [record["step"] for record in read_stats(output / "stats.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert all(record["images_per_s"] > 0 for record in read_stats(output / "stats.jsonl"))
    assert "2 process(es)" in completed.stderr
    assert (output / "resnet18.pth").is_file()
