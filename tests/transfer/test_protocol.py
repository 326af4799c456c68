"""Protocol checks: every differing or unrecorded value is named, in a fixed order, with the protocol's value."""

import pytest

from transfer.protocol import NOT_RECORDED, Protocol, describe_differences, protocol_differences

VOC = Protocol({"arch": "resnet50", "model": "Faster R-CNN R50-C4", "total_batch": 16, "iterations": 24000,
                "base_lr": 0.1}, "paper App. C.2")


def test_identical_values_match():
    used = {"arch": "resnet50", "model": "Faster R-CNN R50-C4", "total_batch": 16, "iterations": 24000,
            "base_lr": 0.1, "processes": 8}
    assert protocol_differences(used, VOC) == {}
    assert protocol_differences({**used, "base_lr": 0.1 + 1e-12}, VOC) == {}  # float round-off


def test_one_process_detectron2_run_names_each_rescaled_value():
    # detectron2 with REFERENCE_WORLD_SIZE 8 on one GPU: batch 16 -> 2, LR / 8, iterations x 8.
    used = {"arch": "resnet50", "model": "Faster R-CNN R50-C4", "total_batch": 2, "iterations": 192000,
            "base_lr": 0.0125, "processes": 1}
    assert describe_differences(protocol_differences(used, VOC)) == (
        "total batch 2 (protocol 16), iterations 192000 (24000), learning rate 0.0125 (0.1)")


def test_missing_values_count_as_different():
    differences = protocol_differences({"arch": "resnet50"}, VOC)
    assert set(differences) == {"model", "total_batch", "iterations", "base_lr"}
    assert differences["total_batch"] == (NOT_RECORDED, 16)
    assert protocol_differences(None, VOC).keys() == VOC.values.keys()


def test_unknown_protocol_keys_are_refused():
    with pytest.raises(ValueError, match="unknown protocol key.*batchsize"):
        Protocol({"batchsize": 16}, "typo")
