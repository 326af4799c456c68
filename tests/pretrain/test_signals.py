"""Pre-emption signals only raise a flag, and the previous handlers come back afterwards."""

from __future__ import annotations

import os
import signal

from pretrain.signals import EXIT_PREEMPTED, StopRequest


def test_sigusr1_and_sigterm_set_the_stop_reason():
    before = signal.getsignal(signal.SIGUSR1)
    with StopRequest() as stop:
        assert stop.reason is None
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.reason == "received SIGUSR1"
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.reason == "received SIGUSR1"  # the first reason is kept
    assert signal.getsignal(signal.SIGUSR1) is before


def test_exit_code_is_ex_tempfail():
    assert EXIT_PREEMPTED == 75  # sysexits.h EX_TEMPFAIL: "try again later"
