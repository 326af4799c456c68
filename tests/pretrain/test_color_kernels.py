"""The fused CPU colour kernels give the torch ops' views (pretrain.transforms) up to float32 rounding, for
every kind of view the recipe draws, on real photographs; they draw no random numbers of their own."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from sklearn.datasets import load_sample_images

from pretrain import color_kernels
from pretrain.transforms import VIEW_RECIPES, BarlowTwinsTransform, ViewParams

pytestmark = pytest.mark.skipif(not color_kernels.available(), reason="numba is not installed")
TOLERANCE = 2e-5  # normalised units (x 1/std ~ 4.4 of [0, 1] units): float32 rounding of a few ops


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    return [torch.from_numpy(np.array(image)).permute(2, 0, 1) for image in load_sample_images().images]


def test_every_drawn_view_matches_the_torch_ops(photos):
    fused, reference = BarlowTwinsTransform(96, fused=True), BarlowTwinsTransform(96, fused=False)
    torch.manual_seed(0)
    random.seed(0)
    seen = {"jitter": 0, "grayscale": 0, "blur": 0, "solarize": 0, "flip": 0}
    for draw in range(120):
        image = photos[draw % 2]
        params = reference.draw_view(image.shape[-2], image.shape[-1], VIEW_RECIPES[draw % 2])
        for name, used in (("jitter", params.jitter is not None), ("grayscale", params.grayscale),
                           ("blur", params.blur_sigma is not None), ("solarize", params.solarize),
                           ("flip", params.flip)):
            seen[name] += used
        expected = reference.apply_view(image, params)
        got = fused.apply_view(image, params)
        assert got.shape == expected.shape == (3, 96, 96) and got.dtype == torch.float32
        assert torch.allclose(got, expected, atol=TOLERANCE, rtol=0), (draw, params)
    assert min(seen.values()) >= 5, seen  # every op was exercised


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2)])
def test_extreme_jitter_in_any_order_with_grayscale_and_solarisation(photos, order):
    """Strong factors push values into the [0, 1] clamps after each op; the order changes the result."""
    fused, reference = BarlowTwinsTransform(64, fused=True), BarlowTwinsTransform(64, fused=False)
    image = photos[1]
    for factors in ((1.4, 0.6, 1.2, -0.1), (0.6, 1.4, 0.8, 0.1)):
        for grayscale, solarize in ((False, False), (True, True), (False, True)):
            params = ViewParams((20, 30, 300, 400), True, (order, factors), grayscale, 1.3, solarize)
            assert torch.allclose(fused.apply_view(image, params), reference.apply_view(image, params),
                                  atol=TOLERANCE, rtol=0)


def test_same_views_under_one_seed(photos):
    """Calling the transform draws the same parameters either way: the kernels consume no random numbers."""
    views = []
    for fused in (True, False):
        torch.manual_seed(5)
        random.seed(5)
        views.append(BarlowTwinsTransform(64, fused=fused)(photos[0]))
        views[-1] += (torch.rand(1), random.random())  # the generators' states afterwards
    (first_a, second_a, torch_a, python_a), (first_b, second_b, torch_b, python_b) = views
    assert torch.allclose(first_a, first_b, atol=TOLERANCE, rtol=0)
    assert torch.allclose(second_a, second_b, atol=TOLERANCE, rtol=0)
    assert torch.equal(torch_a, torch_b) and python_a == python_b
