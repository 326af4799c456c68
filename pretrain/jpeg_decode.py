"""Image decoding for the training loader: read the size from the header, then decode only as much as needed.

JPEGs are decoded by libjpeg-turbo through ``simplejpeg`` (no PIL object, no extra copy), optionally with the
DCT scaled by 1/2, 1/4 or 1/8: libjpeg then never computes the full-resolution pixels, which is cheaper both
to decode and to resize afterwards. Only these power-of-two scales have SIMD inverse DCTs in libjpeg-turbo
(5/8, 6/8, ... are slower than a full decode). Other formats, and JPEGs libjpeg-turbo refuses in strict mode
(CMYK, some with corrupt-data warnings), go through PIL, which uses ``Image.draft`` for the same reduction.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
import simplejpeg
import torch
from PIL import Image
from torch import Tensor

DCT_REDUCTIONS = (8, 4, 2, 1)  # libjpeg scales 1/8, 1/4, 1/2, 1/1
Box = tuple[int, int, int, int]  # top, left, height, width


class UnreadableImageError(OSError):
    """The bytes are not an image that either decoder can read."""


def image_size(blob: bytes) -> tuple[int, int]:
    """(height, width) of an encoded image, from its header only."""
    try:
        height, width, _colorspace, _subsampling = simplejpeg.decode_jpeg_header(blob)
        return height, width
    except ValueError:
        pass
    try:
        with Image.open(io.BytesIO(blob)) as image:
            width, height = image.size
            return height, width
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImageError(f"not a readable image ({type(error).__name__}: {error})") from error


def reduction_for(boxes: Sequence[Box], output_size: int) -> int:
    """The largest DCT reduction after which every crop box still spans >= ``output_size`` pixels per side,
    so the crops are still downscaled (never upscaled more than before) and keep their detail."""
    smallest_side = min(min(height, width) for _top, _left, height, width in boxes)
    return next((factor for factor in DCT_REDUCTIONS if smallest_side >= factor * output_size), 1)


def decode_rgb(blob: bytes, reduction: int = 1) -> Tensor:
    """RGB uint8 (3, h, w) pixels, decoded at 1/``reduction`` of the full size (``h = ceil(H / reduction)``).

    The tensor is a channels-last view of the decoder's (h, w, 3) buffer: torchvision's uint8 resize kernel
    works on that layout directly, so no transposing copy is made.
    """
    if reduction not in DCT_REDUCTIONS:
        raise ValueError(f"reduction must be one of {DCT_REDUCTIONS}, got {reduction}")
    try:
        height, width, _colorspace, _subsampling = simplejpeg.decode_jpeg_header(blob)
        pixels = simplejpeg.decode_jpeg(blob, "RGB", min_height=math.ceil(height / reduction),
                                        min_width=math.ceil(width / reduction))
    except ValueError:
        pixels = _decode_with_pil(blob, reduction)
    return torch.from_numpy(pixels).permute(2, 0, 1)


def _decode_with_pil(blob: bytes, reduction: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(blob)) as image:
            width, height = image.size
            if reduction > 1:
                image.draft("RGB", (math.ceil(width / reduction), math.ceil(height / reduction)))
            if image.size != (math.ceil(width / reduction), math.ceil(height / reduction)):
                image = image.resize((math.ceil(width / reduction), math.ceil(height / reduction)), Image.BOX)
            return np.array(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImageError(f"not a readable image ({type(error).__name__}: {error})") from error


def reduced_box(box: Box, reduction: int, reduced_height: int, reduced_width: int) -> Box:
    """``box`` (on the full-size image) on the image decoded at 1/``reduction``: each edge divided by the
    reduction and rounded to the nearest pixel (so it moves by at most half a reduced pixel)."""
    top, left, height, width = box
    new_top, new_left = round(top / reduction), round(left / reduction)
    bottom = min(max(round((top + height) / reduction), new_top + 1), reduced_height)
    right = min(max(round((left + width) / reduction), new_left + 1), reduced_width)
    return new_top, new_left, bottom - new_top, right - new_left
