"""Atomic writes keep the previous file intact when writing fails midway (a full disk included)."""

import errno
import json

import pytest
import torch

from core.atomic import atomic_write, atomic_write_json
from core.cli import DiskFullError


def test_failed_write_keeps_previous_content(tmp_path):
    target = tmp_path / "state.bin"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"good"
    assert [path.name for path in tmp_path.iterdir()] == ["state.bin"]


def test_json_written_and_parent_created(tmp_path):
    target = tmp_path / "nested" / "results.json"
    atomic_write_json(target, {"mAP": 86.2})
    assert json.loads(target.read_text()) == {"mAP": 86.2}


@pytest.fixture
def full_disk(fill_disk):
    """Files opened by ``atomic_write`` accept 64 bytes, then fail like a full disk."""
    fill_disk(64)


def test_full_disk_names_the_file_and_free_space_and_keeps_the_old_file(tmp_path, full_disk):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(DiskFullError, match=rf"disk full while writing {target} \(\d+ bytes free\)"):
        atomic_write_json(target, {"values": list(range(100))})
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["results.json"]


def test_torch_save_on_a_full_disk_is_reported_as_disk_full(tmp_path, full_disk):
    # torch.save's zip writer turns the OSError into "unexpected pos N vs M"; the error must still say why.
    target = tmp_path / "checkpoint.pth"
    target.write_bytes(b"previous")
    with pytest.raises(DiskFullError, match="disk full while writing"):
        with atomic_write(target) as handle:
            torch.save({"weights": torch.zeros(1000)}, handle)
    assert target.read_bytes() == b"previous"


def test_other_errors_are_not_disk_full(tmp_path):
    with pytest.raises(OSError) as raised:
        with atomic_write(tmp_path / "x.bin"):
            raise OSError(errno.EIO, "I/O error")
    assert not isinstance(raised.value, DiskFullError)


def test_keep_previous_rotates_one_generation(tmp_path):
    target, previous = tmp_path / "checkpoint.pth", tmp_path / "checkpoint.prev.pth"
    for content in (b"first", b"second", b"third"):
        with atomic_write(target, keep_previous=previous) as handle:
            handle.write(content)
    assert (target.read_bytes(), previous.read_bytes()) == (b"third", b"second")
