"""Barlow Twins augmentations: each op against torchvision/PIL/scipy, and the two-view distribution
against the official PIL chain."""

import math
import random

import numpy as np
import pytest
import torch
import torchvision.transforms as transforms_v1
import torchvision.transforms.functional as functional_v1
from PIL import Image, ImageFilter, ImageOps
from scipy import ndimage

import pretrain.transforms as transforms_module
from pretrain.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BarlowTwinsTransform,
    adjust_hue,
    gaussian_blur,
    reference_pil_transform,
)

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def smooth_image(size=48, seed=0):
    noise = np.random.default_rng(seed).integers(0, 256, (12, 12, 3)).astype(np.uint8)
    return Image.fromarray(noise).resize((size, size), Image.BICUBIC)


def as_float(image):
    return functional_v1.pil_to_tensor(image).float() / 255


def test_hue_hand_cases():
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    torch.testing.assert_close(adjust_hue(red, 1 / 3), torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1))
    torch.testing.assert_close(adjust_hue(red, 1 / 6), torch.tensor([1.0, 1.0, 0.0]).view(3, 1, 1))
    torch.testing.assert_close(adjust_hue(red, -1 / 6), torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1))
    gray = torch.full((3, 2, 2), 0.4)
    torch.testing.assert_close(adjust_hue(gray, 0.1), gray)


@pytest.mark.parametrize("hue_factor", [-0.1, -0.037, 0.0, 0.05, 0.1])
def test_hue_matches_torchvision_and_pil(hue_factor):
    image = smooth_image()
    tensor = as_float(image)
    torch.testing.assert_close(adjust_hue(tensor, hue_factor), functional_v1.adjust_hue(tensor, hue_factor),
                               atol=1e-5, rtol=0)
    # PIL quantises H/S/V and the shift to 8 bits: close on average, a few levels apart at worst.
    difference = (adjust_hue(tensor, hue_factor) - as_float(functional_v1.adjust_hue(image, hue_factor))).abs() * 255
    assert difference.mean() < 2.0 and difference.max() < 16


