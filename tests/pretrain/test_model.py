"""BarlowTwins: official parameter names/shapes, backbone registry, zero-init residuals, forward = formula."""

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from core.backbone import BACKBONES, backbone_width, build_backbone
from pretrain.model import BarlowTwins

EXPECTED_WIDTH = {
    "resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "resnet152": 2048,
    "resnext50_32x4d": 2048, "resnext101_32x8d": 2048, "resnext101_64x4d": 2048,
    "wide_resnet50_2": 2048, "wide_resnet101_2": 2048,
}


def reference_loss(z1, z2, lambd, divisor):
    """Numpy float64: standardise per dimension (biased variance, eps 1e-5), correlate, sum the terms."""
    n1 = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + 1e-5)
    n2 = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + 1e-5)
    c = n1.T @ n2 / divisor
    off = c - np.diag(np.diag(c))
    return ((1 - np.diag(c)) ** 2).sum() + lambd * (off ** 2).sum()


class OfficialBarlowTwins(nn.Module):
    """The official module layout (facebookresearch/barlowtwins main.py), parameterised by arch and projector."""

    def __init__(self, arch, projector, in_features):
        super().__init__()
        self.backbone = getattr(torchvision.models, arch)(zero_init_residual=True)
        self.backbone.fc = nn.Identity()
        sizes = [in_features] + [int(width) for width in projector.split("-")]
        layers = []
        for index in range(len(sizes) - 2):
            layers += [nn.Linear(sizes[index], sizes[index + 1], bias=False), nn.BatchNorm1d(sizes[index + 1]),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
        self.projector = nn.Sequential(*layers)
        self.bn = nn.BatchNorm1d(sizes[-1], affine=False)


def test_registry_is_the_torchvision_resnet_family_with_its_feature_widths():
    assert sorted(BACKBONES) == sorted(EXPECTED_WIDTH)
    for arch, width in EXPECTED_WIDTH.items():
        assert backbone_width(arch) == width, arch
    for arch in ("resnet18", "resnext50_32x4d"):
        with torch.device("meta"):
            model = BarlowTwins(arch, projector="8-4")
        assert model.projector[0].in_features == EXPECTED_WIDTH[arch], arch


def test_unknown_arch_and_bad_projector_are_rejected():
    with pytest.raises(ValueError, match="vgg16.*resnet18.*wide_resnet101_2"):
        build_backbone("vgg16")
    for spec in ("", "8192-", "8192-x", "0-8"):
        with pytest.raises(ValueError, match="projector"):
            BarlowTwins("resnet18", projector=spec)


def test_official_resnet50_shapes_on_meta_device():
    with torch.device("meta"):
        state = BarlowTwins().state_dict()
    assert state["projector.0.weight"].shape == (8192, 2048)
    assert state["projector.3.weight"].shape == (8192, 8192)
    assert state["projector.6.weight"].shape == (8192, 8192)
    assert state["projector.1.weight"].shape == state["projector.4.running_var"].shape == (8192,)
    assert state["bn.running_mean"].shape == state["bn.running_var"].shape == (8192,)
    assert "bn.weight" not in state and "projector.6.bias" not in state and "projector.0.bias" not in state
    assert "backbone.fc.weight" not in state
    assert state["backbone.layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)


def test_official_checkpoint_loads_strictly():
    official = OfficialBarlowTwins("resnet18", "32-32-16", 512)
    checkpoint_model = {f"module.{key}": value for key, value in official.state_dict().items()}
    model = BarlowTwins("resnet18", projector="32-32-16")
    model.load_state_dict({key.removeprefix("module."): value for key, value in checkpoint_model.items()},
                          strict=True)
    assert [(name, p.shape) for name, p in model.named_parameters()] == \
        [(name, p.shape) for name, p in official.named_parameters()]
    torch.testing.assert_close(model.projector[3].weight, official.projector[3].weight)


def test_zero_init_residual():
    resnet18 = build_backbone("resnet18")
    assert all(torch.all(block.bn2.weight == 0) for layer in (resnet18.layer1, resnet18.layer4) for block in layer)
    resnet50 = build_backbone("resnet50")
    assert all(torch.all(block.bn3.weight == 0) for block in resnet50.layer3)
    assert torch.all(resnet50.layer3[0].bn2.weight == 1)
    assert isinstance(resnet50.fc, nn.Identity)


def _embeddings(model, images):
    with torch.no_grad():
        return model.projector(model.backbone(images)).double().numpy()


@pytest.mark.parametrize("batch_size", [None, 8])
def test_forward_equals_formula_on_embeddings(batch_size):
    torch.manual_seed(0)
    model = BarlowTwins("resnet18", projector="32-16", lambd=0.01, batch_size=batch_size)
    y1, y2 = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    z1, z2 = _embeddings(model, y1), _embeddings(model, y2)
    loss = model(y1, y2)
    # Train-mode BatchNorm outputs do not depend on running statistics, so z1/z2 are what forward saw.
    expected = reference_loss(z1, z2, 0.01, divisor=batch_size or 4)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_forward_backward_under_bfloat16_autocast():
    torch.manual_seed(0)
    model = BarlowTwins("resnet18", projector="16-8").to(memory_format=torch.channels_last)
    y1, y2 = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(y1, y2)
    assert loss.dtype == torch.float32
    loss.backward()
    assert model.projector[0].weight.grad is not None and torch.isfinite(model.projector[0].weight.grad).all()
    assert model.bn.num_batches_tracked.item() == 2  # bn applied to each view, as officially
