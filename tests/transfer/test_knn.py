"""Weighted kNN against a hand-computed vote, and the pretraining monitor entry point."""

import math

import torch
from PIL import Image

from pretrain.model import build_backbone
from transfer.knn import evaluate_knn, knn_predict, knn_top1


def test_weighted_vote_by_hand():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[0.9, 0.1]])
    similarity = torch.nn.functional.normalize(query, dim=1) @ torch.nn.functional.normalize(train, dim=1).T
    weights = (similarity / 0.07).exp()[0]
    # k=3: class 0 gets w0, class 1 gets w1 + w2; here the single close neighbour outweighs the two
    expected = 0 if weights[0] > weights[1] + weights[2] else 1
    assert knn_predict(train, labels, query, 2, k=3, temperature=0.07).item() == expected
    # with a very high temperature the votes are nearly equal, so the majority (class 1) wins
    assert knn_predict(train, labels, query, 2, k=3, temperature=1e6).item() == 1
    assert math.isclose(knn_top1(train, labels, train, labels, k=1), 100.0)


def test_evaluate_knn_restores_training_mode(tmp_path):
    for split in ("train", "val"):
        for label, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
            folder = tmp_path / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(3):
                Image.new("RGB", (40, 40), tuple(max(0, c - 20 * index) for c in colour)).save(folder / f"{index}.jpg")
    backbone = build_backbone("resnet18").train()
    top1 = evaluate_knn(backbone, str(tmp_path / "train"), str(tmp_path / "val"), image_size=32,
                        device=torch.device("cpu"), batch_size=4, k=3)
    assert backbone.training
    assert 0.0 <= top1 <= 100.0
