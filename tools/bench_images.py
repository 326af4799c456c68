"""JPEG sets for the pretraining benchmark: generated ImageNet-like images, or variants of real photos.

Both are 500x375 (ImageNet's most common size) and encoded at quality 90. The photos are scikit-learn's two
sample images and scikit-image's bundled colour photos (when scikit-image is installed), each cut into
4:3 crops covering 60-100% of the width, resized (bicubic), randomly mirrored and re-encoded, so that the
set has the statistics of camera images (decoding cost depends on content, and generated noise is not
typical of photos).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 500, 375
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")


def _encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def generated_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """ImageNet-sized (500x375) JPEGs: smooth random colour fields plus fine texture."""
    generator = np.random.default_rng(seed)
    blobs = []
    for _ in range(count):
        colours = generator.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        coarse = Image.fromarray(colours).resize((WIDTH, HEIGHT), Image.BICUBIC)
        texture = generator.normal(0, 18, (HEIGHT, WIDTH, 3))
        pixels = np.clip(np.asarray(coarse, dtype=np.float64) + texture, 0, 255).astype(np.uint8)
        blobs.append(_encode(Image.fromarray(pixels)))
    return blobs


def source_photos() -> dict[str, np.ndarray]:
    """The real photos available here: scikit-learn's (always) and scikit-image's (if installed)."""
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    photos = {Path(name).name: pixels for name, pixels in zip(sample.filenames, sample.images)}
    try:
        import skimage.data
    except ImportError:
        return photos
    for name in SKIMAGE_PHOTOS:
        try:
            pixels = getattr(skimage.data, name)()
        except Exception:  # noqa: BLE001  (a photo scikit-image would have to download)
            continue
        if pixels.ndim == 3 and pixels.shape[2] == 3:
            photos[f"skimage.{name}"] = pixels
    return photos


def photo_jpegs(count: int, seed: int = 0) -> tuple[list[bytes], list[str]]:
    """``count`` 500x375 JPEG variants of the real photos, and the photo names used."""
    photos = source_photos()
    names = sorted(photos)
    generator = np.random.default_rng(seed)
    blobs = []
    for number in range(count):
        pixels = photos[names[number % len(names)]]
        height, width = pixels.shape[:2]
        crop_width = min(width, int(height * 4 / 3))
        crop_width = int(crop_width * generator.uniform(0.6, 1.0))
        crop_height = int(crop_width * 3 / 4)
        left = int(generator.integers(0, width - crop_width + 1))
        top = int(generator.integers(0, height - crop_height + 1))
        image = Image.fromarray(pixels[top:top + crop_height, left:left + crop_width]).resize((WIDTH, HEIGHT),
                                                                                             Image.BICUBIC)
        if generator.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        blobs.append(_encode(image))
    return blobs, names


def write_image_folder(blobs: list[bytes], root: Path, classes: int = 2) -> Path:
    """Writes ``blobs`` as ``root/train/class_<k>/img_<n>.jpg`` (an ImageFolder tree); returns ``root/train``."""
    train = root / "train"
    for number, blob in enumerate(blobs):
        folder = train / f"class_{number % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img_{number:05d}.jpg").write_bytes(blob)
    return train
