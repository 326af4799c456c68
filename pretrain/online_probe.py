"""Online linear probe: a linear classifier on the detached backbone features of the first view, trained
inside the pretraining steps with its own optimizer (as solo-learn and lightly do), evaluated each epoch.

It never changes what the backbone learns (its input is detached), costs one small matmul per step (see
``tools/bench_pretrain.py --probe``), and tells a user with labelled data whether pretraining is working
long before a full linear evaluation. ``OnlineProbe`` is both a step hook (``after_step``) and an epoch
callback (returns ``{"probe_top1": ...}`` on the held-out split); its head and optimizer state travel in
the pretraining checkpoint, so a resumed run continues it exactly.

Labelled data: the array layouts (CIFAR, STL-10: labels from the files, held-out = the test split) and
ImageFolder trees (class folders; held-out = ``probe.val_root``, default the sibling ``val`` folder).
Images without a label (STL-10's unlabeled split: -1) are left out of the probe's loss.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

from core.backbone import backbone_width
from core.image_arrays import ImageArray, find_array_dataset, load_array_split
from pretrain.data import list_images
from pretrain.knn_monitor import evaluation_transform
from pretrain.pretrain_config import PretrainConfig, ProbeConfig

logger = logging.getLogger(__name__)
IGNORE_LABEL = -1


class _HeldOut(Dataset):
    """(evaluation-transformed image, label) of an ``ImageArray`` or an ``ImageFolder``."""

    def __init__(self, images: ImageArray | ImageFolder, image_size: int) -> None:
        self.images = images
        self.transform = evaluation_transform(image_size)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if isinstance(self.images, ImageArray):
            return self.transform(self.images[index]), int(self.images.labels[index])
        image, label = self.images[index]
        return self.transform(image), label


def training_labels(root: str, layout: str, paths: Sequence) -> np.ndarray | None:
    """One label per training image (-1: unlabelled), or None when the layout carries no labels."""
    if isinstance(paths, ImageArray):
        return paths.labels if (paths.labels >= 0).any() else None
    if layout == "imagefolder":
        return np.asarray(ImageFolder(root, allow_empty=True).targets, dtype=np.int64)
    return None


def heldout_split(root: str, config: ProbeConfig, image_size: int) -> Dataset | None:
    """The probe's held-out images: the array data set's test split, or an ImageFolder (``val_root``)."""
    if find_array_dataset(root) is not None:
        return _HeldOut(load_array_split(root, find_array_dataset(root)[0].heldout_split), image_size)
    val_root = Path(config.val_root) if config.val_root else Path(root).parent / "val"
    if not val_root.is_dir():
        return None
    return _HeldOut(ImageFolder(str(val_root)), image_size)


def class_count(labels: np.ndarray, heldout: Dataset) -> int:
    held_labels = heldout.images.labels if isinstance(heldout.images, ImageArray) else heldout.images.targets
    return int(max(labels.max(), np.max(held_labels))) + 1


class OnlineProbe:
    """Linear head + SGD on detached features; see the module docstring."""

    def __init__(self, width: int, num_classes: int, heldout: Dataset, config: ProbeConfig, labels: np.ndarray,
                 seed: int = 0) -> None:
        self.labels = labels  # of the training images, in the training data's order
        with torch.random.fork_rng(devices=[]):  # leaves the training run's random stream untouched
            torch.manual_seed(seed)
            self.head = nn.Linear(width, num_classes)
        self.config = config
        self.heldout = heldout
        self.optimizer = torch.optim.SGD(self.head.parameters(), lr=config.lr, momentum=0.9)
        self.loss = torch.zeros(())

    def bind(self, device: torch.device) -> None:
        """Moves the head to the training device (before any state is loaded or step taken)."""
        self.head.to(device)
        self.loss = self.loss.to(device)

    def after_step(self, features: Tensor, labels: Tensor) -> None:
        """One SGD step of the head on this step's first-view features (labels -1 are ignored)."""
        logits = self.head(features.float())
        loss = nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE_LABEL, reduction="sum")
        count = (labels != IGNORE_LABEL).sum().clamp_min(1)
        self.optimizer.zero_grad(set_to_none=True)
        (loss / count).backward()
        if dist.is_available() and dist.is_initialized():  # one head on every process
            for param in self.head.parameters():  # SUM then divide: gloo (CPU) has no AVG
                dist.all_reduce(param.grad)
                param.grad.div_(dist.get_world_size())
        self.optimizer.step()
        self.loss = (loss / count).detach()

    @torch.no_grad()
    def __call__(self, backbone: nn.Module, epoch: int, device: torch.device) -> dict[str, float]:
        """Epoch-end callback: held-out top-1 (percent) every ``every_epochs`` epochs."""
        if (epoch + 1) % self.config.every_epochs:
            return {}
        correct = total = 0
        for images, labels in DataLoader(self.heldout, batch_size=self.config.batch_size):
            predictions = self.head(backbone(images.to(device)).flatten(1).float()).argmax(1).cpu()
            correct += int((predictions == labels).sum())
            total += len(labels)
        return {"probe_top1": 100.0 * correct / total}

    def state_dict(self) -> dict[str, Any]:
        return {"head": self.head.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])


def build_online_probe(config: PretrainConfig) -> OnlineProbe | None:
    """The probe for ``config``'s data, or None (probe off, no labels, or no held-out split)."""
    if not config.probe.enabled:
        return None
    paths, layout = list_images(config.data.root)
    labels = training_labels(config.data.root, layout, paths)
    heldout = heldout_split(config.data.root, config.probe, config.data.image_size) if labels is not None else None
    if heldout is None:
        logger.info("online probe off: %s has no labels or no held-out split (set probe.val_root)",
                    config.data.root)
        return None
    return OnlineProbe(backbone_width(config.model.arch), class_count(labels, heldout), heldout, config.probe,
                       labels, seed=config.seed)
