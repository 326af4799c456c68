"""``python -m transfer.suite --source/--format``: the chosen network of a two-network file reaches every task."""

import torch
import torchvision

from core.checkpoint import WeightsFile, load_backbone_state_dict
from transfer.suite import runner as runner_module
from transfer.suite.__main__ import main as suite_main


def test_source_reaches_the_tasks_and_a_wrong_one_is_refused(tmp_path, demo_root, monkeypatch, capsys):
    torch.manual_seed(0)
    query, key = torchvision.models.resnet18().state_dict(), torchvision.models.resnet18().state_dict()
    state = {**{f"module.encoder_q.{k}": v for k, v in query.items()},
             **{f"module.encoder_k.{k}": v for k, v in key.items()}}
    torch.save({"state_dict": state}, tmp_path / "moco.pth")
    seen = []

    def record(task, run, engine):
        seen.append(run.weights)
        raise RuntimeError("recorded")

    monkeypatch.setattr(runner_module, "run_task", record)
    common = [str(tmp_path / "moco.pth"), "--arch", "resnet18", "--data-root", str(demo_root), "--tasks", "knn"]
    assert suite_main([*common, "--output", str(tmp_path / "out"), "--source", "key"]) == 1
    assert seen == [WeightsFile(str(tmp_path / "moco.pth"), "key", None)]
    loaded, _ = load_backbone_state_dict(seen[0], "resnet18")
    assert torch.equal(loaded["layer4.1.conv2.weight"], key["layer4.1.conv2.weight"])
    assert suite_main([*common, "--output", str(tmp_path / "out2"), "--source", "student"]) == 2
    assert "has no source 'student'" in capsys.readouterr().err
