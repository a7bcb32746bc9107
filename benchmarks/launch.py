"""Fork and exec one command, wait for it with ``os.wait4`` and report its own resource usage.

    python -I -S benchmarks/launch.py REPORT COMMAND [ARGS...]

Writes ``"<exit code or -signal> <ru_maxrss KB> <wall s>"`` to REPORT. Why a launcher: Linux carries a
process's peak RSS across ``exec``, and a child forked (or vfork-spawned) by the benchmark runner starts
with the runner's own peak (numpy, pandas and DuckDB loaded), which would floor every measurement at
that size. This launcher imports nothing but ``os``/``sys``/``time``, so the floor is a few MB.
"""

import os
import sys
import time


def main() -> int:
    """Run ``sys.argv[2:]`` as a child process and write its exit status, peak RSS and wall time."""
    report, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    with open(report, "w", encoding="ascii") as handle:
        handle.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {wall!r}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
