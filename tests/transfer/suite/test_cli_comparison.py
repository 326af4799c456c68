"""The suite's printed pretrained-vs-random comparison: means, and the spread over trials where there are several."""

import json

from transfer.suite.__main__ import _print_random_init_comparison


def _metric(mean, std, n):
    return {"tasks": {}, "metrics": {"top1": {"mean": mean, "std": std, "n": n, "within_run_std": None}}}


def test_comparison_prints_mean_and_std_over_trials(tmp_path, capsys):
    summary = {
        "backbones": {
            "BT": {"tasks": {"places205_linear": _metric(31.5, 1.8, 3), "knn": _metric(23.5, None, 1)}},
            "random init": {"tasks": {"places205_linear": _metric(31.3, 2.6, 3), "knn": _metric(19.5, None, 1)}},
        },
        "random_init_comparison": [
            {"backbone": "BT", "baseline": "random init", "task": task, "dataset": "d", "metric": "top1",
             "value": value, "baseline_value": baseline, "difference": value - baseline, "beats_baseline": True}
            for task, value, baseline in (("knn", 23.5, 19.5), ("places205_linear", 31.5, 31.3))],
    }
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    _print_random_init_comparison(path)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "BT beats random init on 2 of 2 classification task(s) (mean ± std over trials):"
    assert lines[1].split() == ["knn", "top1", "23.5", "vs", "19.5"]
    assert lines[2].split() == ["places205_linear", "top1", "31.5", "±", "1.8", "(n=3)", "vs", "31.3", "±", "2.6",
                                "(n=3)"]
