"""No loader runs code from a weights file: a pickle whose ``__reduce__`` creates a file is refused, not executed."""

import pickle

import numpy as np
import pytest
import torch

from core.checkpoint import CheckpointError, load_backbone_state_dict, load_checkpoint
from core.safe_pickle import UnsafePickleError, load_safe_pickle
from transfer.detection.detectron2.weights import WeightsError, read_detectron2_weights


class CreatesMarker:
    """Unpickling calls ``open(marker, "w")``: the file appears exactly when the payload runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def malicious(marker):
    return {"model": {"conv1.weight": CreatesMarker(marker)}, "matching_heuristics": True, "__author__": "x"}


def test_the_payload_runs_under_plain_pickle(tmp_path):  # the control: the marker proves execution
    pickle.loads(pickle.dumps(malicious(tmp_path / "control")))
    assert (tmp_path / "control").exists()


@pytest.mark.parametrize("suffix, writer", [
    (".pth", "torch"), (".pth", "pickle"), (".pkl", "pickle"), (".safetensors", "pickle"), (".tar", "torch")])
def test_no_loader_executes_a_malicious_pickle(tmp_path, suffix, writer):
    path, marker = tmp_path / f"evil{suffix}", tmp_path / "marker"
    if writer == "torch":
        torch.save(malicious(marker), path)
    else:
        path.write_bytes(pickle.dumps(malicious(marker), protocol=2))
    for load in (load_checkpoint, lambda p: load_backbone_state_dict(p, "resnet18")):
        with pytest.raises(CheckpointError, match="evil"):
            load(path)
    if suffix == ".pkl":
        with pytest.raises(WeightsError, match="refusing to load global"):
            read_detectron2_weights(path)
        with pytest.raises(UnsafePickleError):
            load_safe_pickle(path)
    assert not marker.exists()


def test_numpy_weights_pickles_load(tmp_path):
    model = {"res2.0.conv1.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int64(3)}
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"d2_{protocol}.pkl"
        path.write_bytes(pickle.dumps({"model": model, "__author__": "x", "matching_heuristics": True},
                                      protocol=protocol))
        data = read_detectron2_weights(path)
        assert np.array_equal(data["model"]["res2.0.conv1.weight"], model["res2.0.conv1.weight"])
    path.write_bytes(pickle.dumps({"model": model, "__author__": "x"}))
    with pytest.raises(WeightsError, match="lacks 'matching_heuristics'"):
        read_detectron2_weights(path)
