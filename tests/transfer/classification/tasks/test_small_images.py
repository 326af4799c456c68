"""The CIFAR/STL-10 tasks against mix-bt's evaluation: the kNN vote recomputed independently, the recorded
protocol equal to the registered one, and the random-init baseline built with the weights' stem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.backbone import build_backbone
from core.cifar_format import read_cifar10
from transfer.protocol import protocol_differences
from transfer.registry import TaskRun, get_task, run_task

SMALL_RUN = ("features.batch_size=8", "features.num_workers=0", "features.chunk_batches=1")
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def cifar10_root(small_demo_data) -> Path:
    return small_demo_data / "cifar10" / "cifar-10-batches-py"


@pytest.fixture(scope="module")
def small_stem_weights(tmp_path_factory) -> Path:
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("small_stem") / "resnet18_small.pth"
    torch.save(build_backbone("resnet18", "small").state_dict(), path)
    return path


def _run(task: str, weights, root: Path, out: Path, overrides=SMALL_RUN, **options):
    return run_task(get_task(task), TaskRun(weights=weights and str(weights), data_root=root, output_dir=out,
                                            arch="resnet18", overrides=tuple(overrides), **options))


def _mixbt_knn_top1(model: torch.nn.Module, root: Path, k: int = 200, temperature: float = 0.5) -> float:
    """mix-bt main.py test(), written out with numpy: L2-normalised trunk outputs of the unaugmented 32 px images,
    the k most similar training images vote with exp(similarity / T)."""
    def features(split: str) -> tuple[np.ndarray, np.ndarray]:
        images = read_cifar10(root, split)
        pixels = np.stack([np.asarray(images[i], dtype=np.float64) / 255.0 for i in range(len(images))])
        normalised = ((pixels - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2)
        with torch.no_grad():
            output = model.eval()(torch.from_numpy(normalised).float()).double().numpy()
        return output / np.linalg.norm(output, axis=1, keepdims=True), np.asarray(images.labels)

    bank, bank_labels = features("train")
    queries, labels = features("test")
    similarity = queries @ bank.T
    k = min(k, len(bank))
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    votes = np.zeros((len(queries), int(bank_labels.max()) + 1))
    for row in range(len(queries)):
        np.add.at(votes[row], bank_labels[nearest[row]], np.exp(similarity[row, nearest[row]] / temperature))
    return float((votes.argmax(axis=1) == labels).mean() * 100)


def test_cifar10_knn_equals_mixbt_vote_and_follows_its_protocol(cifar10_root, small_stem_weights, tmp_path):
    result = _run("cifar10_knn", small_stem_weights, cifar10_root, tmp_path)
    model = build_backbone("resnet18", "small")
    model.load_state_dict(torch.load(small_stem_weights))
    assert result.metrics["top1"] == pytest.approx(_mixbt_knn_top1(model, cifar10_root), abs=1e-4)  # one image: 10
    assert (result.dataset, result.split) == ("cifar10", "test")
    assert protocol_differences(result.protocol, get_task("cifar10_knn").protocol) == {}


def test_random_init_baseline_is_built_with_the_stem_asked_for(cifar10_root, tmp_path):
    small = _run("cifar10_knn", None, cifar10_root, tmp_path / "small", stem="small")
    assert small.baseline and small.protocol["stem"] == "small"
    assert protocol_differences(small.protocol, get_task("cifar10_knn").protocol) == {}
    imagenet = _run("cifar10_knn", None, cifar10_root, tmp_path / "imagenet")  # the default stem
    assert protocol_differences(imagenet.protocol, get_task("cifar10_knn").protocol) == {"stem": ("imagenet", "small")}
    torch.manual_seed(0)  # load_backbone seeds the random trunk with 0
    expected = _mixbt_knn_top1(build_backbone("resnet18", "small"), cifar10_root)
    assert small.metrics["top1"] == pytest.approx(expected, abs=1e-4)


def test_cifar10_linear_records_mixbt_protocol(cifar10_root, small_stem_weights, tmp_path):
    result = _run("cifar10_linear", small_stem_weights, cifar10_root, tmp_path,
                  ("epochs=1", "batch_size=8", "num_workers=0"))
    differences = protocol_differences(result.protocol, get_task("cifar10_linear").protocol)
    assert differences == {"epochs": (1, 200), "total_batch": (8, 512)}  # only what the test shrank
    assert result.config["report"] == "last" and result.metrics == result.config["last_epoch"]


def test_stl10_names_mixbt_figure_without_comparing_it():
    cited = get_task("stl10_knn").cited
    assert cited is not None and not cited.comparable and "max-pool" in cited.note
    assert get_task("cifar10_knn").cited.comparable
    assert get_task("stl10_knn").protocol.values["image_size"] == 96
