"""Training-time augmentation of (image, target) pairs; resizing and normalisation happen in the model.

torchvision's ``GeneralizedRCNNTransform`` draws one shortest-edge size per image from
``min_size_train`` (detectron2's ``ResizeShortestEdge`` "choice" sampling), caps the longest edge
and normalises with the configured mean/std, so only the horizontal flip is left to do here.
"""

from __future__ import annotations

import torch


class RandomHorizontalFlip:
    """Flips the image, its boxes and its masks left-right with probability ``probability``."""

    def __init__(self, probability: float = 0.5, generator: torch.Generator | None = None) -> None:
        self.probability = probability
        self.generator = generator

    def __call__(self, image: torch.Tensor, target: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        if torch.rand((), generator=self.generator).item() >= self.probability:
            return image, target
        width = image.shape[-1]
        target = dict(target)
        boxes = target["boxes"].clone()
        boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
        target["boxes"] = boxes
        if "masks" in target:
            target["masks"] = target["masks"].flip(-1)
        return image.flip(-1), target
