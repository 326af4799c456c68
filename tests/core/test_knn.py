"""Weighted kNN against a hand-computed vote."""

import math

import torch

from core.knn import knn_predict, knn_top1


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
