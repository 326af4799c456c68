"""The kNN monitor of pretraining: top-1 of the backbone's pooled features on two labelled image folders.

It is handed to ``pretrain.train.pretrain`` as an epoch-end callback, so the training loop knows nothing of
evaluation. Images get the evaluation transform of the transfer tasks (resize to 256/224 of the crop, centre
crop, ImageNet normalisation) and the weighted vote of ``core.knn``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from core.knn import knn_top1
from pretrain.pretrain_config import KnnConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def evaluation_transform(image_size: int) -> transforms.Compose:
    """Resize (shorter side to ``image_size`` x 256/224), centre crop, tensor, ImageNet normalisation."""
    return transforms.Compose([transforms.Resize(round(image_size * 256 / 224)), transforms.CenterCrop(image_size),
                               transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


@torch.no_grad()
def pooled_features(backbone: nn.Module, root: str, image_size: int, device: torch.device,
                    batch_size: int) -> tuple[Tensor, Tensor]:
    """Pooled backbone features and labels of every image of an ImageFolder tree, in memory."""
    dataset = datasets.ImageFolder(root, transform=evaluation_transform(image_size))
    features, labels = [], []
    for images, targets in DataLoader(dataset, batch_size=batch_size):
        features.append(backbone(images.to(device)).flatten(1).float().cpu())
        labels.append(targets)
    return torch.cat(features), torch.cat(labels)


def evaluate_knn(backbone: nn.Module, train_root: str, val_root: str, image_size: int, device: torch.device,
                 batch_size: int = 256, k: int = 20, temperature: float = 0.07) -> float:
    """kNN top-1 (percent) of ``backbone`` on two ImageFolder trees; its train/eval mode is restored after."""
    was_training = backbone.training
    backbone.eval()
    try:
        train_features, train_labels = pooled_features(backbone, train_root, image_size, device, batch_size)
        val_features, val_labels = pooled_features(backbone, val_root, image_size, device, batch_size)
    finally:
        backbone.train(was_training)
    return knn_top1(train_features, train_labels, val_features, val_labels, k, temperature)


class KnnMonitor:
    """Epoch-end callback: every ``config.every_epochs`` epochs, ``{"knn_top1": ...}`` of the backbone."""

    def __init__(self, config: KnnConfig, default_image_size: int) -> None:
        self.config = config
        self.image_size = config.image_size or default_image_size

    def __call__(self, backbone: nn.Module, epoch: int, device: torch.device) -> dict[str, float]:
        if not self.config.every_epochs or (epoch + 1) % self.config.every_epochs:
            return {}
        top1 = evaluate_knn(backbone, self.config.train_root, self.config.val_root, self.image_size, device,
                            self.config.batch_size, self.config.k, self.config.temperature)
        return {"knn_top1": top1}
