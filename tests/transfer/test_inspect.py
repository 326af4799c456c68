"""``python -m transfer.inspect``: format, network, tensor accounting, arch, sha256, commands; exit 2 on bad input."""

import hashlib
import shlex

import torch
import torchvision

from transfer.inspect import main as inspect_main


def moco_file(path):
    """A MoCo v2 training checkpoint (moco main_moco.py) of a resnet18: query and key encoders, queue, MLP fc."""
    torch.manual_seed(0)
    query, key = torchvision.models.resnet18().state_dict(), torchvision.models.resnet18().state_dict()
    trunk = lambda state: {k: v for k, v in state.items() if not k.startswith("fc.")}  # noqa: E731
    state = {"module.queue": torch.randn(16, 8), "module.queue_ptr": torch.zeros(1, dtype=torch.long),
             **{f"module.encoder_q.{k}": v for k, v in trunk(query).items()},
             "module.encoder_q.fc.0.weight": torch.zeros(512, 512), "module.encoder_q.fc.2.weight": torch.zeros(16, 512),
             **{f"module.encoder_k.{k}": v for k, v in trunk(key).items()}}
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": state}, path)
    return len(trunk(query)), len(state) - len(trunk(query))


def test_inspect_reports_a_moco_file(tmp_path, capsys):
    path = tmp_path / "moco v2.pth.tar"
    backbone_tensors, dropped = moco_file(path)
    assert inspect_main([str(path)]) == 0
    out = capsys.readouterr().out
    assert f"sha256:   {hashlib.sha256(path.read_bytes()).hexdigest()}" in out
    assert "format:   moco (" in out and "network:  query at ['state_dict'] keys 'module.encoder_q.*'" in out
    assert "also holds key (--source key picks it)" in out
    assert f"renamed    {backbone_tensors} (e.g. state_dict/module.encoder_q.conv1.weight -> conv1.weight" in out
    assert f"dropped    {dropped} (e.g. state_dict/module.queue," in out and "kept         0" in out
    assert "arch:     resnet18 (every tensor present with its shape)" in out
    weights = shlex.quote(str(path))
    for command in (f"python -m transfer.classification knn --weights {weights} --arch resnet18",
                    f"python -m transfer.suite {weights} --arch resnet18",
                    f"python tools/convert_to_d2.py {weights} out/resnet18_detectron2.pkl --arch resnet18",
                    f"python -m transfer.detection --engine torchvision --task voc0712_detection --weights {weights}"):
        assert command in out
    assert inspect_main([str(path), "--source", "key"]) == 0
    assert "network:  key at ['state_dict'] keys 'module.encoder_k.*'" in capsys.readouterr().out


def test_inspect_refuses_bad_input_in_one_line(tmp_path, capsys):
    moco_file(tmp_path / "moco.pth")
    (tmp_path / "notes.txt").write_text("not weights")
    for argv, message in (([str(tmp_path / "absent.pth")], "checkpoint file not found"),
                          ([str(tmp_path / "notes.txt")], "not a readable PyTorch checkpoint"),
                          ([str(tmp_path / "moco.pth"), "--arch", "resnet50"], "not a complete resnet50 (it fits resnet18)"),
                          ([str(tmp_path / "moco.pth"), "--source", "student"], "has no source 'student'")):
        assert inspect_main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
