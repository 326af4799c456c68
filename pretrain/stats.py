"""Training statistics: ``stats.jsonl`` lines, TensorBoard scalars and a tqdm progress bar (main process only).

Every record has ``step`` = number of optimizer steps completed so far. When a run resumes from a checkpoint
taken at step S, records after S (written before the interruption, then redone) are dropped from both
``stats.jsonl`` and TensorBoard, so the logs read like those of one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.atomic import atomic_write
from core.stats import STATS_FILE, read_stats

TENSORBOARD_DIR = "tensorboard"


class StatsLogger:
    """Appends records to ``output_dir/stats.jsonl`` and TensorBoard; does nothing when not ``enabled``."""

    def __init__(self, output_dir: str | Path, enabled: bool, tensorboard: bool, resume_step: int) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / STATS_FILE
        self.writer = None
        if not enabled:
            return
        self._drop_records_after(resume_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(output_dir) / TENSORBOARD_DIR), purge_step=resume_step + 1)

    def _drop_records_after(self, step: int) -> None:
        records = read_stats(self.path)
        kept = [record for record in records if record.get("step", 0) <= step]
        if len(kept) != len(records):
            with atomic_write(self.path, mode="w") as handle:
                handle.writelines(json.dumps(record) + "\n" for record in kept)

    def log(self, record: dict[str, Any]) -> None:
        """Writes one record (JSON line, flushed) and its numeric fields as TensorBoard scalars."""
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"pretrain/{key}", value, global_step=record["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class ProgressBar:
    """tqdm over all optimizer steps of the run, showing loss and images/s at logging steps."""

    def __init__(self, total_steps: int, done_steps: int, enabled: bool) -> None:
        interactive = sys.stderr.isatty()
        self.bar = tqdm(total=total_steps, initial=done_steps, unit="step", dynamic_ncols=True,
                        disable=not enabled, mininterval=1.0 if interactive else 60.0, desc="pretrain")

    def update(self, steps: int = 1) -> None:
        self.bar.update(steps)

    def show(self, **values: float) -> None:
        self.bar.set_postfix({key: f"{value:.4g}" for key, value in values.items()}, refresh=False)

    def close(self) -> None:
        self.bar.close()
