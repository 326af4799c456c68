"""Rendering demo images: a textured background with coloured shapes whose outlines are known."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .shapes import SHAPES, shape_polygon

JPEG_QUALITY = 90


@dataclass(frozen=True)
class SceneObject:
    """One drawn shape: its class, outline (pixel coordinates) and VOC ``difficult`` flag."""

    shape: str
    polygon: list[tuple[float, float]]
    difficult: bool = False

    def extent(self) -> tuple[float, float, float, float]:
        """Tight continuous bounds ``(x_min, y_min, x_max, y_max)`` of the outline."""
        xs, ys = [x for x, _ in self.polygon], [y for _, y in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random colour field plus stripes: texture that carries no class information."""
    grid = int(rng.integers(2, 7))
    coarse = rng.uniform(50, 200, size=(grid, grid, 3)).astype(np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), dtype=np.float32)
    period, phase, angle = rng.uniform(6, 24), rng.uniform(0, 2 * math.pi), rng.uniform(0, math.pi)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    stripes = np.sin(2 * math.pi * (cols * math.cos(angle) + rows * math.sin(angle)) / period + phase)
    return field + rng.uniform(5, 25) * stripes[..., None]


def _shape_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated colour of random hue, so colour is never a shortcut to the class."""
    red, green, blue = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.65, 1.0), rng.uniform(0.55, 1.0))
    return round(red * 255), round(green * 255), round(blue * 255)


def render(rng: np.random.Generator, size: int, objects: list[SceneObject]) -> Image.Image:
    """Draws ``objects`` over a random background and adds pixel noise to everything."""
    canvas = Image.fromarray(np.clip(_background(rng, size), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for scene_object in objects:
        draw.polygon(scene_object.polygon, fill=_shape_colour(rng))
    noisy = np.asarray(canvas, dtype=np.float32) + rng.normal(0, rng.uniform(4, 14), size=(size, size, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _place(rng: np.random.Generator, size: int, radius: float) -> tuple[float, float]:
    """A centre keeping a shape of circumradius ``radius`` one pixel inside the image."""
    low, high = radius + 1, size - radius - 1
    return float(rng.uniform(low, high)), float(rng.uniform(low, high))


def classification_image(rng: np.random.Generator, size: int, shape: str) -> Image.Image:
    """One large shape of class ``shape`` at a random position, scale and rotation."""
    radius = float(rng.uniform(0.22, 0.42)) * size
    polygon = shape_polygon(shape, _place(rng, size, radius), radius, float(rng.uniform(0, 2 * math.pi)))
    return render(rng, size, [SceneObject(shape, polygon)])


def detection_scene(
    rng: np.random.Generator, size: int, first_shape: str, difficult_rate: float = 0.0
) -> tuple[Image.Image, list[SceneObject]]:
    """1-3 non-overlapping shapes (the first of class ``first_shape``, the rest random).

    Circumscribed circles never intersect, so every outline is fully visible: the polygon is the
    exact mask and its bounds the exact box. Each object is flagged difficult with ``difficult_rate``.
    """
    wanted = int(rng.integers(1, 4))
    placed: list[tuple[float, float, float]] = []
    objects: list[SceneObject] = []
    for index in range(wanted):
        shape = first_shape if index == 0 else SHAPES[int(rng.integers(len(SHAPES)))]
        for _attempt in range(50):
            radius = float(rng.uniform(0.12, 0.24)) * size
            cx, cy = _place(rng, size, radius)
            if all(math.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in placed):
                break
        else:
            continue  # no free spot left: the scene keeps fewer objects
        placed.append((cx, cy, radius))
        polygon = shape_polygon(shape, (cx, cy), radius, float(rng.uniform(0, 2 * math.pi)))
        objects.append(SceneObject(shape, polygon, difficult=bool(rng.uniform() < difficult_rate)))
    return render(rng, size, objects), objects


def save_jpeg(image: Image.Image, path: Path) -> None:
    """Writes a JPEG with fixed settings (same pixels -> same bytes), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=JPEG_QUALITY)
