"""Fault-injection tests: the ``faults_slow`` marker and the outcome table of docs/reliability.md.

Each test records its (fault, command, asserted outcome) as a user property. With
``FAULT_TABLE=docs/reliability.md``, the session (the xdist controller, or the only process) rewrites the
table between the ``<!-- fault-table -->`` markers of that file from this run: a passing test shows the
outcome it asserts, a failing one "FAILS", an expected failure its reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

BEGIN, END = "<!-- fault-table:begin -->", "<!-- fault-table:end -->"
REGENERATE = "FAULT_TABLE=docs/reliability.md python -m pytest -n 2 tests/faults"
_CELLS: dict[tuple[str, str], str] = {}
_ORDER: dict[str, int] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "faults_slow: a fault-injection case that runs whole commands (kept in CI)")


@pytest.fixture
def record_fault_case(request):
    """``record_fault_case(fault, command, outcome, order)``: what this test asserts, for the table; ``order``
    (fault index, command index) places its cell."""
    def record(fault: str, command: str, outcome: str, order: tuple[int, int]) -> None:
        request.node.user_properties.append(("fault_case", (fault, command, outcome, order)))
    return record


def pytest_runtest_logreport(report):
    cases = [value for key, value in report.user_properties if key == "fault_case"]
    if not cases or (report.passed and report.when != "call"):
        return
    fault, command, outcome, (fault_index, command_index) = cases[0]
    _ORDER.update({fault: fault_index, command: command_index})
    if hasattr(report, "wasxfail"):
        _CELLS[fault, command] = f"xfail: {report.wasxfail}"
    elif report.failed:
        _CELLS[fault, command] = f"FAILS (expected: {outcome})"
    elif report.when == "call":
        _CELLS.setdefault((fault, command), outcome)


def outcome_table(cells: dict[tuple[str, str], str]) -> str:
    """Markdown: one row per fault, one column per command."""
    faults = sorted(dict.fromkeys(fault for fault, _ in cells), key=lambda name: _ORDER.get(name, 0))
    commands = sorted(dict.fromkeys(command for _, command in cells), key=lambda name: _ORDER.get(name, 0))
    lines = ["| fault | " + " | ".join(commands) + " |", "|---" * (len(commands) + 1) + "|"]
    for fault in faults:
        lines.append(f"| {fault} | " + " | ".join(cells.get((fault, command), "n/a") for command in commands) + " |")
    return "\n".join(lines)


def pytest_sessionfinish(session):
    target = os.environ.get("FAULT_TABLE")
    if not target or hasattr(session.config, "workerinput") or not _CELLS:
        return
    path = Path(target)
    block = f"{BEGIN}\n{outcome_table(_CELLS)}\n\nRegenerate with `{REGENERATE}`.\n{END}"
    text = path.read_text()
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
