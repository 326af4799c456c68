"""Atomic file writes: a reader (or a resumed run after pre-emption) never sees a half-written file.

A write that fails because the disk is full raises ``core.cli.DiskFullError`` naming the file and the free
space, and leaves the previous content of the file in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from core.cli import DISK_FULL_ERRNOS, DiskFullError

# torch.save's zip writer reports a failed write of its file object as "unexpected pos N vs M" (the OSError
# is only its __context__); below this much free space such a failure is taken to be a full disk.
NEARLY_FULL_BYTES = 64 << 20


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", keep_previous: str | Path | None = None) -> Iterator[IO]:
    """Opens a temporary file next to ``path``; on success it is fsynced and renamed over ``path``.

    With ``keep_previous``, an existing ``path`` is first renamed to ``keep_previous`` (one generation back),
    so that a file whose content later proves bad can be replaced by its predecessor; each rename is atomic and
    at every moment one of the two names holds a complete file. On an exception the temporary file is removed
    and ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(temporary_name, path)
    except BaseException as error:
        disk_full = _disk_full_error(error, path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary_name)
        if disk_full is not None:
            raise disk_full from error
        raise


def _disk_full_error(error: BaseException, path: Path) -> DiskFullError | None:
    """A ``DiskFullError`` if ``error`` (or an error it wraps) means the file system is full, else None."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = -1
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, DiskFullError):
            return None
        if isinstance(cause, OSError) and cause.errno in DISK_FULL_ERRNOS:
            break
        cause = cause.__cause__ or cause.__context__
    else:
        if not (isinstance(error, RuntimeError) and "unexpected pos" in str(error) and free < NEARLY_FULL_BYTES):
            return None
    return DiskFullError(f"disk full while writing {path} ({free} bytes free); free some space and rerun")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON, atomically."""
    with atomic_write(path, mode="w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")
