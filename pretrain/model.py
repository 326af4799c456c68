"""The Barlow Twins network: a torchvision ResNet backbone, the MLP projector and the loss head.

Module and parameter names equal the official facebookresearch/barlowtwins ``BarlowTwins`` (``backbone.*``,
``projector.<i>.*``, ``bn.*``), so the official ``checkpoint.pth`` model state (``module.`` stripped) loads
with ``load_state_dict(strict=True)``.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from core.backbone import resnet_trunk
from core.distributed import world_size
from pretrain.loss import barlow_twins_loss, batch_standardize, cross_correlation

def parse_projector(projector: str) -> list[int]:
    """Layer widths of a projector spec such as ``"8192-8192-8192"``."""
    try:
        widths = [int(part) for part in projector.split("-")]
    except ValueError:
        widths = []
    if not widths or any(width < 1 for width in widths):
        raise ValueError(f"projector must be positive integers joined by '-', e.g. '8192-8192-8192'; got {projector!r}")
    return widths


def build_projector(in_features: int, widths: list[int]) -> nn.Sequential:
    """Linear(no bias)-BatchNorm-ReLU blocks, then a final Linear(no bias), as in the official code."""
    sizes = [in_features, *widths]
    layers: list[nn.Module] = []
    for width_in, width_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(width_in, width_out, bias=False), nn.BatchNorm1d(width_out), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
    return nn.Sequential(*layers)


class BarlowTwins(nn.Module):
    """Backbone + projector whose ``forward(y1, y2)`` returns the Barlow Twins loss of two batches of views.

    ``batch_size`` is the GLOBAL batch size that divides the cross-correlation (as the official
    ``args.batch_size``); by default it is the local batch size times the number of processes.
    """

    def __init__(self, arch: str = "resnet50", projector: str = "8192-8192-8192", lambd: float = 0.0051,
                 batch_size: int | None = None, stem: str = "imagenet", scale_loss: float = 1.0) -> None:
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive or None, got {batch_size}")
        widths = parse_projector(projector)
        self.lambd = lambd
        self.scale_loss = scale_loss
        self.batch_size = batch_size
        self.backbone, in_features = resnet_trunk(arch, stem)
        self.projector = build_projector(in_features, widths)
        # Affine-free normalisation of the embeddings z1 and z2.
        self.bn = nn.BatchNorm1d(widths[-1], affine=False)

    def embed(self, images: Tensor) -> Tensor:
        """Projector output for one batch of views, in float32 (see ``pretrain.loss`` on precision)."""
        return self.projector(self.backbone(images)).float()

    def forward(self, y1: Tensor, y2: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Barlow Twins loss (scalar) of the two augmented views ``y1`` and ``y2`` of one batch.

        ``return_features`` also returns the detached backbone features of ``y1`` (for an online probe,
        which then costs no extra forward pass).
        """
        if y1.shape != y2.shape:
            raise ValueError(f"the two views must have one shape, got {tuple(y1.shape)} and {tuple(y2.shape)}")
        # The views go through the network separately: BatchNorm statistics are per view, as officially.
        features1 = self.backbone(y1)
        z1 = self.projector(features1).float()
        z2 = self.embed(y2)
        global_batch = self.batch_size or y1.shape[0] * world_size()
        with torch.autocast(device_type=z1.device.type, enabled=False):
            correlation = cross_correlation(batch_standardize(z1, self.bn), batch_standardize(z2, self.bn),
                                            global_batch)
            loss = barlow_twins_loss(correlation, self.lambd)
            if self.scale_loss != 1.0:
                loss = loss * self.scale_loss
        return (loss, features1.detach()) if return_features else loss
