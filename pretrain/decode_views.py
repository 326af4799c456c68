"""Two Barlow Twins views straight from encoded image bytes, decoding only what the crops need.

The augmentation distribution is ``BarlowTwinsTransform``'s: both views' parameters are drawn first, from
the same generators in the same order, on the full-resolution geometry read from the header. Then the image
is decoded at the largest DCT reduction (``pretrain.jpeg_decode``) at which both crop boxes still span at
least the output size, and each box is mapped to the reduced image. The crop is then resized from at least
``size`` pixels per side, so detail is kept; the mapped box edges move by at most half a reduced pixel.
"""

from __future__ import annotations

from torch import Tensor

from pretrain.jpeg_decode import decode_rgb, image_size, reduced_box, reduction_for
from pretrain.transforms import VIEW_RECIPES, BarlowTwinsTransform


class DecodingTwoViewTransform:
    """Maps JPEG (or any PIL-readable) bytes to two float32 (3, size, size) normalised views."""

    def __init__(self, size: int = 224, reduce: bool = True, views: BarlowTwinsTransform | None = None) -> None:
        self.views = views or BarlowTwinsTransform(size)  # its crop scale and view recipes are the ones drawn
        self.size = size
        self.reduce = reduce

    def __call__(self, blob: bytes) -> tuple[Tensor, Tensor]:
        height, width = image_size(blob)
        params = [self.views.draw_view(height, width, recipe) for recipe in self.views.view_recipes or VIEW_RECIPES]
        reduction = reduction_for([view.box for view in params], self.size) if self.reduce else 1
        image = decode_rgb(blob, reduction)
        reduced_height, reduced_width = image.shape[-2:]
        first, second = (self.views.apply_view(image, view, reduced_box(view.box, reduction, reduced_height,
                                                                        reduced_width))
                         for view in params)
        return first, second
