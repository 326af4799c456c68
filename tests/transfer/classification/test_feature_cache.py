"""Feature extraction cache: hit, miss on a changed key, resume after an interruption, skipped images, the
sidecar and plain-numpy files, round-robin chunks for several processes."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.backbone import build_backbone
from core.backbone import LoadedBackbone
from transfer.classification.datasets import build_dataset
from transfer.classification.feature_cache import FeatureCache
from transfer.classification.features import FeatureConfig, FeatureExtractor, cached_features, evaluation_transform, extract_to_cache


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for label in range(2):
        (root / f"class{label}").mkdir()
        for index in range(5):
            Image.new("RGB", (40, 40), (40 * index, 100 * label, 50)).save(root / f"class{label}" / f"{index}.jpg")
    return root


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("resnet18").eval()


class CountingExtractor(FeatureExtractor):
    """Counts images it processes, and can raise after a number of batches (a simulated interruption)."""

    def __init__(self, *args, fail_after_batches=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.images_seen, self.batches, self.fail_after_batches = 0, 0, fail_after_batches

    def __call__(self, images):
        if self.fail_after_batches is not None and self.batches >= self.fail_after_batches:
            raise KeyboardInterrupt("simulated interruption")
        self.batches += 1
        self.images_seen += len(images)
        return super().__call__(images)


def make(folder, backbone, **kwargs):
    dataset = build_dataset("imagefolder", folder, "", evaluation_transform("center_crop", 32))
    return dataset, CountingExtractor(backbone, "res5", "cpu", **kwargs)


def test_resume_after_interruption_matches_uninterrupted_run(folder, backbone, tmp_path):
    dataset, extractor = make(folder, backbone)
    reference = extract_to_cache(extractor, dataset, FeatureCache(tmp_path / "a", {"k": 1}), batch_size=2,
                                 chunk_batches=1, dtype="float32", progress=False)
    interrupted_cache = FeatureCache(tmp_path / "b", {"k": 1})
    _, failing = make(folder, backbone, fail_after_batches=3)  # 1 probe batch for the width + 2 chunks
    with pytest.raises(KeyboardInterrupt):
        extract_to_cache(failing, dataset, interrupted_cache, batch_size=2, chunk_batches=1, dtype="float32",
                         progress=False)
    assert not interrupted_cache.complete
    assert interrupted_cache.pending_chunks() == [2, 3, 4]
    _, resumed = make(folder, backbone)
    result = extract_to_cache(resumed, dataset, interrupted_cache, batch_size=2, chunk_batches=1, dtype="float32",
                              progress=False)
    assert resumed.images_seen == 1 + 6  # the width probe, then only the three unfinished chunks
    np.testing.assert_allclose(result.features, reference.features, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.labels, dataset.targets)
    assert result.features.shape == (10, 512) and isinstance(result.features, np.memmap)


def test_cache_hit_and_miss(folder, backbone, tmp_path):
    loaded = LoadedBackbone(backbone, "w.pth", "abc123", "torchvision-state-dict")
    config = FeatureConfig(image_size=32, batch_size=4, num_workers=0, chunk_batches=1, dtype="float16")
    first = cached_features(loaded, "resnet18", "imagefolder", folder, "", config, tmp_path, torch.device("cpu"),
                            progress=False)
    entries = list(tmp_path.iterdir())
    meta = json.loads((entries[0] / "meta.json").read_text())
    assert meta["complete"] and meta["key"]["weights_sha256"] == "abc123" and meta["key"]["layer"] == "res5"
    assert first.features.dtype == np.float16
    (entries[0] / "features.npy").touch()
    again = cached_features(loaded, "resnet18", "imagefolder", folder, "", config, tmp_path, torch.device("cpu"),
                            progress=False)
    assert len(list(tmp_path.iterdir())) == 1  # hit: no new entry
    np.testing.assert_array_equal(first.features, again.features)
    other = LoadedBackbone(backbone, "w2.pth", "def456", "torchvision-state-dict")
    cached_features(other, "resnet18", "imagefolder", folder, "", config, tmp_path, torch.device("cpu"), progress=False)
    assert len(list(tmp_path.iterdir())) == 2  # miss: different weights


def test_unreadable_images_are_skipped_and_counted(folder, backbone, tmp_path):
    broken = tmp_path / "broken"
    for source in folder.rglob("*.jpg"):
        target = broken / source.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    (broken / "class1" / "2.jpg").write_bytes(b"garbage")
    dataset = build_dataset("imagefolder", broken, "", evaluation_transform("center_crop", 32), skip_unreadable=True)
    extractor = FeatureExtractor(backbone, "res5", "cpu")
    result = extract_to_cache(extractor, dataset, FeatureCache(tmp_path / "c", {"k": 2}), batch_size=4,
                              progress=False)
    assert result.meta["num_skipped"] == 1 and result.valid.sum() == 9
    features, labels = result.valid_rows()
    assert features.shape == (9, 512) and labels.tolist().count(1) == 4


def test_vissl_pooled_layers_need_full_size_maps(backbone):
    extractor = FeatureExtractor(backbone, "res5_vissl8k", "cpu")
    with pytest.raises(ValueError, match="image_size >= 224"):
        extractor(torch.zeros(1, 3, 64, 64))
    assert FeatureExtractor(backbone, "res4_vissl9k", "cpu")(torch.zeros(1, 3, 224, 224)).shape == (1, 256 * 9)
    assert extractor(torch.zeros(1, 3, 224, 224)).shape == (1, 512 * 4)


def test_key_fields_change_the_entry(folder, backbone, tmp_path):
    loaded = LoadedBackbone(backbone, "w.pth", "abc123", "torchvision-state-dict")
    base = dict(image_size=32, batch_size=4, num_workers=0, chunk_batches=1)
    for config in (FeatureConfig(**base), FeatureConfig(**base, transform="vissl_resize"),
                   FeatureConfig(**base, dtype="float32"), FeatureConfig(**base)):
        cached_features(loaded, "resnet18", "imagefolder", folder, "", config, tmp_path, torch.device("cpu"),
                        progress=False)
    metas = [json.loads((entry / "meta.json").read_text()) for entry in sorted(tmp_path.iterdir())]
    assert len(metas) == 3  # the fourth call was a hit
    assert sorted((meta["key"]["transform"], meta["key"]["dtype"]) for meta in metas) == [
        ("center_crop", "float16"), ("center_crop", "float32"), ("vissl_resize", "float16")]
    for entry in tmp_path.iterdir():  # plain numpy reads the entry: a memory-mappable .npy per array
        meta = json.loads((entry / "meta.json").read_text())
        features = np.load(entry / "features.npy", mmap_mode="r")
        assert isinstance(features, np.memmap) and features.dtype == np.dtype(meta["key"]["dtype"])
        assert features.shape == (10, 512) and np.load(entry / "valid.npy").all()
        assert meta["key"]["dataset"] == "imagefolder" and meta["key"]["layer"] == "res5"


def test_chunks_are_dealt_round_robin_over_processes(tmp_path):
    cache = FeatureCache(tmp_path, {"k": 3})
    cache.prepare(num_rows=9, dim=4, dtype="float32", labels=np.arange(9), chunk_size=2)
    assert cache.num_chunks() == 5 and list(cache.chunk_rows(4)) == [8]
    assert cache.pending_chunks(0, 2) == [0, 2, 4] and cache.pending_chunks(1, 2) == [1, 3]
    features = cache.open_for_writing()
    features[2:4] = 1.0
    cache.write_chunk(features, 1, np.array([2, 3]), np.array([True, True]))
    assert cache.pending_chunks(1, 2) == [3] and cache.pending_chunks() == [0, 2, 3, 4]
    with pytest.raises(RuntimeError, match="4 chunk"):
        cache.finalize()
    with pytest.raises(ValueError, match="float64"):
        cache.prepare(num_rows=9, dim=4, dtype="float64", labels=np.arange(9), chunk_size=2)


def test_unreadable_sidecar_is_a_miss(folder, backbone, tmp_path):
    loaded = LoadedBackbone(backbone, "w.pth", "abc123", "torchvision-state-dict")
    config = FeatureConfig(image_size=32, batch_size=4, num_workers=0, chunk_batches=1)
    first = cached_features(loaded, "resnet18", "imagefolder", folder, "", config, tmp_path, torch.device("cpu"),
                            progress=False)
    expected = np.array(first.features)
    (entry,) = list(tmp_path.iterdir())
    (entry / "meta.json").write_text("{ truncated")
    again = cached_features(loaded, "resnet18", "imagefolder", folder, "", config, tmp_path, torch.device("cpu"),
                            progress=False)
    assert json.loads((entry / "meta.json").read_text())["complete"]
    np.testing.assert_array_equal(again.features, expected)
