"""Statistics logs: JSON lines, and records after a resumed checkpoint are dropped (no duplicates)."""

from __future__ import annotations

import json

from pretrain.stats import StatsLogger, read_stats


def test_resume_drops_records_written_after_the_checkpoint(tmp_path):
    logger = StatsLogger(tmp_path, enabled=True, tensorboard=False, resume_step=0)
    for step in range(1, 6):
        logger.log({"step": step, "epoch": 0, "loss": 10.0 - step})
    logger.close()
    resumed = StatsLogger(tmp_path, enabled=True, tensorboard=True, resume_step=3)
    resumed.log({"step": 4, "epoch": 0, "loss": 6.5})
    resumed.close()
    lines = (tmp_path / "stats.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 1, "epoch": 0, "loss": 9.0}, {"step": 2, "epoch": 0, "loss": 8.0},
        {"step": 3, "epoch": 0, "loss": 7.0}, {"step": 4, "epoch": 0, "loss": 6.5}]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_disabled_logger_writes_nothing(tmp_path):
    logger = StatsLogger(tmp_path, enabled=False, tensorboard=True, resume_step=0)
    logger.log({"step": 1, "loss": 1.0})
    logger.close()
    assert read_stats(tmp_path / "stats.jsonl") == [] and not list(tmp_path.iterdir())
