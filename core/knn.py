"""Weighted k-nearest-neighbour classification on frozen features (DINO's ``eval_knn.py`` vote), shared by the
kNN transfer task and the pretraining monitor.

Cosine similarity between L2-normalised features; the k most similar training images vote for their
class with weight ``exp(similarity / temperature)``; the class with the largest vote wins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def knn_predict(train_features: Tensor, train_labels: Tensor, test_features: Tensor, num_classes: int,
                k: int = 20, temperature: float = 0.07, chunk_size: int = 1024) -> Tensor:
    """Predicted class per test row (weighted kNN), processed in chunks of test rows."""
    if k < 1 or temperature <= 0:
        raise ValueError(f"need k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"train and test features differ in width: "
                         f"{train_features.shape[1]} vs {test_features.shape[1]}")
    train_features = F.normalize(train_features.float(), dim=1)
    train_labels = train_labels.long()
    k = min(k, train_features.shape[0])
    predictions = []
    for start in range(0, test_features.shape[0], chunk_size):
        queries = F.normalize(test_features[start:start + chunk_size].float(), dim=1)
        similarity, neighbours = (queries @ train_features.T).topk(k, dim=1)
        votes = torch.zeros(queries.shape[0], num_classes, device=queries.device)
        votes.scatter_add_(1, train_labels[neighbours], (similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def knn_top1(train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor,
             k: int = 20, temperature: float = 0.07) -> float:
    """Top-1 accuracy (percent) of weighted kNN."""
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    predictions = knn_predict(train_features, train_labels, test_features, num_classes, k, temperature)
    return float((predictions.cpu() == test_labels.cpu().long()).float().mean() * 100.0)
