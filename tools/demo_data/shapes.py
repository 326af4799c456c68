"""The five demo classes: shape outlines as polygons, and the fixed mapping onto real dataset names.

Class indices follow the sorted class names, which is also the order torchvision's
``ImageFolder`` assigns, so index ``i`` means the same class in every layout.
"""

from __future__ import annotations

import math

SHAPES: tuple[str, ...] = ("circle", "cross", "square", "star", "triangle")

# Shape -> real Pascal VOC class name (the XML must use VOC names so VOC tooling works unchanged).
VOC_NAMES: dict[str, str] = {
    "circle": "bottle",
    "cross": "aeroplane",
    "square": "tvmonitor",
    "star": "pottedplant",
    "triangle": "boat",
}

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

# Shape -> real COCO category (id, name, supercategory).
COCO_CATEGORIES: dict[str, tuple[int, str, str]] = {
    "circle": (37, "sports ball", "sports"),
    "cross": (5, "airplane", "vehicle"),
    "square": (72, "tv", "electronic"),
    "star": (38, "kite", "sports"),
    "triangle": (28, "umbrella", "accessory"),
}

# Shape -> ImageNet wnid: the first five ILSVRC-2012 synsets, in class-index order.
IMAGENET_WNIDS: dict[str, str] = {
    "circle": "n01440764",
    "cross": "n01443537",
    "square": "n01484850",
    "star": "n01491361",
    "triangle": "n01494475",
}

def _regular(vertices: int, phase: float) -> list[tuple[float, float]]:
    """Regular polygon with circumradius 1; ``phase`` is the angle of the first vertex."""
    angles = (phase + 2 * math.pi * k / vertices for k in range(vertices))
    return [(math.cos(a), math.sin(a)) for a in angles]


def _star(points: int = 5, inner_radius: float = 0.45) -> list[tuple[float, float]]:
    """Star outline alternating between the outer (1) and the inner radius."""
    outline = []
    for k in range(2 * points):
        radius, angle = (1.0 if k % 2 == 0 else inner_radius), math.pi / 2 + k * math.pi / points
        outline.append((radius * math.cos(angle), radius * math.sin(angle)))
    return outline


def _cross(arm: float = 0.34) -> list[tuple[float, float]]:
    """Plus-sign outline; the arm ends stop at ``reach`` so their corners stay inside the unit circle."""
    reach = math.sqrt(1.0 - arm**2)
    a, b = arm, reach
    return [(a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a), (-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a)]


# Outlines in unit coordinates (circumradius 1, centred at the origin).
_UNIT_OUTLINES: dict[str, list[tuple[float, float]]] = {
    "circle": _regular(36, 0.0),
    "cross": _cross(),
    "square": _regular(4, math.pi / 4),
    "star": _star(),
    "triangle": _regular(3, math.pi / 2),
}


def shape_polygon(shape: str, center: tuple[float, float], radius: float, angle: float) -> list[tuple[float, float]]:
    """Outline of ``shape`` rotated by ``angle`` (radians), scaled to ``radius``, moved to ``center``.

    Coordinates are rounded to 0.01 px so the drawn outline, the JSON polygon and the boxes agree.
    """
    outline = _UNIT_OUTLINES.get(shape)
    if outline is None:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    cx, cy = center
    return [
        (round(cx + radius * (x * cos_a - y * sin_a), 2), round(cy + radius * (x * sin_a + y * cos_a), 2))
        for x, y in outline
    ]


def polygon_area(polygon: list[tuple[float, float]]) -> float:
    """Area enclosed by a simple polygon (shoelace formula)."""
    twice_area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1]))
    return abs(twice_area) / 2.0
