"""The official facebookresearch/barlowtwins ``main.py``, imported from a path the user gives (never copied
into this project), and the pieces of its training loop the benchmark runs: model, LARS, learning-rate
schedule, ``Transform`` DataLoader and the fp16 step.

Two adaptations, both mechanical: the official model hard-codes ResNet-50 (2048 features), so for another
``arch`` its backbone is that torchvision ResNet and the projector's first layer takes its width; its
``Transform`` hard-codes 224 px crops, so for another size both ``RandomResizedCrop`` sizes are set to it.
Its loss all-reduces the cross-correlation, which needs a process group: a one-process group is started.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace

import torch
import torch.distributed as dist
import torchvision
from torch import nn

REQUIRED = ("BarlowTwins", "LARS", "Transform", "adjust_learning_rate")


def load_official(path: Path) -> ModuleType:
    """Imports the official ``main.py`` at ``path`` as a module (its ``main()`` is not run)."""
    if not path.is_file():
        raise SystemExit(f"--official-main {path}: file not found (git show HEAD:main.py of "
                         f"facebookresearch/barlowtwins)")
    spec = importlib.util.spec_from_file_location("barlowtwins_official_main", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [name for name in REQUIRED if not hasattr(module, name)]
    if missing:
        raise SystemExit(f"--official-main {path} lacks {', '.join(missing)}: is it barlowtwins' main.py?")
    return module


def ensure_process_group(device: torch.device) -> None:
    """A one-process group (gloo on CPU, NCCL on GPU) for the official loss's all_reduce."""
    if dist.is_initialized():
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=0, world_size=1)


def official_args(projector: str, batch_size: int, epochs: int = 100) -> SimpleNamespace:
    """The ``args`` the official model and schedule read (their defaults, but projector and batch)."""
    return SimpleNamespace(projector=projector, batch_size=batch_size, lambd=0.0051, epochs=epochs,
                           learning_rate_weights=0.2, learning_rate_biases=0.0048, weight_decay=1e-6)


def official_model(module: ModuleType, arch: str, args: SimpleNamespace) -> nn.Module:
    """The official ``BarlowTwins(args)``, with the ``arch`` backbone (see the module docstring)."""
    if arch == "resnet50":
        return module.BarlowTwins(args)
    constructor = getattr(torchvision.models, arch)
    original = torchvision.models.resnet50
    torchvision.models.resnet50 = constructor
    try:
        model = module.BarlowTwins(args)
    finally:
        torchvision.models.resnet50 = original
    width = constructor().fc.in_features
    first = model.projector[0]
    model.projector[0] = nn.Linear(width, first.out_features, bias=False)
    return model


def official_optimizer(module: ModuleType, model: nn.Module, args: SimpleNamespace) -> torch.optim.Optimizer:
    """LARS over the official two parameter groups (weights; biases and BatchNorm), as its ``main_worker``."""
    weights = [param for param in model.parameters() if param.ndim != 1]
    biases = [param for param in model.parameters() if param.ndim == 1]
    return module.LARS([{"params": weights}, {"params": biases}], lr=0, weight_decay=args.weight_decay,
                       weight_decay_filter=True, lars_adaptation_filter=True)


def official_transform(module: ModuleType, size: int):
    """The official two-view ``Transform``; crops resized to ``size`` instead of 224 when asked."""
    transform = module.Transform()
    if size != 224:
        for compose in (transform.transform, transform.transform_prime):
            compose.transforms[0].size = (size, size)
    return transform


def official_loader(module: ModuleType, train_root: Path, batch: int, workers: int, size: int):
    """The official ``ImageFolder(root, Transform())`` DataLoader (shuffled; pinned memory on GPU)."""
    dataset = torchvision.datasets.ImageFolder(str(train_root), official_transform(module, size))
    return torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, shuffle=True,
                                       pin_memory=torch.cuda.is_available(), drop_last=True,
                                       persistent_workers=workers > 0)


class OfficialStep:
    """One step of the official loop: schedule, zero_grad, fp16 autocast (CUDA only), scaled backward, LARS.

    On a CPU, ``torch.cuda.amp.autocast`` and ``GradScaler`` disable themselves, so the step runs in float32,
    exactly as the official code would there.
    """

    def __init__(self, module: ModuleType, model: nn.Module, optimizer: torch.optim.Optimizer,
                 args: SimpleNamespace, steps_per_epoch: int) -> None:
        self.module, self.model, self.optimizer, self.args = module, model, optimizer, args
        self.steps_per_epoch = steps_per_epoch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.scaler = torch.cuda.amp.GradScaler()

    def __call__(self, y1: torch.Tensor, y2: torch.Tensor, step: int) -> None:
        self.module.adjust_learning_rate(self.args, self.optimizer, range(self.steps_per_epoch), step)
        self.optimizer.zero_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            autocast = torch.cuda.amp.autocast() if y1.is_cuda else contextlib.nullcontext()
            with autocast:
                loss = self.model.forward(y1, y2)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
