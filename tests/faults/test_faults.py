"""Fault injection: every command under every fault ends in one of three outcomes (docs/reliability.md):

* "resumes bit-identical": rerunning the same command after the fault gives the same final weights and
  metrics, tensor for tensor, as a run that was never interrupted;
* "refuses, one line, exit 2": the command stops before (or without) damage, with one line naming the thing;
* "skips and counts": the bad item is left out and counted.

``FAULT_TABLE=docs/reliability.md python -m pytest -n 2 tests/faults`` also rewrites the fault x command table
in docs/reliability.md from the outcomes of this run (see conftest.py).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch


def _load_commands():
    """``commands.py`` beside this file (tests are not a package under --import-mode=importlib)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fault_commands", Path(__file__).with_name("commands.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_commands"] = module
    spec.loader.exec_module(module)
    return module


_commands = _load_commands()
COMMANDS, REPO, Inputs = _commands.COMMANDS, _commands.REPO, _commands.Inputs

RESUMES = "resumes bit-identical"
REFUSES = "refuses, one line, exit 2"
SKIPS = "skips and counts"
# Every command resumes bit-identical (the linear head's and the detection engine's data order and augmentation
# are functions of the seed, epoch or iteration and sample); a pair that cannot would be marked here.
RESUME_XFAILS: dict = {}

# (fault, command) -> the outcome the test below asserts; absent pairs are not applicable.
EXPECTED = {
    **{("SIGKILL at a random step", name): RESUMES for name in COMMANDS},
    ("SIGTERM", "pretraining"): "exit 75 at a step boundary, " + RESUMES,
    **{("SIGTERM", name): "killed (no handler), " + RESUMES for name in COMMANDS if name != "pretraining"},
    ("NaN / exploding LR", "pretraining"): "exit 3, last good checkpoint kept, rerun with sane LR resumes",
    ("corrupt image", "pretraining"): SKIPS,
    **{("garbage weights file", name): REFUSES for name in COMMANDS},
    **{("unwritable output", name): REFUSES for name in COMMANDS},
    **{("full disk", name): REFUSES + " (no partial file left)" for name in COMMANDS},
    **{("concurrent second run", name): REFUSES for name in COMMANDS},
    **{("bad override", name): REFUSES for name in COMMANDS},
}


@pytest.fixture
def expect(record_fault_case):
    """``expect(fault, command)``: records the outcome the test asserts (``EXPECTED``) for the table."""
    faults = list(dict.fromkeys(fault for fault, _ in EXPECTED))
    return lambda fault, name: record_fault_case(fault, name, EXPECTED[fault, name],
                                                 order=(faults.index(fault), list(COMMANDS).index(name)))


def cases(fault: str, marks=()):
    return [pytest.param(name, id=name.replace(" ", "_").replace("(", "").replace(")", ""),
                         marks=marks.get(name, ()) if isinstance(marks, dict) else marks)
            for (listed_fault, name) in EXPECTED if listed_fault == fault]


@pytest.fixture(scope="module")
def inputs(small_demo_data, tmp_path_factory) -> Inputs:
    torch.manual_seed(1)
    import torchvision

    weights = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save({key: value for key, value in torchvision.models.resnet18().state_dict().items()
                if not key.startswith("fc.")}, weights)
    return Inputs(small_demo_data, weights)


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """``reference(command_name)``: the final state of one uninterrupted in-process run (cached)."""
    states = {}

    def get(name: str) -> dict:
        if name not in states:
            command = COMMANDS[name]
            output = tmp_path_factory.mktemp("reference")
            assert command.main()(command.arguments(inputs, output / "out")) == 0
            states[name] = command.final_state(output / "out")
        return states[name]
    return get


def assert_identical(state: dict, expected: dict) -> None:
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        if torch.is_tensor(value):
            assert torch.equal(state[key], value), f"{key} differs after the resume"
        else:
            assert state[key] == value, f"{key}: {state[key]} != {value}"


