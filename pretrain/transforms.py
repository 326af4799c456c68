"""Barlow Twins two-view augmentations: a fast tensor implementation and the official PIL chain.

Both views: RandomResizedCrop(size, scale=(0.08, 1), bicubic), horizontal flip (p=0.5), ColorJitter
(brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1; p=0.8, the four ops in random order), grayscale
(p=0.2), Gaussian blur with sigma ~ U(0.1, 2.0) (p=1.0 / 0.1), solarization at 128 (p=0.0 / 0.2), then
ImageNet normalisation. ``reference_pil_transform`` is the official facebookresearch/barlowtwins chain.

``BarlowTwinsTransform`` draws the same random parameters from the same distributions, in the same order
of operations, but works on tensors: the image becomes a uint8 tensor once, each view is cropped and
resized by torchvision's uint8 antialiased bicubic kernel (4-7x faster than PIL's), and everything after
runs on the small float32 crop in [0, 1] (on CPU as the fused kernels of ``pretrain.color_kernels``, which give
the torch ops' results up to float32 rounding); see docs/benchmarks.md for the speed-up. Numerical differences
from the PIL chain, none of which changes what an augmentation does:

* the resized crop differs from PIL's by fixed-point rounding: mostly 0 or 1 level of 255, a few at most;
* no rounding to uint8 between operations (PIL rounds after each of flip/jitter/gray/blur/solarize), so
  values differ by up to a few 1/255 steps; the contrast mean is not rounded to an integer either;
* hue is shifted exactly in HSV hexcone space (as torchvision's tensor ``adjust_hue``); PIL quantises H, S
  and V to 8 bits and the shift to ``int8(255 * hue_factor)``;
* grayscale uses ITU-R 601 weights 0.2989/0.587/0.114 (PIL: 299/587/114 per mille, integer arithmetic);
* the blur is a true Gaussian truncated at ``ceil(3 * sigma)`` with replicated edges; PIL approximates
  the same sigma by three box blurs (equal variance, similar extent, also with replicated edges).

Random numbers come from the same generators, in the same order and with the same comparisons as in
the official chain (torch for crop, flip, jitter and grayscale; Python's ``random`` for blur and
solarisation; torch's DataLoader seeds both per worker), so under one seed both chains draw identical
augmentation parameters and their views differ only by the numerics above.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as nn_functional
import torchvision.transforms as transforms_v1
import torchvision.transforms.v2.functional as tensor_ops
from PIL import Image, ImageFilter, ImageOps
from torch import Tensor

from pretrain import color_kernels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SCALE = (0.08, 1.0)
BICUBIC = transforms_v1.InterpolationMode.BICUBIC
FLIP_PROBABILITY = 0.5
JITTER_PROBABILITY = 0.8
JITTER_STRENGTH = dict(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
GRAYSCALE_PROBABILITY = 0.2
BLUR_SIGMA = (0.1, 2.0)
SOLARIZE_THRESHOLD = 128


@dataclass(frozen=True)
class ViewRecipe:
    """What differs between the two views: how often they are blurred and solarised."""

    blur_probability: float
    solarize_probability: float


VIEW_RECIPES = (ViewRecipe(blur_probability=1.0, solarize_probability=0.0),
                ViewRecipe(blur_probability=0.1, solarize_probability=0.2))

# ColorJitter's draw: the order of (brightness, contrast, saturation, hue) and the four factors.
JitterParams = tuple[tuple[int, ...], tuple[float, float, float, float]]


@dataclass(frozen=True)
class ViewParams:
    """The random choices of one view; ``box`` is (top, left, height, width) on the full-size image."""

    box: tuple[int, int, int, int]
    flip: bool
    jitter: JitterParams | None
    grayscale: bool
    blur_sigma: float | None
    solarize: bool


def adjust_hue(image: Tensor, hue_factor: float) -> Tensor:
    """Rotates the HSV hue of a float RGB image (3, H, W) in [0, 1] by ``hue_factor`` turns.

    Same result as torchvision's tensor ``adjust_hue`` (up to float rounding) at a fraction of its cost:
    value (max) and chroma (max - min) are kept, and each channel is ``max - chroma * f(hue + offset)``
    with the hexcone profile ``f(k) = clamp(min(k, 4 - k), 0, 1)``, ``k`` taken modulo 6.
    """
    red, green, blue = image.unbind(0)
    maximum, minimum = image.amax(dim=0), image.amin(dim=0)
    chroma = maximum - minimum
    inverse_chroma = chroma.clamp_min(1e-12).reciprocal_()  # gray pixels: chroma 0 makes the hue irrelevant
    # Which channel holds the maximum (red wins ties, then green) as 0/1 weights: torch.where is slow on CPU.
    is_red = (maximum == red).to(image.dtype)
    is_green = (maximum == green).to(image.dtype).mul_(1 - is_red)
    hue = (green - blue).mul_(is_red)
    hue.addcmul_((blue - red).add_(chroma, alpha=2), is_green)
    hue.addcmul_((red - green).add_(chroma, alpha=4), 1 - is_red - is_green).mul_(inverse_chroma)
    sector = hue.add_(6 * hue_factor) + _HEXCONE_OFFSETS.to(image.device)
    sector.sub_(torch.floor(sector * (1 / 6)).mul_(6))
    return torch.minimum(sector, 4 - sector).clamp_(0, 1).mul_(chroma).neg_().add_(maximum)


_HEXCONE_OFFSETS = torch.tensor([5.0, 3.0, 1.0]).view(3, 1, 1)


def gaussian_kernel(sigma: float) -> list[float]:
    """Normalised 1-d Gaussian weights for offsets ``-r..r``, ``r = ceil(3 * sigma)``."""
    radius = math.ceil(3 * sigma)
    weights = [math.exp(-0.5 * (offset / sigma) ** 2) for offset in range(-radius, radius + 1)]
    total = sum(weights)
    return [weight / total for weight in weights]


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of a (C, H, W) float image with replicated borders.

    Written as ``r`` shifted, symmetric multiply-adds per axis: on one CPU core this beats both
    ``conv2d`` (depthwise kernels are slow there) and torchvision's 2-d-kernel ``gaussian_blur``.
    """
    weights = gaussian_kernel(sigma)
    radius = len(weights) // 2
    height, width = image.shape[-2:]
    padded = nn_functional.pad(image, (radius, radius, radius, radius), mode="replicate")
    columns = padded[:, radius:radius + height, :] * weights[radius]
    for offset in range(1, radius + 1):
        above = padded[:, radius - offset:radius - offset + height, :]
        below = padded[:, radius + offset:radius + offset + height, :]
        columns.add_(above, alpha=weights[radius + offset]).add_(below, alpha=weights[radius + offset])
    blurred = columns[:, :, radius:radius + width] * weights[radius]
    for offset in range(1, radius + 1):
        left = columns[:, :, radius - offset:radius - offset + width]
        right = columns[:, :, radius + offset:radius + offset + width]
        blurred.add_(left, alpha=weights[radius + offset]).add_(right, alpha=weights[radius + offset])
    return blurred


