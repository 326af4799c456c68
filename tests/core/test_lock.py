"""Exclusive output folders: a second process refuses in one line naming the holder; dead holders never block."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import core.distributed
import core.lock
from core.distributed import DistributedContext
from core.lock import LOCK_FILE, LockError, OutputDirError, OutputLock, exclusive_output, locks_output

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from core.cli import run_cli
from core.lock import exclusive_output

def hold():
    with exclusive_output(sys.argv[1], "test"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    return 0

sys.exit(run_cli(hold))
"""


def start_holder(folder: Path, seconds: float) -> subprocess.Popen:
    """A process that locks ``folder`` and sleeps; returns once it holds the lock."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert process.stdout.readline().strip() == "locked", process.stderr.read()
    return process


def run_holder(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HOLD, str(folder), "0"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)


def test_second_process_refuses_in_one_line_naming_host_and_pid(tmp_path):
    first = start_holder(tmp_path / "out", 60)
    try:
        second = run_holder(tmp_path / "out")
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith(f"error: {tmp_path / 'out'} is in use by another test run")
    assert f"host {socket.gethostname()}, pid {first.pid}," in lines[0]


def test_sigkilled_holder_does_not_block(tmp_path):
    first = start_holder(tmp_path / "out", 60)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert json.loads((tmp_path / "out" / LOCK_FILE).read_text())["pid"] == first.pid  # left behind
    second = run_holder(tmp_path / "out")
    assert second.returncode == 0, second.stderr


def test_stale_lock_file_of_a_dead_process_does_not_block(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(json.dumps({"host": "elsewhere", "pid": 999999, "started": 0}))
    with exclusive_output(folder, "test"):
        info = json.loads((folder / LOCK_FILE).read_text())
        assert (info["host"], info["pid"]) == (socket.gethostname(), os.getpid())


def test_nested_and_repeated_folders_of_one_process(tmp_path):
    suite = tmp_path / "suite"
    with exclusive_output(suite, "suite"):
        with exclusive_output(suite / "runs" / "task", "task"):
            with exclusive_output(suite, "suite"):  # re-entrant within the process
                pass
            assert (suite / LOCK_FILE).read_text()  # still held by the outer block
    assert (suite / LOCK_FILE).read_text() == ""  # released: the description is cleared
    assert not core.lock._HELD


def test_lock_object_is_released_when_dropped(tmp_path):
    lock = OutputLock(tmp_path / "out", "task")
    assert list(core.lock._HELD) == [(tmp_path / "out").resolve()]
    del lock
    assert not core.lock._HELD


def test_decorator_locks_the_named_argument(tmp_path):
    @locks_output("output_dir", "suite")
    def run(weights, output_dir):
        return json.loads((Path(output_dir) / LOCK_FILE).read_text())["what"]

    assert run("w.pth", output_dir=tmp_path / "out") == "suite"
    assert not core.lock._HELD


@pytest.mark.parametrize("make_folder, fragment", [
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "it exists and is not a folder"),
    (lambda tmp: Path("/proc/barlowtwins-output"), "/proc/barlowtwins-output"),
])
def test_unusable_folders_are_named(tmp_path, make_folder, fragment):
    folder = make_folder(tmp_path)
    with pytest.raises(OutputDirError, match=f"cannot use {folder} as the test output folder.*{fragment}"):
        with exclusive_output(folder, "test"):
            pass


def test_other_ranks_refuse_when_rank_0_cannot_lock(tmp_path, monkeypatch):
    # Rank 1 never touches the folder; the control-group vote (here: rank 0 reported failure) decides.
    monkeypatch.setattr(core.distributed, "any_process", lambda flag, context: True)
    rank1 = DistributedContext(rank=1, local_rank=1, world_size=2, device=torch.device("cpu"))
    with pytest.raises(LockError, match="rank 0 could not lock the test output folder"):
        with exclusive_output(tmp_path / "out", "test", rank1):
            pass
    assert not (tmp_path / "out").exists()


def test_holder_that_has_not_written_yet(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    (tmp_path / LOCK_FILE).write_text("")
    assert core.lock._holder_description(tmp_path / LOCK_FILE) == "a process that has not written its host and pid"
