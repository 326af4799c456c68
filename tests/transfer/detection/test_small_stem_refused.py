"""Detection cannot start from small-stem weights: both engines refuse them with one line saying why."""

from __future__ import annotations

import pytest
import torch

from core.backbone import build_backbone
from core.checkpoint import CheckpointError
from transfer.detection.detectron2.convert import convert_checkpoint
from transfer.detection.torchvision.config import ModelConfig
from transfer.detection.torchvision.model import build_resnet


@pytest.fixture
def small_stem_weights(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(build_backbone("resnet50", "small").state_dict(), path)
    return path


def test_detectron2_conversion_refuses_small_stem(small_stem_weights, tmp_path):
    with pytest.raises(CheckpointError, match="small-image stem .*detectron2's ResNet") as error:
        convert_checkpoint(small_stem_weights, tmp_path / "out.pkl", check_with_detectron2=False)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out.pkl").exists()


def test_torchvision_engine_refuses_small_stem(small_stem_weights):
    with pytest.raises(CheckpointError, match="small-image stem .*torchvision detection engine"):
        build_resnet(ModelConfig(weights=str(small_stem_weights)))