def solarize(image: Tensor, threshold: float) -> Tensor:
    """Inverts (``1 - x``) the values at or above ``threshold`` of a float image in [0, 1], as torchvision's
    ``solarize``, written as arithmetic because ``torch.where`` is slow on CPU."""
    above = (image >= threshold).to(image.dtype)
    return image.addcmul(above, image.mul(-2).add_(1))


def _torch_chance(probability: float) -> bool:
    """``torch.rand(1) < p``, the draw of RandomHorizontalFlip/RandomGrayscale (RandomApply: ``<=``)."""
    return torch.rand(1).item() < probability


def _python_chance(probability: float) -> bool:
    """``random.random() < p``, the draw of the official GaussianBlur/Solarization (also when p is 0)."""
    return random.random() < probability


class BarlowTwinsTransform:
    """Maps an image to two augmented, ImageNet-normalised float32 (3, size, size) views.

    The image is a PIL image (any mode; converted to RGB) or an RGB uint8 (3, H, W) tensor.
    """

    def __init__(self, size: int = 224, crop_scale: tuple[float, float] | None = None,
                 view_recipes: tuple[ViewRecipe, ViewRecipe] | None = None, fused: bool | None = None) -> None:
        """``crop_scale`` and ``view_recipes`` default to the paper's ``CROP_SCALE`` and ``VIEW_RECIPES``;
        ``fused`` runs the colour ops of CPU views as ``pretrain.color_kernels`` (default: when available)."""
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = size
        self.view_recipes = view_recipes  # None: the module's VIEW_RECIPES, read at each call
        # Holds the crop parameters; its ``get_params`` draws each view's crop box.
        self.crop = transforms_v1.RandomResizedCrop(size, scale=crop_scale or CROP_SCALE, interpolation=BICUBIC)
        self.jitter = transforms_v1.ColorJitter(**JITTER_STRENGTH)
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self._inverse_std = 1 / torch.tensor(IMAGENET_STD).view(3, 1, 1)
        self.fused = color_kernels.available() if fused is None else fused
        self._kernel_mean, self._kernel_inverse_std = self._mean.numpy().ravel(), self._inverse_std.numpy().ravel()
        if self.fused and not color_kernels.available():
            raise ImportError("fused=True needs numba (pip install numba)")
        self._jitter_ops: dict[int, Callable[[Tensor, float], Tensor]] = {
            0: tensor_ops.adjust_brightness, 1: tensor_ops.adjust_contrast,
            2: tensor_ops.adjust_saturation, 3: adjust_hue,
        }

    def __call__(self, image: Image.Image | Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(image, Image.Image):
            image = tensor_ops.pil_to_tensor(image if image.mode == "RGB" else image.convert("RGB"))
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"expected a PIL image or an RGB uint8 (3, H, W) tensor, got {image.dtype} "
                             f"{tuple(image.shape)}")
        first, second = self.view_recipes or VIEW_RECIPES
        return self.view(image, first), self.view(image, second)

    def view(self, image: Tensor, recipe: ViewRecipe) -> Tensor:
        """One augmented view of an RGB uint8 (3, H, W) image."""
        return self.apply_view(image, self.draw_view(image.shape[-2], image.shape[-1], recipe))

    def draw_view(self, height: int, width: int, recipe: ViewRecipe) -> ViewParams:
        """Draws one view's random choices for a ``height`` x ``width`` image, without touching pixels.

        Same generators, order and comparisons as the official chain; ``apply_view`` draws nothing more,
        so a caller may draw both views before decoding (``pretrain.decode_views``).
        """
        geometry = torch.empty(()).expand(3, height, width)  # get_params reads only the shape
        box = tuple(self.crop.get_params(geometry, self.crop.scale, self.crop.ratio))
        flip = _torch_chance(FLIP_PROBABILITY)
        jitter = None
        if not JITTER_PROBABILITY < torch.rand(1).item():
            order, *factors = transforms_v1.ColorJitter.get_params(
                self.jitter.brightness, self.jitter.contrast, self.jitter.saturation, self.jitter.hue)
            jitter = (tuple(order.tolist()), tuple(factors))
        grayscale = _torch_chance(GRAYSCALE_PROBABILITY)
        blur_sigma = None
        if _python_chance(recipe.blur_probability):
            low, high = BLUR_SIGMA
            blur_sigma = random.random() * (high - low) + low
        return ViewParams(box, flip, jitter, grayscale, blur_sigma, _python_chance(recipe.solarize_probability))

    def apply_view(self, image: Tensor, params: ViewParams, box: tuple[int, int, int, int] | None = None) -> Tensor:
        """The view ``params`` describe; ``box`` (top, left, height, width) replaces ``params.box`` when the
        image is a reduced-size decode of the one the parameters were drawn for."""
        top, left, height, width = params.box if box is None else box
        pixels = tensor_ops.resized_crop(image, top, left, height, width, list(self.crop.size),
                                         interpolation=BICUBIC, antialias=True)
        if self.fused and pixels.device.type == "cpu":
            view = color_kernels.jitter_view(pixels, params.flip, params.jitter, params.grayscale)
            if params.blur_sigma is not None:
                view = gaussian_blur(view, params.blur_sigma)
            return color_kernels.finish_view(view, params.solarize, SOLARIZE_THRESHOLD / 255, self._kernel_mean,
                                             self._kernel_inverse_std)
        if params.flip:
            pixels = pixels.flip(-1)
        view = pixels.to(torch.float32).div_(255)
        if params.jitter is not None:
            view = self.color_jitter(view, params.jitter)
        if params.grayscale:
            view = tensor_ops.rgb_to_grayscale(view, num_output_channels=1)  # 1 channel until normalisation
        if params.blur_sigma is not None:
            view = gaussian_blur(view, params.blur_sigma)
        if params.solarize:
            view = solarize(view, threshold=SOLARIZE_THRESHOLD / 255)
        return (view - self._mean).mul_(self._inverse_std)

    def color_jitter(self, view: Tensor, jitter: JitterParams | None = None) -> Tensor:
        """ColorJitter on a float view: ops in ``jitter``'s order with its factors (drawn as torchvision does
        when not given)."""
        if jitter is None:
            order, *factors = transforms_v1.ColorJitter.get_params(
                self.jitter.brightness, self.jitter.contrast, self.jitter.saturation, self.jitter.hue)
            jitter = (tuple(order.tolist()), tuple(factors))
        order, factors = jitter
        for op_index in order:
            view = self._jitter_ops[op_index](view, factors[op_index])
        return view


