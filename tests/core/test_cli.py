"""run_cli: user errors become one line and exit status 2; everything else is left alone."""

from __future__ import annotations

import errno

import pytest

from core.checkpoint import CheckpointError
from core.cli import EXIT_USER_ERROR, DiskFullError, UserError, run_cli
from core.config import ConfigError


def raising(error: BaseException):
    def body() -> int:
        raise error
    return body


@pytest.mark.parametrize("error", [ConfigError("config key 'x' has value 1"), CheckpointError("a.pth is not"),
                                   DiskFullError("disk full while writing a (0 bytes free)"), UserError("bad")])
def test_user_errors_are_one_line_and_exit_2(error, capsys):
    assert run_cli(raising(error)) == EXIT_USER_ERROR == 2
    assert capsys.readouterr().err == f"error: {error}\n"


def test_stage_errors_and_program_name(capsys):
    class StageError(ValueError):
        pass

    assert run_cli(raising(StageError("no images in data/")), user_errors=(StageError,), prog="tool.py") == 2
    assert capsys.readouterr().err == "tool.py: error: no images in data/\n"


def test_disk_full_os_error_outside_atomic_writes(capsys):
    assert run_cli(raising(OSError(errno.ENOSPC, "No space left on device", "out/stats.jsonl"))) == 2
    assert capsys.readouterr().err == "error: disk full while writing out/stats.jsonl: No space left on device\n"


@pytest.mark.parametrize("error", [OSError(errno.EIO, "I/O error"), RuntimeError("bug"), KeyboardInterrupt()])
def test_other_errors_propagate(error):
    with pytest.raises(type(error)):
        run_cli(raising(error))


def test_exit_status_of_the_body_is_returned():
    assert run_cli(lambda: 75) == 75
