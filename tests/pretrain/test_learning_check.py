"""Pretraining learns on real images: scikit-learn's handwritten digits, small stem, a few CPU minutes.

tools/learning_check.py with the CI budget below; docs/benchmarks.md records the offline multi-seed figures
this margin is set against.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# configs/pretrain/learning_check_digits.yaml as shipped (8 px, batch 32, 76 steps). Offline over seeds 0, 1, 2 the
# gap was +37.5, +27.3, +20.6 points (+28.5 +- 8.5; random init 18.6 +- 0.3); the margin is below the smallest.
MARGIN = 15.0  # kNN top-1 points over the random-init trunk


def _learning_check():
    spec = importlib.util.spec_from_file_location("learning_check", REPO / "tools" / "learning_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pretrained_trunk_beats_random_init_on_held_out_digits(tmp_path):
    random_top1, trained_top1, _seconds = _learning_check().check_seed(0, tmp_path, [])
    assert trained_top1 >= random_top1 + MARGIN, (random_top1, trained_top1)
