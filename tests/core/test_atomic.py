"""Atomic writes keep the previous file intact when writing fails midway."""

import json

import pytest

from core.atomic import atomic_write, atomic_write_json


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
