"""Exclusive output folders: one run at a time writes into a folder.

``exclusive_output(folder, what)`` holds an ``fcntl.flock`` lock on ``folder/.lock`` for the duration of a
run. The operating system drops the lock when the holder exits in any way (even SIGKILL or a machine
reboot), so a lock file left behind by a dead process never blocks a new run. The holder writes its host,
pid, start time and command line into the file, so that a second run refuses with one line naming it.

Locks are per folder and re-entrant within a process: a suite holding its folder runs its tasks (each
locking its own sub-folder) in-process, and a second in-process use of a held folder is allowed. Under
``torchrun`` only rank 0 locks; every rank learns the outcome through the CPU control group, so all ranks
refuse together when rank 0 cannot lock (no rank waits in a collective for one that gave up).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from core.cli import UserError

if TYPE_CHECKING:  # core.distributed imports torch, which a lock does not need
    from core.distributed import DistributedContext

LOCK_FILE = ".lock"
FunctionT = TypeVar("FunctionT", bound=Callable[..., Any])


class OutputDirError(UserError):
    """An output folder cannot be created or written (it is a file, under /proc, read-only, ...)."""


class LockError(OutputDirError):
    """An output folder is in use by another running process."""


class _HeldLock:
    """An open, flock-ed lock file and how many ``exclusive_output`` blocks of this process use it."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.users = 0


_HELD: dict[Path, _HeldLock] = {}


def _holder_description(lock_path: Path) -> str:
    """What the current holder wrote into its lock file, as ``host H, pid P, started T: command``."""
    for _attempt in range(20):  # the holder writes right after locking; wait briefly if it has not yet
        try:
            info = json.loads(lock_path.read_text() or "null")
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict):
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
            return (f"host {info.get('host')}, pid {info.get('pid')}, started {started}: "
                    f"{info.get('command', '?')}")
        time.sleep(0.05)
    return "a process that has not written its host and pid"


def _lock_description(what: str) -> str:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "what": what,
                       "command": " ".join([os.path.basename(sys.executable), *sys.argv])})


def _acquire(folder: Path, what: str) -> _HeldLock:
    """Locks ``folder`` for this process (re-entrant), or raises ``OutputDirError`` / ``LockError``."""
    key = folder.resolve()
    if key in _HELD:
        return _HELD[key]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_FILE, "a+")
    except FileExistsError:
        raise OutputDirError(f"cannot use {folder} as the {what} output folder: it exists and is not a folder") \
            from None
    except OSError as error:
        raise OutputDirError(f"cannot use {folder} as the {what} output folder: {error.strerror or error} "
                             f"({error.filename or folder})") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise LockError(f"{folder} is in use by another {what} run ({_holder_description(folder / LOCK_FILE)}); "
                        f"wait for it to end or choose another output folder") from None
    handle.seek(0)
    handle.truncate()
    handle.write(_lock_description(what))
    handle.flush()
    held = _HeldLock(handle)
    _HELD[key] = held
    return held


def _release(folder: Path) -> None:
    key = folder.resolve()
    held = _HELD[key]
    held.users -= 1
    if held.users == 0:
        del _HELD[key]
        with contextlib.suppress(OSError):
            held.handle.truncate(0)  # the file stays (deleting it would race with a new locker)
        held.handle.close()  # closing the descriptor releases the flock


@contextlib.contextmanager
def exclusive_output(folder: str | Path, what: str, context: DistributedContext | None = None) -> Iterator[Path]:
    """Holds the lock on ``folder`` (created if needed) while the block runs; yields the folder.

    Raises ``LockError`` when another process holds it and ``OutputDirError`` when the folder cannot be
    created or written. With a distributed ``context`` only rank 0 locks, and every rank raises if it fails.
    """
    folder = Path(folder)
    is_main = context is None or context.is_main
    failure: UserError | None = None
    if is_main:
        try:
            _acquire(folder, what).users += 1
        except OutputDirError as error:
            failure = error
    if context is not None and _any_process(failure is not None, context) and failure is None:
        if is_main:
            _release(folder)
        failure = LockError(f"rank 0 could not lock the {what} output folder {folder} (see its message)")
    if failure is not None:
        raise failure
    try:
        yield folder
    finally:
        if is_main:
            _release(folder)


def _any_process(flag: bool, context: DistributedContext) -> bool:
    from core.distributed import any_process

    return any_process(flag, context)


def locks_output(argument: str, what: str) -> Callable[[FunctionT], FunctionT]:
    """Decorator: the call holds ``exclusive_output`` on the folder passed as its parameter ``argument``."""
    def decorate(function: FunctionT) -> FunctionT:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args: Any, **kwargs: Any) -> Any:
            folder = signature.bind(*args, **kwargs).arguments[argument]
            with exclusive_output(folder, what):
                return function(*args, **kwargs)
        return locked  # type: ignore[return-value]
    return decorate


class OutputLock:
    """``exclusive_output`` held by an object for its lifetime, for code whose run is an object rather than a
    block: released by ``release()`` or when the object is garbage collected (and always at process exit)."""

    def __init__(self, folder: str | Path, what: str, context: DistributedContext | None = None) -> None:
        self._block: contextlib.AbstractContextManager | None = None
        block = exclusive_output(folder, what, context)
        block.__enter__()
        self._block = block

    def release(self) -> None:
        if self._block is not None:
            block, self._block = self._block, None
            block.__exit__(None, None, None)

    def __del__(self) -> None:
        self.release()
