"""One process per GPU: how many processes a detection run gets, and the launch of a multi-process run.

The paper's detection protocol trains on 8 GPUs. A detection task run from the suite (or any Python caller)
therefore uses every GPU of the node: with more than one GPU, and unless this process is itself one of a
``torchrun`` job, the engine's command line is started as a subprocess with one process per GPU and its
``results.json`` is read back. On CPU or one GPU the run stays in this process.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from core.results import TaskResult, read_result
from transfer.protocol import describe_differences, protocol_differences
from transfer.registry import TaskRun, TaskSpec

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.json"
CommandRunner = Callable[[Sequence[str]], "subprocess.CompletedProcess"]


class LaunchError(RuntimeError):
    """A multi-process run failed or left no results that match the launch."""


def under_torchrun() -> bool:
    """Whether this process is one of a ``torchrun`` job (its environment sets ``LOCAL_RANK``)."""
    return "LOCAL_RANK" in os.environ


def node_processes(requested: int | None = None) -> int:
    """Processes a detection run uses: ``requested``, else one per visible GPU (at least one).

    Inside a ``torchrun`` job the job's own processes already share the work, so a run there is never launched
    again: it counts as the job's world size.
    """
    if under_torchrun():
        return int(os.environ.get("WORLD_SIZE", "1"))
    if requested is not None:
        if requested < 1:
            raise ValueError(f"processes must be at least 1, got {requested}")
        return requested
    return max(torch.cuda.device_count(), 1)


def launches_subprocess(processes: int) -> bool:
    """Whether a run with ``processes`` processes is started as a subprocess (several, and not under torchrun)."""
    return processes > 1 and not under_torchrun()


def _run_command(command: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), check=False)


def run_launched(command: Sequence[str], output_dir: Path, processes: int,
                 run_command: CommandRunner = _run_command) -> TaskResult:
    """Runs ``command`` (a multi-process launch writing ``output_dir/results.json``) and returns that result.

    The result must record the ``processes`` it was launched with: a results file left by an earlier run with
    another number of processes is not taken for this one's.
    """
    results_path = Path(output_dir) / RESULTS_NAME
    logger.info("launching %d processes: %s", processes, " ".join(map(str, command)))
    completed = run_command(command)
    if completed.returncode != 0:
        raise LaunchError(f"the {processes}-process run exited with status {completed.returncode}: "
                          f"{' '.join(map(str, command))}")
    result = read_result(results_path)
    recorded = result.protocol.get("processes")
    if recorded != processes:
        raise LaunchError(f"{results_path} records {recorded} processes, but {processes} were launched")
    return result


@runtime_checkable
class ProtocolForecaster(Protocol):
    """A runner that can say, before running, which protocol values a run will record."""

    def predicted_protocol(self, spec: TaskSpec, run: TaskRun, processes: int, cuda: bool) -> dict[str, Any]: ...


def protocol_forecast(spec: TaskSpec, runner: ProtocolForecaster, run: TaskRun) -> str:
    """One line on how ``run`` will differ from ``spec``'s protocol on this node (empty when it will not): the
    runner's predicted values for the processes it will get (one per GPU, one on CPU) against the protocol."""
    processes = node_processes(run.processes)
    cuda = torch.cuda.device_count() > 0
    facts = runner.predicted_protocol(spec, run, processes, cuda)
    differences = describe_differences(protocol_differences(facts, spec.protocol))
    if not differences:
        return ""
    where = f"{processes} GPU process{'es' if processes > 1 else ''}" if cuda else "CPU, 1 process"
    return f"{spec.name} ({facts.get('engine')}, {where}) will not follow the paper's protocol: {differences}"
