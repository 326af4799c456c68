"""The pretraining kNN monitor: an epoch-end callback on labelled folders that leaves the backbone's mode alone."""

import torch
from PIL import Image

from core.backbone import build_backbone
from pretrain.knn_monitor import KnnMonitor, evaluate_knn
from pretrain.pretrain_config import KnnConfig


def _folders(root):
    for split in ("train", "val"):
        for label, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(3):
                Image.new("RGB", (40, 40), tuple(max(0, c - 20 * index) for c in colour)).save(folder / f"{index}.jpg")


def test_evaluate_knn_restores_training_mode(tmp_path):
    _folders(tmp_path)
    backbone = build_backbone("resnet18").train()
    top1 = evaluate_knn(backbone, str(tmp_path / "train"), str(tmp_path / "val"), image_size=32,
                        device=torch.device("cpu"), batch_size=4, k=3)
    assert backbone.training
    assert 0.0 <= top1 <= 100.0


def test_monitor_runs_only_every_n_epochs(tmp_path):
    _folders(tmp_path)
    config = KnnConfig(every_epochs=2, train_root=str(tmp_path / "train"), val_root=str(tmp_path / "val"),
                       batch_size=4, k=3)
    monitor = KnnMonitor(config, default_image_size=32)
    backbone = build_backbone("resnet18").eval()
    assert monitor(backbone, 0, torch.device("cpu")) == {}
    assert set(monitor(backbone, 1, torch.device("cpu"))) == {"knn_top1"}
