"""The per-view colour augmentations of ``BarlowTwinsTransform`` as two fused CPU kernels (numba).

Eager PyTorch runs ColorJitter, grayscale, solarisation and normalisation as some 80 passes over a
224 x 224 view, each a separate kernel launch; on one CPU core the hue rotation alone took a quarter of the
loader's time (docs/benchmarks.md). These kernels do the same arithmetic per pixel in two passes (before and
after the Gaussian blur, which stays in PyTorch) and give the torch ops' results up to float32 rounding:

* ``jitter_view``: uint8 crop -> float32 in [0, 1] (``/ 255``), horizontal flip, the four ColorJitter ops in
  the drawn order (each clamped to [0, 1], as torchvision's ``_blend``), then grayscale (ITU-R 601 weights);
* ``finish_view``: solarisation (``x >= threshold -> 1 - x``) and ImageNet normalisation (a 1-channel view is
  broadcast to 3 channels, as the torch path broadcasts it).

The torch implementation in ``pretrain.transforms`` stays the reference (and the path on GPU tensors or where
numba is not installed); ``tests/pretrain/test_color_kernels.py`` checks both give the same views.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

try:
    import numba
except ImportError:  # the torch ops in pretrain.transforms are used instead
    numba = None

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


def available() -> bool:
    """Whether the fused kernels can run here (numba is importable)."""
    return numba is not None


def _jit(function):
    """Compiled on first use and cached on disk (``NUMBA_CACHE_DIR``, else next to this file or in the user's
    cache); where no cache folder is writable, compiled in each process instead."""
    if numba is None:
        return function
    try:
        return numba.njit(cache=True, nogil=True, boundscheck=False)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, boundscheck=False)(function)


@_jit
def _hexcone(sector):  # pragma: no cover - compiled
    """``clamp(min(k, 4 - k), 0, 1)`` with ``k = sector mod 6``: how far a channel sits below the maximum."""
    sector -= np.float32(6.0) * np.floor(sector / np.float32(6.0))
    return min(max(min(sector, np.float32(4.0) - sector), np.float32(0.0)), np.float32(1.0))


@_jit
def _jitter_kernel(pixels, flip, order, factors, grayscale, out):  # pragma: no cover - compiled
    height, width = pixels.shape[1], pixels.shape[2]
    count = height * width
    scale = np.float32(255.0)
    for y in range(height):
        for x in range(width):
            source = width - 1 - x if flip else x
            for channel in range(3):
                out[channel, y * width + x] = np.float32(pixels[channel, y, source]) / scale
    red_plane, green_plane, blue_plane = out[0], out[1], out[2]
    red_weight, green_weight, blue_weight = (np.float32(GRAY_WEIGHTS[0]), np.float32(GRAY_WEIGHTS[1]),
                                             np.float32(GRAY_WEIGHTS[2]))
    zero, one = np.float32(0.0), np.float32(1.0)
    for op in order:
        factor = np.float32(factors[op])
        other = np.float32(1.0) - factor
        if op == 0:  # brightness: blend with black
            for i in range(3 * count):
                out.flat[i] = min(max(out.flat[i] * factor, zero), one)
        elif op == 1:  # contrast: blend with the mean gray level
            total = 0.0
            for i in range(count):
                total += red_plane[i] * red_weight + green_plane[i] * green_weight + blue_plane[i] * blue_weight
            mean = np.float32(total / count) * other
            for i in range(3 * count):
                out.flat[i] = min(max(out.flat[i] * factor + mean, zero), one)
        elif op == 2:  # saturation: blend with each pixel's gray level
            for i in range(count):
                red, green, blue = red_plane[i], green_plane[i], blue_plane[i]
                gray = (red * red_weight + green * green_weight + blue * blue_weight) * other
                red_plane[i] = min(max(red * factor + gray, zero), one)
                green_plane[i] = min(max(green * factor + gray, zero), one)
                blue_plane[i] = min(max(blue * factor + gray, zero), one)
        else:  # hue: rotate in the HSV hexcone by factor turns (6 * factor sextants)
            shift = np.float32(6.0) * factor
            for i in range(count):
                red, green, blue = red_plane[i], green_plane[i], blue_plane[i]
                maximum = max(red, max(green, blue))
                chroma = maximum - min(red, min(green, blue))
                inverse = one / max(chroma, np.float32(1e-12))
                if maximum == red:
                    hue = (green - blue) * inverse
                elif maximum == green:
                    hue = (blue - red) * inverse + np.float32(2.0)
                else:
                    hue = (red - green) * inverse + np.float32(4.0)
                hue += shift
                red_plane[i] = maximum - chroma * _hexcone(hue + np.float32(5.0))
                green_plane[i] = maximum - chroma * _hexcone(hue + np.float32(3.0))
                blue_plane[i] = maximum - chroma * _hexcone(hue + np.float32(1.0))
    if grayscale:
        for i in range(count):
            red_plane[i] = red_plane[i] * red_weight + green_plane[i] * green_weight + blue_plane[i] * blue_weight


@_jit
def _finish_kernel(view, solarize, threshold, mean, inverse_std, out):  # pragma: no cover - compiled
    channels, count = view.shape[0], view.shape[1]
    one = np.float32(1.0)
    for channel in range(3):
        source = channel if channels == 3 else 0
        for i in range(count):
            value = view[source, i]
            if solarize and value >= threshold:
                value = one - value
            out[channel, i] = (value - mean[channel]) * inverse_std[channel]


def jitter_view(pixels: Tensor, flip: bool, jitter: tuple[tuple[int, ...], tuple[float, ...]] | None,
                grayscale: bool) -> Tensor:
    """Float32 (3 or 1, H, W) view in [0, 1] of a uint8 (3, H, W) crop: flipped, jittered, grayscaled."""
    height, width = pixels.shape[-2:]
    out = np.empty((3, height * width), dtype=np.float32)
    order, factors = jitter if jitter is not None else ((), (1.0, 1.0, 1.0, 0.0))
    _jitter_kernel(pixels.numpy(), flip, np.asarray(order, dtype=np.int64), np.asarray(factors, dtype=np.float64),
                   grayscale, out)
    view = torch.from_numpy(out).view(3, height, width)
    return view[:1] if grayscale else view


def finish_view(view: Tensor, solarize: bool, threshold: float, mean: np.ndarray, inverse_std: np.ndarray) -> Tensor:
    """Solarised (when asked) and normalised float32 (3, H, W) view of a float (3 or 1, H, W) one."""
    height, width = view.shape[-2:]
    out = np.empty((3, height * width), dtype=np.float32)
    _finish_kernel(view.reshape(view.shape[0], -1).contiguous().numpy(), solarize, np.float32(threshold), mean,
                   inverse_std, out)
    return torch.from_numpy(out).view(3, height, width)