@pytest.mark.parametrize("sigma", [0.1, 0.55, 1.0, 2.0])
def test_blur_is_a_truncated_gaussian_with_replicated_edges(sigma):
    tensor = as_float(smooth_image())
    expected = ndimage.gaussian_filter(tensor.double().numpy(), sigma=(0, sigma, sigma), mode="nearest",
                                       radius=(0, math.ceil(3 * sigma), math.ceil(3 * sigma)))
    torch.testing.assert_close(gaussian_blur(tensor, sigma), torch.from_numpy(expected).float(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_blur_is_close_to_pil(sigma):
    image = smooth_image()
    ours = gaussian_blur(as_float(image), sigma)
    pil = as_float(image.filter(ImageFilter.GaussianBlur(sigma)))
    assert (ours - pil).abs().mean() * 255 < 1.0
    assert (as_float(image) - pil).abs().mean() * 255 > 5.0  # the blur itself is far bigger than the gap


def test_blur_keeps_constants_and_kernel_mass():
    torch.testing.assert_close(gaussian_blur(torch.full((1, 9, 9), 0.3), 1.7), torch.full((1, 9, 9), 0.3))
    impulse = torch.zeros(1, 21, 21)
    impulse[0, 10, 10] = 1
    blurred = gaussian_blur(impulse, 1.5)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert blurred[0, 10, 10 + 5].item() > 0 and blurred[0, 10, 10 + 6].item() == 0  # radius ceil(4.5) = 5


def test_solarize_and_grayscale_match_pil_on_hand_pixels():
    pixels = np.array([[[0, 127, 128], [255, 0, 0], [0, 255, 0], [10, 200, 90]]], dtype=np.uint8)
    image = Image.fromarray(pixels)
    solarized = transforms_module.solarize(as_float(image), threshold=128 / 255)
    assert torch.equal((solarized * 255).round().to(torch.uint8), functional_v1.pil_to_tensor(ImageOps.solarize(image)))
    assert (solarized[:, 0, 0] * 255).round().tolist() == [0, 127, 127]
    gray = transforms_module.tensor_ops.rgb_to_grayscale(as_float(image), num_output_channels=1)
    pil_gray = functional_v1.pil_to_tensor(image.convert("L")).float()
    assert (gray * 255 - pil_gray).abs().max() < 1.0  # PIL: integer 299/587/114 per mille
    assert gray[0, 0, 1].item() == pytest.approx(0.2989)


def test_color_jitter_applies_ops_in_drawn_order_like_torchvision(monkeypatch):
    fixed = (torch.tensor([3, 0, 2, 1]), 1.3, 0.7, 1.15, 0.07)
    monkeypatch.setattr(transforms_v1.ColorJitter, "get_params", staticmethod(lambda *args: fixed))
    tensor = as_float(smooth_image())
    expected = transforms_v1.ColorJitter(0.4, 0.4, 0.2, 0.1)(tensor)  # torchvision's tensor implementation
    torch.testing.assert_close(BarlowTwinsTransform(48).color_jitter(tensor), expected, atol=2e-5, rtol=0)


def test_output_shapes_dtypes_and_normalisation(monkeypatch):
    transform = BarlowTwinsTransform(size=32)
    views = transform(smooth_image(64).convert("L"))  # any mode: converted to RGB first
    assert len(views) == 2
    views += transform(functional_v1.pil_to_tensor(smooth_image(40)))  # a uint8 tensor works too
    for view in views:
        assert view.dtype == torch.float32 and view.shape == (3, 32, 32)
    with pytest.raises(ValueError, match="uint8"):
        transform(torch.zeros(3, 40, 40))
    for name in ("FLIP_PROBABILITY", "JITTER_PROBABILITY", "GRAYSCALE_PROBABILITY"):
        monkeypatch.setattr(transforms_module, name, 0.0)
    no_blur_or_solarization = transforms_module.ViewRecipe(blur_probability=0.0, solarize_probability=0.0)
    monkeypatch.setattr(transforms_module, "VIEW_RECIPES", (no_blur_or_solarization,) * 2)
    constant = Image.new("RGB", (40, 50), (100, 150, 200))
    expected = (torch.tensor([100, 150, 200]).view(3, 1, 1) / 255 - MEAN) / STD
    for view in transform(constant):
        torch.testing.assert_close(view, expected.expand(3, 32, 32), atol=1e-6, rtol=0)


def test_crop_is_the_official_random_resized_crop():
    crop = BarlowTwinsTransform(224).crop
    assert isinstance(crop, transforms_v1.RandomResizedCrop)
    assert crop.size == (224, 224) and crop.scale == (0.08, 1.0)
    assert crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert crop.interpolation == transforms_v1.InterpolationMode.BICUBIC


def test_crop_matches_the_official_pil_crop(monkeypatch):
    for name in ("FLIP_PROBABILITY", "JITTER_PROBABILITY", "GRAYSCALE_PROBABILITY"):
        monkeypatch.setattr(transforms_module, name, 0.0)
    no_blur_or_solarization = transforms_module.ViewRecipe(blur_probability=0.0, solarize_probability=0.0)
    monkeypatch.setattr(transforms_module, "VIEW_RECIPES", (no_blur_or_solarization,) * 2)
    fast, official, image = BarlowTwinsTransform(40), reference_pil_transform(40), textured_image()
    for seed in range(10):
        torch.manual_seed(seed)
        fast_views = fast(image)
        torch.manual_seed(seed)
        official_views = official(image)
        for fast_view, official_view in zip(fast_views, official_views):
            levels = ((fast_view - official_view) * STD).abs() * 255  # uint8 antialiased bicubic vs PIL's
            assert levels.max() < 4.5 and levels.mean() < 0.5  # fixed-point rounding: mostly 0 or 1 level


def test_op_probabilities_and_blur_sigma_range(monkeypatch):
    calls = {"jitter": 0, "gray": 0, "blur": [], "solarize": 0}
    original_blur, original_jitter = transforms_module.gaussian_blur, BarlowTwinsTransform.color_jitter
    original_solarize = transforms_module.solarize
    original_gray = transforms_module.tensor_ops.rgb_to_grayscale

    def counting_blur(view, sigma):
        calls["blur"].append(sigma)
        return original_blur(view, sigma)

    def counting_jitter(self, view, *params):
        calls["jitter"] += 1
        return original_jitter(self, view, *params)

    def counting_solarize(view, threshold):
        calls["solarize"] += 1
        return original_solarize(view, threshold)

    def counting_gray(view, num_output_channels):
        calls["gray"] += 1
        return original_gray(view, num_output_channels)

    monkeypatch.setattr(transforms_module, "gaussian_blur", counting_blur)
    monkeypatch.setattr(BarlowTwinsTransform, "color_jitter", counting_jitter)
    monkeypatch.setattr(transforms_module, "solarize", counting_solarize)
    monkeypatch.setattr(transforms_module.tensor_ops, "rgb_to_grayscale", counting_gray)
    torch.manual_seed(0)
    random.seed(0)
    # The torch ops are counted; the fused kernels give the same views (tests/pretrain/test_color_kernels.py).
    transform, image, samples = BarlowTwinsTransform(16, fused=False), functional_v1.pil_to_tensor(smooth_image(24)), 400
    all_sigmas = []
    for recipe, blur_p, solarize_p in zip(transforms_module.VIEW_RECIPES, (1.0, 0.1), (0.0, 0.2)):
        calls.update(jitter=0, gray=0, blur=[], solarize=0)
        for _ in range(samples):
            transform.view(image, recipe)
        assert calls["jitter"] / samples == pytest.approx(0.8, abs=0.08)
        assert calls["gray"] / samples == pytest.approx(0.2, abs=0.08)
        assert len(calls["blur"]) / samples == pytest.approx(blur_p, abs=0.06)
        assert calls["solarize"] / samples == pytest.approx(solarize_p, abs=0.08)
        all_sigmas += calls["blur"]
    assert min(all_sigmas) >= 0.1 and max(all_sigmas) <= 2.0
    assert np.mean(all_sigmas) == pytest.approx(1.05, abs=0.08) and np.std(all_sigmas) == pytest.approx(
        1.9 / math.sqrt(12), abs=0.05)


def textured_image():
    noise = np.random.default_rng(0).integers(0, 256, (24, 32, 3)).astype(np.uint8)
    return Image.fromarray(noise).resize((64, 48), Image.BICUBIC)


def test_same_seed_gives_the_official_augmentations():
    """Both chains draw the same parameters from the same generators: views differ only numerically."""
    fast, official, image = BarlowTwinsTransform(32), reference_pil_transform(32), textured_image()
    differences = []
    for seed in range(100):
        torch.manual_seed(seed)
        random.seed(seed)
        fast_views = fast(image)
        torch.manual_seed(seed)
        random.seed(seed)
        official_views = official(image)
        for fast_view, official_view in zip(fast_views, official_views):
            differences.append(((fast_view - official_view) * STD).abs().mean().item() * 255)
    # Rounding, hue quantisation and box-vs-true Gaussian: ~1.5 levels typically, a few at worst; a wrong
    # flip/grayscale/solarisation/jitter op or a 30% wrong blur sigma is 6 to 50 levels.
    assert np.quantile(differences, 0.9) < 3.0 and max(differences) < 8.0


def gradient_image(low, high):
    """Horizontally increasing gray ramp from ``low`` to ``high`` plus a fixed colour tint (R +10, B +3)."""
    base = np.broadcast_to(np.linspace(low, high, 64), (48, 64))
    return Image.fromarray(np.stack([base + 10, base, base + 3], axis=-1).round().astype(np.uint8))


def detected_fractions(views, solarization_image):
    """Exact detectors: the mid-range ramp (<= 100) never clips under any jitter (factors <= 1.4 * 1.4 * 1.2),
    so its tint survives unless grayscale and its ramp order shows flips; solarising the bright ramp (>= 200)
    leaves no value >= 128, which jitter alone (factors >= 0.6) does not reach."""
    pixels = torch.stack(views) * STD + MEAN
    if solarization_image:
        return dict(solarized=(pixels.amax(dim=(1, 2, 3)) < 127.5 / 255).float().mean().item())
    half = pixels.shape[-1] // 2
    right_darker = pixels[..., half:].mean(dim=(1, 2, 3)) < pixels[..., :half].mean(dim=(1, 2, 3))
    spread = (pixels[:, 0] - pixels[:, 1]).abs().amax(dim=(1, 2)) + (pixels[:, 1] - pixels[:, 2]).abs().amax(dim=(1, 2))
    return dict(flipped=right_darker.float().mean().item(), grayscale=(spread < 1e-3).float().mean().item())


@pytest.mark.parametrize("make_transform", [BarlowTwinsTransform, reference_pil_transform], ids=["fast", "official"])
def test_flip_grayscale_solarize_fractions(make_transform):
    transform, count = make_transform(32), 250
    torch.manual_seed(3)
    random.seed(3)
    mid_views = [transform(gradient_image(64, 90)) for _ in range(count)]
    bright_views = [transform(gradient_image(200, 242)) for _ in range(count)]
    first = detected_fractions([views[0] for views in mid_views], False)
    second = detected_fractions([views[1] for views in mid_views], False)
    expected = {"flipped": 0.5, "grayscale": 0.2}
    for key, probability in expected.items():
        tolerance = 4 * math.sqrt(probability * (1 - probability) / count)
        assert first[key] == pytest.approx(probability, abs=tolerance), key
    # The second view's ramp order is scrambled by solarisation; its grayscale tint test is not.
    assert second["grayscale"] == pytest.approx(0.2, abs=4 * math.sqrt(0.16 / count))
    for view_index, probability in ((0, 0.0), (1, 0.2)):
        solarized = detected_fractions([views[view_index] for views in bright_views], True)["solarized"]
        tolerance = max(0.02, 4 * math.sqrt(probability * (1 - probability) / count))
        assert solarized == pytest.approx(probability, abs=tolerance)
