"""Reading pretraining stats.jsonl for the loss and kNN curves."""

import json

import pytest

from transfer.report.errors import ReportError
from transfer.report.pretrain_stats import read_pretrain_stats


def write_lines(path, records):
    path.write_text("".join((record if isinstance(record, str) else json.dumps(record)) + "\n" for record in records))
    return path


def test_loss_per_step_and_knn_per_epoch(tmp_path):
    path = write_lines(tmp_path / "stats.jsonl", [
        {"step": 5, "epoch": 0, "loss": 9.0, "lr_weights": 0.2, "lr_biases": 0.0048, "images_per_s": 10.0},
        {"step": 10, "epoch": 0, "loss": 7.5, "lr_weights": 0.2, "lr_biases": 0.0048, "images_per_s": 11.0},
        {"step": 12, "epoch": 1, "loss": 7.0, "lr_weights": 0.2, "lr_biases": 0.0048, "images_per_s": 11.0,
         "knn_top1": 41.5},
    ])
    curves = read_pretrain_stats(path)
    assert curves.loss == [(5.0, 9.0), (10.0, 7.5), (12.0, 7.0)]
    assert curves.knn_top1 == [(1.0, 41.5)] and curves.knn_axis == "epoch"


def test_knn_per_step_without_epochs(tmp_path):
    path = write_lines(tmp_path / "stats.jsonl", [{"step": 3, "loss": 1.0}, {"step": 6, "knn_top1": 12.0}])
    curves = read_pretrain_stats(path)
    assert curves.knn_top1 == [(6.0, 12.0)] and curves.knn_axis == "step"


def test_errors_name_file_and_line(tmp_path):
    path = write_lines(tmp_path / "stats.jsonl", [{"step": 1, "loss": 2.0}, "{not json"])
    with pytest.raises(ReportError, match=r"stats.jsonl:2: not valid JSON"):
        read_pretrain_stats(path)
    write_lines(path, [{"step": 1, "loss": "high"}])
    with pytest.raises(ReportError, match=r"stats.jsonl:1: 'loss' must be a number, got 'high'"):
        read_pretrain_stats(path)


def test_online_probe_curve_is_read_next_to_knn(tmp_path):
    path = write_lines(tmp_path / "stats.jsonl", [
        {"step": 5, "epoch": 0, "loss": 3.0}, {"step": 5, "epoch": 0, "probe_top1": 20.0},
        {"step": 10, "epoch": 1, "knn_top1": 30.0}, {"step": 10, "epoch": 1, "probe_top1": 35.0}])
    curves = read_pretrain_stats(path)
    assert curves.probe_top1 == [(0.0, 20.0), (1.0, 35.0)] and curves.knn_top1 == [(1.0, 30.0)]
    assert curves.knn_axis == "epoch"
