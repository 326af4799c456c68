"""Packs a training folder into tar shards (webdataset layout) plus ``shards.json``, for sequential reading.

    python tools/make_shards.py /datasets/imagenet/train /datasets/imagenet_shards

SRC is an ImageFolder tree (``SRC/<class>/<image>``; the class index is stored as ``<key>.cls``) or a flat
folder of images. The original encoded bytes are stored unchanged (no re-encoding), under the file's own
extension. Samples are shuffled once with ``--seed`` before writing, so that each shard mixes all classes
(the loaders then shuffle shards per epoch and samples within a buffer). A new shard starts when the current
one's members (tar headers and padding included) would exceed ``--shard-size`` MB; Python's tarfile then
pads each file to a multiple of 10240 bytes. The index is written last and atomically: a folder with
``shards.json`` is complete. Unreadable images are copied as they are; the loaders skip and count them.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import webdataset
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.atomic import atomic_write_json  # noqa: E402
from pretrain.data import DataError, list_images  # noqa: E402
from pretrain.shards import IMAGE_EXTENSIONS, INDEX_FILE, Shard, index_dict  # noqa: E402

TAR_BLOCK = 512


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="ImageFolder tree or flat folder of images")
    parser.add_argument("out", type=Path, help="output folder for the shards and shards.json")
    parser.add_argument("--shard-size", type=float, default=1000.0, help="maximum shard size in MB (default 1000)")
    parser.add_argument("--prefix", default="shard", help="shard file names: PREFIX-000000.tar, ...")
    parser.add_argument("--seed", type=int, default=0, help="seed of the one-time shuffle before writing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def _extension(path: str) -> str:
    extension = Path(path).suffix.lower().lstrip(".")
    if extension not in IMAGE_EXTENSIONS:
        raise DataError(f"{path}: extension '.{extension}' is not one the loaders read ({', '.join(IMAGE_EXTENSIONS)})")
    return extension


def _tar_size(sample: dict) -> int:
    """Bytes the sample's members take in a tar file: a header block each, content padded to blocks."""
    members = [value for key, value in sample.items() if not key.startswith("__")]
    return sum(TAR_BLOCK + -(-len(value) // TAR_BLOCK) * TAR_BLOCK for value in members)


def make_shards(src: Path, out: Path, shard_size_mb: float = 1000.0, prefix: str = "shard", seed: int = 0,
                progress: bool = True) -> dict:
    """Writes the shards and ``shards.json`` (see the module docstring); returns the index."""
    if shard_size_mb <= 0:
        raise ValueError(f"--shard-size must be positive, got {shard_size_mb}")
    if (out / INDEX_FILE).exists():
        raise FileExistsError(f"{out / INDEX_FILE} exists: {out} already holds a shard set; choose another folder")
    paths, layout = list_images(src)
    classes = sorted({Path(path).parent.name for path in paths}) if layout == "imagefolder" else []
    labels = {name: number for number, name in enumerate(classes)}
    order = list(range(len(paths)))
    random.Random(seed).shuffle(order)
    key_width = len(str(len(paths) - 1))
    limit = shard_size_mb * 1e6
    out.mkdir(parents=True, exist_ok=True)
    shards: list[Shard] = []
    writer, count, size = None, 0, 0.0
    for position, source_index in enumerate(tqdm(order, desc="writing shards", unit="img", disable=not progress)):
        path = paths[source_index]
        blob = Path(path).read_bytes()
        sample = {"__key__": f"{position:0{key_width}d}", _extension(path): blob}
        if layout == "imagefolder":
            sample["cls"] = str(labels[Path(path).parent.name]).encode()
        sample_size = _tar_size(sample)
        if writer is not None and count and size + sample_size + 2 * TAR_BLOCK > limit:
            writer.close()
            shards[-1] = Shard(shards[-1].name, count)
            writer = None
        if writer is None:
            name = f"{prefix}-{len(shards):06d}.tar"
            writer, count, size = webdataset.TarWriter(str(out / name)), 0, 0.0
            shards.append(Shard(name, 0))
        writer.write(sample)
        count += 1
        size += sample_size
    writer.close()
    shards[-1] = Shard(shards[-1].name, count)
    index = index_dict(shards, classes, source=f"{src} ({layout})")
    atomic_write_json(out / INDEX_FILE, index)
    return index


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        index = make_shards(args.src, args.out, args.shard_size, args.prefix, args.seed, not args.no_progress)
    except (DataError, FileExistsError, ValueError) as error:
        raise SystemExit(f"error: {error}")
    print(f"{index['count']} images in {len(index['shards'])} shard(s), {len(index['classes'])} classes: "
          f"{args.out / INDEX_FILE}")


if __name__ == "__main__":
    main()
