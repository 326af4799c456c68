"""CIFAR-10/100 and STL-10 as transfer data sets: ``build_dataset(name, root, split)`` on the miniature copies."""

from __future__ import annotations

import numpy as np
import pytest

from transfer.classification.datasets import DatasetError, build_dataset


@pytest.fixture(scope="module")
def arrays(tmp_path_factory, make_demo_data_tool):
    out = tmp_path_factory.mktemp("arrays")
    make_demo_data_tool.make_demo_data(out, images_per_class=4, layouts="cifar10,cifar100,stl10")
    return out


@pytest.mark.parametrize("name, side", [("cifar10", 32), ("cifar100", 32), ("stl10", 96)])
def test_train_and_test_splits_with_labels_and_classes(arrays, name, side):
    train = build_dataset(name, arrays / name, "train")
    test = build_dataset(name, arrays / name, "test")
    # make_demo_data: 4 training and 2 test images per class, 5 classes, written class by class.
    assert (len(train), len(test)) == (20, 10)
    np.testing.assert_array_equal(test.targets, np.repeat(np.arange(5), 2))
    assert train.classes == ["circle", "cross", "square", "star", "triangle"]
    image, target, ok = train[5]
    assert image.size == (side, side) and target == 1 and ok
    assert train.paths[5] == f"{name}/train/5"


def test_wrong_root_and_split_are_named(arrays):
    with pytest.raises(DatasetError, match="holds no cifar-100-python"):
        build_dataset("cifar100", arrays / "cifar10", "train")
    with pytest.raises(DatasetError, match="unlabeled"):
        build_dataset("stl10", arrays / "stl10", "unlabeled")
