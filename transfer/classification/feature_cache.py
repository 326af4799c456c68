"""On-disk cache of extracted features: memory-mappable ``.npy`` files plus a JSON sidecar.

A cache entry is a directory named after a hash of its key (weights hash, arch, dataset, split, layer,
transform, image size, dtype) holding ``features.npy`` (N x D, float16/float32), ``labels.npy``,
``valid.npy`` (False for images skipped as unreadable) and ``meta.json`` (the key, shapes and whether
the entry is complete). Rows are written in fixed-size chunks; each finished chunk leaves a marker file,
so an interrupted extraction resumes at the first unfinished chunk, and several processes (``torchrun``)
can fill disjoint chunks of the same entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write, atomic_write_json

CACHE_FORMAT = "transfer-feature-cache-v1"
DTYPES = ("float16", "float32")


@dataclass(frozen=True)
class CachedFeatures:
    """Features (memory-mapped, read-only), labels and validity mask of one cache entry."""

    features: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    meta: dict[str, Any]

    def valid_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Features (float32, in memory) and labels of the readable images only."""
        return np.asarray(self.features[self.valid], dtype=np.float32), self.labels[self.valid]


def cache_key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class FeatureCache:
    """One cache entry under ``root`` for ``key`` (a JSON-serialisable dict)."""

    def __init__(self, root: str | Path, key: dict[str, Any]) -> None:
        self.key = dict(key)
        slug = "-".join(str(self.key.get(part, "")) for part in ("dataset", "split", "layer")).strip("-") or "features"
        self.directory = Path(root) / f"{slug}-{cache_key_digest(self.key)}"
        self.meta_path = self.directory / "meta.json"
        self.features_path = self.directory / "features.npy"
        self.labels_path = self.directory / "labels.npy"
        self.valid_path = self.directory / "valid.npy"
        self.chunks_dir = self.directory / "chunks"

    def read_meta(self) -> dict[str, Any] | None:
        if not self.meta_path.is_file():
            return None
        try:
            meta = json.loads(self.meta_path.read_text())
        except json.JSONDecodeError:
            return None
        return meta if meta.get("format") == CACHE_FORMAT and meta.get("key") == self.key else None

    @property
    def complete(self) -> bool:
        meta = self.read_meta()
        return bool(meta and meta.get("complete")) and all(
            path.is_file() for path in (self.features_path, self.labels_path, self.valid_path))

    def load(self) -> CachedFeatures:
        """The finished entry, features memory-mapped read-only."""
        if not self.complete:
            raise FileNotFoundError(f"feature cache {self.directory} is missing or incomplete")
        return CachedFeatures(np.load(self.features_path, mmap_mode="r"), np.load(self.labels_path),
                              np.load(self.valid_path), self.read_meta() or {})

    def prepare(self, num_rows: int, dim: int, dtype: str, labels: np.ndarray, chunk_size: int) -> None:
        """Creates the entry (or keeps a partial one with the same key and shape, to resume)."""
        if dtype not in DTYPES:
            raise ValueError(f"feature dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        meta = self.read_meta()
        shape_matches = meta is not None and (meta.get("num_rows"), meta.get("dim"), meta.get("chunk_size")) == (
            num_rows, dim, chunk_size) and self.features_path.is_file()
        if shape_matches:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.chunks_dir.glob("*.npy") if self.chunks_dir.is_dir() else []:
            stale.unlink()
        self.chunks_dir.mkdir(exist_ok=True)
        np.lib.format.open_memmap(self.features_path, mode="w+", dtype=dtype, shape=(num_rows, dim)).flush()
        with atomic_write(self.labels_path) as handle:
            np.save(handle, np.asarray(labels))
        atomic_write_json(self.meta_path, {"format": CACHE_FORMAT, "key": self.key, "num_rows": num_rows, "dim": dim,
                                           "dtype": dtype, "chunk_size": chunk_size, "complete": False})

    def num_chunks(self) -> int:
        meta = self.read_meta() or {}
        return -(-meta["num_rows"] // meta["chunk_size"])

    def chunk_rows(self, chunk: int) -> range:
        meta = self.read_meta() or {}
        start = chunk * meta["chunk_size"]
        return range(start, min(start + meta["chunk_size"], meta["num_rows"]))

    def pending_chunks(self, rank: int = 0, world_size: int = 1) -> list[int]:
        """Unfinished chunks of this process (chunks are dealt round-robin over processes)."""
        return [chunk for chunk in range(rank, self.num_chunks(), world_size)
                if not (self.chunks_dir / f"{chunk:08d}.npy").is_file()]

    def open_for_writing(self) -> np.ndarray:
        return np.load(self.features_path, mmap_mode="r+")

    def write_chunk(self, features: np.ndarray, chunk: int, rows: np.ndarray, valid: np.ndarray) -> None:
        """Writes one chunk's rows, flushes them, then marks the chunk done (marker = its validity mask)."""
        expected = self.chunk_rows(chunk)
        if len(rows) != len(expected):
            raise ValueError(f"chunk {chunk} of {self.directory} needs {len(expected)} rows, got {len(rows)}")
        features.flush()
        with atomic_write(self.chunks_dir / f"{chunk:08d}.npy") as handle:
            np.save(handle, np.asarray(valid, dtype=bool))

    def finalize(self, extra_meta: dict[str, Any] | None = None) -> CachedFeatures:
        """Assembles ``valid.npy`` from the chunk markers and marks the entry complete."""
        missing = self.pending_chunks()
        if missing:
            raise RuntimeError(f"feature cache {self.directory}: {len(missing)} chunk(s) not written, "
                               f"e.g. {missing[0]}")
        valid = np.concatenate([np.load(self.chunks_dir / f"{chunk:08d}.npy") for chunk in range(self.num_chunks())])
        with atomic_write(self.valid_path) as handle:
            np.save(handle, valid)
        meta = self.read_meta() or {}
        meta.update(extra_meta or {}, complete=True, num_skipped=int((~valid).sum()))
        atomic_write_json(self.meta_path, meta)
        return self.load()
