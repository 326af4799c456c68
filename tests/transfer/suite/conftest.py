"""Generated demo data and a tiny resnet18 weights file for the suite tests."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from pretrain.model import build_backbone

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("make_demo_data", REPO / "tools" / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_demo_data", module)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("demo")
    module.make_demo_data(out, images_per_class=4, size=64)
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(build_backbone("resnet18").state_dict(), path)
    return path
