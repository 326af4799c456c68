"""Pre-emption: SIGTERM / SIGUSR1 ask the trainer to checkpoint at the next step boundary and exit.

The handler only records the request (nothing unsafe happens inside a signal handler); the training loop
polls ``StopRequest.reason`` once per step, agrees on it across processes, saves, and returns. The process
then exits with ``EXIT_PREEMPTED`` (75, ``EX_TEMPFAIL``: "try again later"), so a job script can requeue.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

EXIT_PREEMPTED = 75
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopRequest:
    """A flag raised by pre-emption signals (or by code, e.g. ``stop_after_steps``), with its reason."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.request(f"received {signal.Signals(signum).name}")

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is not threading.main_thread():
            logger.warning("not in the main thread: SIGTERM/SIGUSR1 will not trigger a checkpoint")
            return self
        for signum in PREEMPTION_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def ignore_preemption_signals(_worker_id: int | None = None) -> None:
    """For DataLoader workers: SLURM may signal every process of a job step, and a worker killed by SIGUSR1
    or SIGTERM would crash the trainer before it can checkpoint. Workers still exit with their parent."""
    for signum in PREEMPTION_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