def start(command, inputs: Inputs, output: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", command.module, *command.arguments(inputs, output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES=""))


def interrupt(process: subprocess.Popen, command, output: Path, at: int, signum: int) -> str:
    """Sends ``signum`` to the command's process group once its progress reaches ``at``; returns stderr."""
    deadline = time.monotonic() + 300
    while command.progress(output) < at and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, f"finished before the fault could be injected: {process.stderr.read()}"
    os.killpg(process.pid, signum)
    _, stderr = process.communicate(timeout=300)
    return stderr


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


KILL_POINTS = {"pretraining": range(1, 10), "linear task": range(1, 4), "detection (torchvision)": [2, 4],
               "suite": [1, 2]}


@pytest.mark.faults_slow
@pytest.mark.parametrize("name", cases("SIGKILL at a random step", RESUME_XFAILS))
def test_sigkill_then_rerun_is_bit_identical(name, inputs, reference, tmp_path, expect):
    expect("SIGKILL at a random step", name)
    command = COMMANDS[name]
    at = random.Random(os.environ.get("FAULT_SEED", "0") + name).choice(list(KILL_POINTS[name]))
    process = start(command, inputs, tmp_path / "out")
    interrupt(process, command, tmp_path / "out", at, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    assert command.main()(command.arguments(inputs, tmp_path / "out")) == 0
    assert_identical(command.final_state(tmp_path / "out"), reference(name))


@pytest.mark.faults_slow
@pytest.mark.parametrize("name", cases("SIGTERM", RESUME_XFAILS))
def test_sigterm_then_rerun_is_bit_identical(name, inputs, reference, tmp_path, expect):
    expect("SIGTERM", name)
    command = COMMANDS[name]
    process = start(command, inputs, tmp_path / "out")
    stderr = interrupt(process, command, tmp_path / "out", KILL_POINTS[name][0], signal.SIGTERM)
    if name == "pretraining":
        assert process.returncode == 75 and "received SIGTERM" in stderr
    else:
        assert process.returncode == -signal.SIGTERM
    assert command.main()(command.arguments(inputs, tmp_path / "out")) == 0
    assert_identical(command.final_state(tmp_path / "out"), reference(name))


@pytest.mark.parametrize("name", cases("NaN / exploding LR"))
def test_exploding_learning_rate(name, inputs, tmp_path, capsys, expect):
    expect("NaN / exploding LR", name)
    command, output = COMMANDS[name], tmp_path / "out"
    arguments = command.arguments(inputs, output)
    assert command.main()([*arguments, "stop_after_steps=2"]) == 75
    assert command.main()([*arguments, "optim.lr_weights=1e30", "checkpoint_every_steps=1"]) == 3
    assert "the weights exploded" in one_line(capsys.readouterr().err)
    checkpoint = torch.load(output / "checkpoint.pth", weights_only=True)
    assert checkpoint["step"] == 2
    assert all(torch.isfinite(value).all() for value in checkpoint["model"].values() if value.is_floating_point())
    assert command.main()(arguments) == 0


@pytest.mark.parametrize("name", cases("corrupt image"))
def test_corrupt_image(name, inputs, tmp_path, expect):
    expect("corrupt image", name)
    data = tmp_path / "data"
    shutil.copytree(inputs.data / "imagefolder", data / "imagefolder")
    (data / "imagefolder" / "train" / "circle" / "zz_broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    command, output = COMMANDS[name], tmp_path / "out"
    assert command.main()([*command.arguments(Inputs(data, inputs.weights), output), "batch_size=3"]) == 0
    # 21 files, batch 3: every file is visited once per epoch, so 2 epochs skip the broken one twice.
    assert torch.load(output / "checkpoint.pth", weights_only=True)["skipped_images"] == 2


@pytest.mark.parametrize("name", cases("garbage weights file"))
def test_garbage_weights_file(name, inputs, tmp_path, capsys, expect):
    expect("garbage weights file", name)
    command, output = COMMANDS[name], tmp_path / "out"
    if name == "pretraining":  # its weights file is the checkpoint it resumes from
        output.mkdir()
        bad = output / "checkpoint.pth"
        bad.write_bytes(b"PK\x03\x04 truncated")
        arguments = command.arguments(inputs, output)
    else:
        bad = tmp_path / "resnet18.pth"
        bad.write_bytes(inputs.weights.read_bytes()[:1000])
        arguments = command.arguments(Inputs(inputs.data, bad), output)
    assert command.main()(arguments) == 2
    assert str(bad) in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("name", cases("unwritable output"))
def test_unwritable_output(name, inputs, tmp_path, capsys, expect):
    expect("unwritable output", name)
    command = COMMANDS[name]
    (tmp_path / "a_file").write_text("x")
    assert command.main()(command.arguments(inputs, tmp_path / "a_file")) == 2
    line = one_line(capsys.readouterr().err)
    assert f"cannot use {tmp_path / 'a_file'} as the {command.what} output folder" in line


@pytest.mark.parametrize("name", cases("full disk"))
def test_full_disk(name, inputs, tmp_path, capsys, fill_disk, expect):
    expect("full disk", name)
    command = COMMANDS[name]
    fill_disk()
    status = command.main()(command.arguments(inputs, tmp_path / "out"))
    err = capsys.readouterr().err
    assert status == 2, err
    assert one_line(err).startswith("error: disk full while writing ") and "bytes free" in err
    assert not list((tmp_path / "out").rglob("*.tmp"))


@pytest.mark.parametrize("name", cases("concurrent second run"))
def test_concurrent_second_run(name, inputs, tmp_path, capsys, hold_output_lock, expect):
    expect("concurrent second run", name)
    command = COMMANDS[name]
    holder = hold_output_lock(tmp_path / "out", command.what)
    assert command.main()(command.arguments(inputs, tmp_path / "out")) == 2
    line = one_line(capsys.readouterr().err)
    assert f"is in use by another {command.what} run" in line and f"pid {holder.pid}," in line


@pytest.mark.parametrize("name", cases("bad override"))
def test_bad_override(name, inputs, tmp_path, capsys, expect):
    expect("bad override", name)
    command = COMMANDS[name]
    assert command.main()([*command.arguments(inputs, tmp_path / "out"), command.bad_override]) == 2
    line = one_line(capsys.readouterr().err)
    assert command.bad_override.split("=")[0] in line and "abc" in line
