"""The DALI graph of the two Barlow Twins views: decode once, then crop-resize, flip, jitter, grayscale, blur,
solarize and normalise each view, with per-sample parameters fed from Python.

The parameters are drawn by ``BarlowTwinsTransform.draw_view`` (``pretrain.dali_loader`` feeds them), so the
views follow the recipe's distribution exactly and depend only on (seed, epoch, sample), which makes a
resumed run see the same views. Each op mirrors its tensor counterpart in ``pretrain.transforms``:

* decode + crop: ``fn.decoders.image_slice`` decodes only the drawn box (DALI's fused decode and crop; nvJPEG
  region-of-interest decoding on a GPU), then ``fn.resize`` bicubic with antialiasing, rounded to uint8 as
  torchvision's uint8 kernel does;
* ColorJitter: the four ops in the drawn order (DALI conditionals), each with torchvision's float formula:
  brightness ``x*f``, contrast blend with the gray mean, saturation blend with the gray image, hue rotated in
  the HSV hexcone (``fn.hue`` rotates in YIQ instead, so it is not used); all clamped to [0, 1];
* grayscale: ITU-R 601 weights, 3 equal channels; blur: ``fn.gaussian_blur`` with window ``2*ceil(3*sigma)+1``
  (DALI mirrors the border where the torch path replicates it); solarisation at 128/255.

Each view decodes its own box (``device="mixed"``: nvJPEG on the GPU). ``fn.decoders.image_random_crop``
would draw the boxes with DALI's generator; ``image_slice`` takes the boxes drawn in Python, so the crops follow
the seed scheme (seed, epoch, sample) of the torch loader and a resumed run sees the same views.
"""

from __future__ import annotations

from nvidia.dali import fn, pipeline_def, types
from nvidia.dali import math as dali_math
from nvidia.dali.pipeline import Pipeline

from pretrain.color_kernels import GRAY_WEIGHTS
from pretrain.transforms import IMAGENET_MEAN, IMAGENET_STD, SOLARIZE_THRESHOLD

# Per view: name -> (DALI type, number of dimensions) of the parameter fed for each sample.
VIEW_INPUTS = {"anchor": (types.INT32, 1), "shape": (types.INT32, 1), "flip": (types.INT32, 0), "ops": (types.INT32, 1),
               "factors": (types.FLOAT, 1), "gray": (types.BOOL, 0), "blur": (types.BOOL, 0),
               "sigma": (types.FLOAT, 0), "window": (types.INT32, 0), "solarize": (types.BOOL, 0)}
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


def _hwc(x):
    """Arithmetic drops the layout; conditional branches must agree on it."""
    return fn.reshape(x, layout="HWC")


def _gray(x):
    return x[:, :, 0] * GRAY_WEIGHTS[0] + x[:, :, 1] * GRAY_WEIGHTS[1] + x[:, :, 2] * GRAY_WEIGHTS[2]


def _blend(x, other, factor):
    return _hwc(dali_math.clamp(x * factor + other * (1.0 - factor), 0.0, 1.0))


def _hue(x, factor):
    """``pretrain.transforms.adjust_hue`` in DALI arithmetic (HSV hexcone rotation by ``factor`` turns)."""
    red, green, blue = x[:, :, 0], x[:, :, 1], x[:, :, 2]
    maximum = fn.reductions.max(x, axes=2)
    chroma = maximum - fn.reductions.min(x, axes=2)
    is_red = fn.cast(maximum == red, dtype=types.FLOAT)
    is_green = fn.cast(maximum == green, dtype=types.FLOAT) * (1.0 - is_red)
    hue = ((green - blue) * is_red + (blue - red + chroma * 2.0) * is_green
           + (red - green + chroma * 4.0) * (1.0 - is_red - is_green)) / dali_math.max(chroma, 1e-12)
    hue = hue + factor * 6.0
    channels = []
    for offset in (5.0, 3.0, 1.0):
        sector = hue + offset
        sector = sector - dali_math.floor(sector / 6.0) * 6.0
        profile = dali_math.clamp(dali_math.min(sector, 4.0 - sector), 0.0, 1.0)
        channels.append(maximum - profile * chroma)
    return _hwc(fn.stack(*channels, axis=2))


def _jitter_op(x, op, factors):
    """Applies jitter op number ``op`` (-1: none) with its factor; DALI conditionals pick the branch."""
    if op == BRIGHTNESS:
        x = _hwc(dali_math.clamp(x * factors[BRIGHTNESS], 0.0, 1.0))
    elif op == CONTRAST:
        x = _blend(x, fn.reductions.mean(_gray(x)), factors[CONTRAST])
    elif op == SATURATION:
        x = _blend(x, fn.expand_dims(_gray(x), axes=2), factors[SATURATION])
    elif op == HUE:
        x = _hue(x, factors[HUE])
    return x


def _view(encoded, inputs: dict, size: int, gpu: bool):
    # Decode only the drawn box (nvJPEG's region-of-interest decode on a GPU), then resize it: crop first, as
    # torchvision's resized_crop. EXIF orientation is ignored, as by the torch loader's decoders.
    crop = fn.decoders.image_slice(encoded, inputs["anchor"], inputs["shape"], device="mixed" if gpu else "cpu",
                                   output_type=types.RGB, normalized_anchor=False, normalized_shape=False,
                                   axis_names="WH", adjust_orientation=False)
    crop = fn.resize(crop, size=[size, size], interp_type=types.INTERP_CUBIC, antialias=True)
    crop = fn.flip(crop, horizontal=inputs["flip"])
    x = _hwc(fn.cast(crop, dtype=types.FLOAT) / 255.0)
    factors = inputs["factors"].gpu() if gpu else inputs["factors"]
    for position in range(4):
        x = _jitter_op(x, inputs["ops"][position], factors)
    if inputs["gray"]:
        gray = _gray(x)
        x = _hwc(fn.stack(gray, gray, gray, axis=2))
    if inputs["blur"]:
        x = fn.gaussian_blur(x, sigma=inputs["sigma"], window_size=inputs["window"], dtype=types.FLOAT)
    if inputs["solarize"]:
        x = _hwc(x + fn.cast(x >= SOLARIZE_THRESHOLD / 255, dtype=types.FLOAT) * (1.0 - 2.0 * x))
    return fn.crop_mirror_normalize(x, mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), output_layout="HWC",
                                    dtype=types.FLOAT)


@pipeline_def(enable_conditionals=True)
def _two_views(size: int, gpu: bool):
    encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
    views = []
    for view in (1, 2):
        inputs = {name: fn.external_source(name=f"{name}{view}", dtype=dtype, ndim=ndim)
                  for name, (dtype, ndim) in VIEW_INPUTS.items()}
        views.append(_view(encoded, inputs, size, gpu))
    return tuple(views)


def build_pipeline(batch_size: int, size: int, threads: int, device_id: int | None, seed: int) -> Pipeline:
    """A built, synchronous two-view pipeline: on GPU ``device_id``, or on CPU only when it is None.

    Feed ``encoded`` (one uint8 array per sample) and the ``VIEW_INPUTS`` of views 1 and 2 (names with
    suffix 1/2), then ``run()``: it returns the two views as (size, size, 3) normalised float32 samples.
    """
    pipe = _two_views(size=size, gpu=device_id is not None, batch_size=batch_size, num_threads=threads,
                      device_id=device_id, seed=seed, exec_pipelined=False, exec_async=False)
    pipe.build()
    return pipe
