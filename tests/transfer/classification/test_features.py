"""Feature layers against hand pooling of torchvision's stage outputs, test transforms against PIL by hand,
the frozen trunk, the CLI, and extraction sharded over two processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import to_tensor

from core.backbone import build_backbone
from core.backbone import load_backbone
from transfer.classification.features import FeatureExtractor, evaluation_transform, layer_channels, main, pooled_positions

REPO = Path(__file__).resolve().parents[3]
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])  # ImageNet statistics


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    model = build_backbone("resnet18").eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, so eval mode matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    return model


def stage_outputs(model, images):
    """layer3 / layer4 outputs of a torchvision ResNet, captured with forward hooks."""
    captured = {}

    def hook_for(name):
        return lambda module, inputs, output: captured.update({name: output})

    hooks = [getattr(model, name).register_forward_hook(hook_for(name)) for name in ("layer3", "layer4")]
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()
    return captured


def hand_average_pool(maps: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """N x (C * positions) by explicit window means, flattened channel-major (channel, row, column)."""
    count, channels, side, _ = maps.shape
    starts = range(0, side - window + 1, stride)
    pooled = torch.zeros(count, channels, len(starts), len(starts))
    for row, top in enumerate(starts):
        for column, left in enumerate(starts):
            pooled[:, :, row, column] = maps[:, :, top:top + window, left:left + window].mean(dim=(2, 3))
    return pooled.reshape(count, -1)


def test_res5_is_torchvision_global_average_pool(resnet18):
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        expected = resnet18(images)  # torchvision's own avgpool + flatten (fc is Identity)
    features = FeatureExtractor(resnet18, "res5")(images)
    assert features.shape == (3, 512)
    assert torch.allclose(features, expected, atol=1e-5)


def test_vissl_pooled_layers_by_hand(resnet18):
    images = torch.randn(2, 3, 224, 224)
    maps = stage_outputs(resnet18, images)
    assert maps["layer4"].shape[-1] == 7 and maps["layer3"].shape[-1] == 14
    res5 = FeatureExtractor(resnet18, "res5_vissl8k")(images)  # VISSL: AvgPool2d((6, 6), 1, 0) on res5
    res4 = FeatureExtractor(resnet18, "res4_vissl9k")(images)  # VISSL: AvgPool2d((8, 8), 3, 0) on res4
    assert res5.shape == (2, 512 * 2 * 2) and res4.shape == (2, 256 * 3 * 3)
    assert torch.allclose(res5, hand_average_pool(maps["layer4"], 6, 1), atol=1e-5)
    assert torch.allclose(res4, hand_average_pool(maps["layer3"], 8, 3), atol=1e-5)


def test_resnet50_dimensions_match_vissl_heads():
    # VISSL eval_mlp dims for ResNet-50: res4 9216, res5 8192; the default GAP layer is 2048-d
    assert layer_channels("res5", "resnet50") * pooled_positions("res5", 224) == 2048
    assert layer_channels("res5_vissl8k", "resnet50") * pooled_positions("res5_vissl8k", 224) == 8192
    assert layer_channels("res4_vissl9k", "resnet50") * pooled_positions("res4_vissl9k", 224) == 9216
    assert layer_channels("res4_vissl9k", "resnet18") == 256
    with pytest.raises(ValueError, match="image_size >= 224"):
        pooled_positions("res5_vissl8k", 64)
    with pytest.raises(ValueError, match="valid: res5"):
        pooled_positions("res3", 224)


def test_small_maps_are_refused_by_the_vissl_layers(resnet18):
    with pytest.raises(ValueError, match="image_size >= 224"):
        FeatureExtractor(resnet18, "res5_vissl8k")(torch.zeros(1, 3, 64, 64))


def normalised(image: Image.Image) -> torch.Tensor:
    return (to_tensor(image) - MEAN[:, None, None]) / STD[:, None, None]


@pytest.fixture
def landscape() -> Image.Image:
    """A 300 x 200 (width x height) image with distinct content everywhere (gradients plus a border)."""
    y, x = np.mgrid[0:200, 0:300]
    pixels = np.stack([x * 255 // 299, y * 255 // 199, (x + y) % 256], axis=-1).astype(np.uint8)
    pixels[:, :40] = (250, 10, 10)  # a left border that a centre crop cuts away
    return Image.fromarray(pixels)


def test_center_crop_transform_by_hand(landscape):
    # Resize(256): shorter side 200 -> 256, longer 300 -> 384; CenterCrop(224): box (80, 16, 304, 240)
    expected = normalised(landscape.resize((384, 256), Image.BILINEAR).crop((80, 16, 304, 240)))
    output = evaluation_transform("center_crop", 224)(landscape)
    assert output.shape == (3, 224, 224)
    assert torch.allclose(output, expected, atol=1e-6)


def test_vissl_resize_transform_by_hand(landscape):
    # Resize(256) then Resize((224, 224)): the whole field of view, squeezed
    expected = normalised(landscape.resize((384, 256), Image.BILINEAR).resize((224, 224), Image.BILINEAR))
    output = evaluation_transform("vissl_resize", 224)(landscape)
    assert output.shape == (3, 224, 224)
    assert torch.allclose(output, expected, atol=1e-6)
    red = (torch.tensor([250, 10, 10]) / 255 - MEAN) / STD
    assert torch.allclose(output[:, 100, 0], red, atol=0.05)  # the left border is kept


def test_resize_transform_keeps_small_images_as_they_are(landscape):
    tile = landscape.crop((100, 50, 132, 82))  # a 32 x 32 CIFAR-sized image: no resampling at all
    assert torch.equal(evaluation_transform("resize", 32)(tile), normalised(tile))
    squashed = evaluation_transform("resize", 96)(landscape)  # other sizes: the whole image squashed to 96 x 96
    assert torch.allclose(squashed, normalised(landscape.resize((96, 96), Image.BILINEAR)), atol=1e-6)


def test_transforms_scale_with_image_size(landscape):
    # small-image demos: Resize(round(64 * 256 / 224) = 73) + CenterCrop(64)
    expected = normalised(landscape.resize((109, 73), Image.BILINEAR).crop((22, 4, 86, 68)))
    assert torch.allclose(evaluation_transform("center_crop", 64)(landscape), expected, atol=1e-6)
    assert evaluation_transform("vissl_resize", 64)(landscape).shape == (3, 64, 64)
    with pytest.raises(ValueError, match="valid: center_crop, vissl_resize"):
        evaluation_transform("ten_crop")


def test_trunk_is_frozen_in_eval_mode(resnet18):
    resnet18.train()
    try:
        extractor = FeatureExtractor(resnet18, "res5")
        assert not extractor.backbone.training
        statistics = resnet18.bn1.running_mean.clone()
        images = torch.randn(4, 3, 64, 64)
        batch = extractor(images)
        alone = torch.cat([extractor(images[index:index + 1]) for index in range(4)])
        assert torch.allclose(batch, alone, atol=1e-5)  # eval BatchNorm: no dependence on the batch
        assert torch.equal(resnet18.bn1.running_mean, statistics)
    finally:
        resnet18.eval()


def test_amp_and_channels_last_only_on_gpu(resnet18):
    extractor = FeatureExtractor(resnet18, "res5", "cpu", amp=True, channels_last=True)
    assert not extractor.amp and not extractor.channels_last


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    rng = np.random.default_rng(0)
    for label in range(2):
        (root / "train" / f"class{label}").mkdir(parents=True)
        for index in range(5):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "train" / f"class{label}" / f"{index}.png")
    return root


CLI = ["--random-init", "--arch", "resnet18", "--dataset", "imagefolder", "--split", "train",
       "image_size=32", "batch_size=2", "num_workers=0", "chunk_batches=1", "dtype=float32"]


def expected_random_init_features(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features of the seeded random trunk computed with torchvision's forward, one image at a time."""
    model = load_backbone(None, "resnet18", random_init=True).model.eval()
    transform = evaluation_transform("center_crop", 32)
    paths = sorted((folder / "train").rglob("*.png"))
    with torch.no_grad():
        features = torch.cat([model(transform(Image.open(path).convert("RGB")).unsqueeze(0)) for path in paths])
    return features.numpy(), np.array([int(path.parent.name[-1]) for path in paths])


