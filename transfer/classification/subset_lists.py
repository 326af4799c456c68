"""The ImageNet 1% and 10% training subsets of the semi-supervised protocol, shipped with the package.

The lists are SimCLR's (google-research/simclr ``imagenet_subsets/{1percent,10percent}.txt`` at commit
383d4143fd8cf7879ae10f1046a9baeb753ff438, unchanged since it added them), which Barlow Twins'
``evaluate.py --train-perc`` reads: one training file name per line (``n01440764_10026.JPEG``), the
class being the part before ``_``. They are stored gzip-compressed, byte for byte.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "imagenet_subsets"
# file name -> (sha256 of the uncompressed list, lines) as published upstream
SHIPPED_LISTS: dict[str, tuple[str, int]] = {
    "1percent.txt": ("71e82a48ba78252683ae334c4d019ebd5c6e855b9599c1389fbe83eb9549cf17", 12811),
    "10percent.txt": ("6d09de11e7bdaf5b1f3b1f249b6183695f97310cdd20f0c03e7235b6b9392091", 128116),
}


def shipped_list_path(name: str) -> Path:
    """The packaged ``<name>.gz`` of a subset list such as ``1percent.txt``."""
    return SHIPPED_DIR / f"{name}.gz"


def read_subset_names(path: str | Path) -> list[str]:
    """The file names listed in ``path``; a missing ``1percent.txt``/``10percent.txt`` is read from the package.

    A list on disk always wins (the demo data ships its own tiny lists), so the packaged copy only
    stands in for a data root without ``subsets/``. Raises ``FileNotFoundError`` for any other absent file.
    """
    path = Path(path)
    if path.is_file():
        text = path.read_text()
    elif path.name in SHIPPED_LISTS:
        logger.info("%s not found: using the shipped SimCLR %s", path, path.name)
        text = gzip.decompress(shipped_list_path(path.name).read_bytes()).decode()
    else:
        raise FileNotFoundError(f"subset file not found: {path}")
    return [line.strip() for line in text.splitlines() if line.strip()]
