"""How every command line reports a user error: one line ``error: ...`` on stderr and exit status 2.

A user error is something the person running the command can fix (a config key, a path, a busy or
unwritable output folder, a full disk, a file that is not a checkpoint); its message names the culprit, so a
traceback would only hide it. Errors of this project's own code still raise with a traceback.
``KeyboardInterrupt`` is not caught.
"""

from __future__ import annotations

import errno
import sys
from typing import Callable

EXIT_USER_ERROR = 2
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class UserError(Exception):
    """Base of the errors a CLI reports as one line with exit status 2 (see ``run_cli``)."""


class DiskFullError(UserError, OSError):
    """A write failed because the file system is full (or the quota is exhausted)."""


def run_cli(body: Callable[[], int], user_errors: tuple[type[BaseException], ...] = (),
            prog: str | None = None) -> int:
    """Runs ``body`` and returns its exit status; a ``UserError`` (or one of ``user_errors``, the stage's own
    error classes) is printed as ``error: <message>`` and gives ``EXIT_USER_ERROR``.

    An ``OSError`` whose errno says the disk is full is reported the same way (a write outside the atomic
    writers, e.g. an appended log line)."""
    prefix = f"{prog}: error" if prog else "error"
    try:
        return body()
    except (UserError, *user_errors) as error:
        print(f"{prefix}: {error}", file=sys.stderr)
    except OSError as error:
        if error.errno not in DISK_FULL_ERRNOS:
            raise
        print(f"{prefix}: disk full while writing {error.filename or 'a file'}: {error.strerror}", file=sys.stderr)
    return EXIT_USER_ERROR