def read_entry(cache_dir: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    (entry,) = list(cache_dir.iterdir())
    return (json.loads((entry / "meta.json").read_text()), np.load(entry / "features.npy", mmap_mode="r"),
            np.load(entry / "labels.npy"))


def test_cli_extracts_into_the_cache(folder, tmp_path, capsys):
    main([*CLI, "--data-root", str(folder), "--cache-dir", str(tmp_path)])
    assert "10 x 512 features (0 skipped)" in capsys.readouterr().out
    meta, features, labels = read_entry(tmp_path)
    assert meta["complete"] and meta["dtype"] == "float32"
    assert {key: meta["key"][key] for key in ("weights_sha256", "dataset", "split", "layer", "transform")} == {
        "weights_sha256": "random-init", "dataset": "imagefolder", "split": "train", "layer": "res5",
        "transform": "center_crop"}
    expected, expected_labels = expected_random_init_features(folder)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, expected_labels)


def test_extraction_sharded_over_two_torchrun_processes(folder, tmp_path):
    environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "transfer.classification.features", *CLI, "--data-root", str(folder), "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("10 x 512 features") == 1  # printed by the main process only
    meta, features, labels = read_entry(tmp_path / "cache")
    assert meta["complete"] and meta["num_rows"] == 10 and meta["chunk_size"] == 2
    chunk_files = sorted(path.name for path in (next((tmp_path / "cache").iterdir()) / "chunks").iterdir())
    assert chunk_files == [f"{chunk:08d}.npy" for chunk in range(5)]  # every chunk, dealt round-robin to 2 ranks
    expected, expected_labels = expected_random_init_features(folder)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, expected_labels)


def test_module_help():
    completed = subprocess.run([sys.executable, "-m", "transfer.classification.features", "--help"], cwd=REPO, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert all(option in completed.stdout for option in ("--weights", "--random-init", "--dataset", "--cache-dir"))
