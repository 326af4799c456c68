"""Generated demo data and a tiny resnet18 weights file for the suite tests."""

from pathlib import Path

import pytest
import torch

from core.backbone import build_backbone


@pytest.fixture(scope="module")
def demo_root(small_demo_data) -> Path:
    return small_demo_data


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(build_backbone("resnet18").state_dict(), path)
    return path
