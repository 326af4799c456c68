"""python -m transfer.report on directories of results.json files."""

import json
import os
import subprocess
import sys
from pathlib import Path

from transfer.report.__main__ import main
from core.results import TaskResult, write_result

REPO = Path(__file__).resolve().parents[3]


# The paper's values (App. C.1 as VISSL runs it), so that these results count as protocol-true.
SVM = {"arch": "resnet50", "feature_layer": "res5_vissl8k", "feature_dim": 8192, "image_size": 224}
LINEAR = {**SVM, "mode": "images", "total_batch": 256, "base_lr": 0.01, "epochs": 14}


def write_results_dir(root, voc_map, places_top1s, baseline=False):
    write_result(TaskResult(task="voc07_svm", dataset="voc2007", split="test", weights="w.pth",
                            metrics={"mAP": voc_map}, seed=0, protocol=SVM, baseline=baseline),
                 root / "voc07_svm" / "results.json")
    for seed, top1 in enumerate(places_top1s):
        write_result(TaskResult(task="places205_linear", dataset="places205", split="val", weights="w.pth",
                                metrics={"top1": top1}, seed=seed, protocol=LINEAR, baseline=baseline),
                     root / "places205_linear" / f"seed{seed}" / "results.json")
    return root


def test_one_column_per_directory(tmp_path, capsys):
    ours = write_results_dir(tmp_path / "ours", 70.0, [40.0, 42.0])
    baseline = write_results_dir(tmp_path / "scratch", 20.0, [5.0], baseline=True)
    code = main([str(ours), str(baseline), "--output", str(tmp_path / "report"), "--labels", "BT demo", "random init"])
    assert code == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    # 40 and 42: mean 41.0, sample std sqrt(2) = 1.41.
    assert "| BT demo | 41.0 ± 1.41 (n=2) | 70.0 | — | measured |" in markdown
    assert "| random init | 5.0 | 20.0 | — | measured |" in markdown
    assert "report.html" in capsys.readouterr().out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert list(summary["backbones"]) == ["BT demo", "random init"]
    # The baseline is the column whose results say so, whatever its label.
    assert {entry["baseline"] for entry in summary["random_init_comparison"]} == {"random init"}


def test_default_labels_are_directory_names(tmp_path):
    ours = write_results_dir(tmp_path / "bt_run", 70.0, [40.0])
    assert main([str(ours), "--output", str(tmp_path / "report")]) == 0
    assert "| bt_run | 40.0 | 70.0 |" in (tmp_path / "report" / "report.md").read_text()


def test_bad_results_file_is_named(tmp_path, capsys):
    ours = write_results_dir(tmp_path / "ours", 70.0, [40.0])
    bad = ours / "knn" / "results.json"
    bad.parent.mkdir()
    bad.write_text('{"task": "knn"')
    assert main([str(ours), "--output", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and "not valid JSON" in error
    assert not (tmp_path / "report" / "report.md").exists()


def test_empty_directory_and_label_mismatch(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--output", str(tmp_path / "report")]) == 2
    assert "no results.json found under" in capsys.readouterr().err
    ours = write_results_dir(tmp_path / "ours", 70.0, [40.0])
    assert main([str(ours), "--output", str(tmp_path / "report"), "--labels", "a", "b"]) == 2
    assert "2 label(s) for 1 results" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    ours = write_results_dir(tmp_path / "ours", 70.0, [40.0])
    completed = subprocess.run([sys.executable, "-m", "transfer.report", str(ours), "--output", str(tmp_path / "r")],
                               cwd=REPO, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"})
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "r" / "report.html").is_file()