class _OfficialGaussianBlur:
    """The official ``GaussianBlur``: PIL blur with sigma ~ U(0.1, 2.0), drawn with Python's ``random``."""

    def __init__(self, probability: float) -> None:
        self.probability = probability

    def __call__(self, image: Image.Image) -> Image.Image:
        if random.random() < self.probability:
            low, high = BLUR_SIGMA
            return image.filter(ImageFilter.GaussianBlur(random.random() * (high - low) + low))
        return image


class _OfficialSolarization:
    """The official ``Solarization``: ``ImageOps.solarize`` (threshold 128) with Python's ``random``."""

    def __init__(self, probability: float) -> None:
        self.probability = probability

    def __call__(self, image: Image.Image) -> Image.Image:
        return ImageOps.solarize(image) if random.random() < self.probability else image


def _official_view(size: int, recipe: ViewRecipe) -> Callable[[Image.Image], Tensor]:
    return transforms_v1.Compose([
        transforms_v1.RandomResizedCrop(size, scale=CROP_SCALE, interpolation=BICUBIC),
        transforms_v1.RandomHorizontalFlip(p=FLIP_PROBABILITY),
        transforms_v1.RandomApply([transforms_v1.ColorJitter(**JITTER_STRENGTH)], p=JITTER_PROBABILITY),
        transforms_v1.RandomGrayscale(p=GRAYSCALE_PROBABILITY),
        _OfficialGaussianBlur(recipe.blur_probability),
        _OfficialSolarization(recipe.solarize_probability),
        transforms_v1.ToTensor(),
        transforms_v1.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])


def reference_pil_transform(size: int = 224) -> Callable[[Image.Image], tuple[Tensor, Tensor]]:
    """The official two-view PIL chain (``Transform`` of facebookresearch/barlowtwins), at ``size``."""
    first, second = (_official_view(size, recipe) for recipe in VIEW_RECIPES)
    return lambda image: (first(image), second(image))
