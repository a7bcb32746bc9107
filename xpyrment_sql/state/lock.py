"""The lock that keeps two runs from using one state file at once.

An exclusive ``flock`` on a sibling file ``<state file>.lock``, taken before the state file is opened
and released when it is closed. The holder writes its pid and start time into the lock file so a run
that gives up waiting can say who holds it. The lock file stays on disk: an unlocked one is harmless,
and the kernel drops the lock when its holder exits, even when killed, so a crash never leaves a
stale lock. Deleting the lock file while a run holds it would let a second run in. ``flock`` is
local to one machine: keep state files off network file systems shared by several machines.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import IO

from xpyrment_sql.state.errors import StateError, StateLockedError

POLL_SECONDS = 0.1
"""How often a waiting run tries the lock again."""


def acquire(path: Path, timeout: float) -> IO[str]:
    """An exclusive lock on ``<path>.lock``, waiting up to ``timeout`` seconds for another run.

    The holder's pid and start time are written into the lock file so a waiting run can say who it is.
    """
    try:
        import fcntl  # here, not at the top: Unix only, and importing the library must work anywhere
    except ImportError:
        raise StateError(f"state file {path}: state files need a Unix system (fcntl locks)") from None
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for as long as the store is
    except OSError as exc:
        raise StateError(f"cannot create the lock file of the state file {path}: {exc}") from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip()
                handle.close()
                raise StateLockedError(
                    f"state file {path} is in use by another run{f' ({holder})' if holder else ''}; "
                    f"waited {timeout:g} s for its lock ({lock_path}). Let that run finish, or stop it"
                ) from None
            time.sleep(POLL_SECONDS)
    with contextlib.suppress(OSError):  # the note only names the holder; a full disk must not stop the run
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
        handle.flush()
    return handle


def release(handle: IO[str]) -> None:
    """Release a lock :func:`acquire` took (the lock file stays)."""
    import fcntl

    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
