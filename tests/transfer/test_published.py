"""The paper's numbers ship as package data and equal the reference file."""

import json
from pathlib import Path

import pytest

from transfer.published import published_results, published_value

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "barlow_twins_published_results.json"


def test_values_from_the_paper():
    # Literal values from the Barlow Twins paper's tables (Zbontar et al. 2021).
    assert published_value("transfer_classification", "Barlow Twins", "places205_top1") == 54.1
    assert published_value("transfer_classification", "Barlow Twins", "voc07_svm_map") == 86.2
    assert published_value("imagenet_linear", "Barlow Twins", "top1") == 73.2
    assert published_value("transfer_detection", "Supervised", "coco_mask_AP") == 33.3
    assert published_value("imagenet_linear", "Supervised", "top5") is None


def test_unknown_names_raise_key_error():
    with pytest.raises(KeyError, match="no method 'DINO'"):
        published_value("imagenet_linear", "DINO", "top1")
    with pytest.raises(KeyError, match="no metric"):
        published_value("imagenet_linear", "Barlow Twins", "top10")
    with pytest.raises(KeyError, match="unknown published table"):
        published_value("cifar", "Barlow Twins", "top1")


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared/reference is not beside this checkout")
def test_package_data_equals_shared_reference():
    assert published_results() == json.loads(REFERENCE.read_text())
