"""What the command line prints, safe against a reader that has gone away.

A closed pipe (``xpyrment-sql check ... | head``) is not an error of the run: the reader has seen all
it wanted. Whatever cannot be written is dropped silently (the stream's file descriptor is pointed at
the null device so that nothing else fails on it, not even the interpreter's final flush), and the
command exits with the code the run would have had anyway: 1 only when an alert fired, so
``set -o pipefail`` scripts still see the verdict. (The shell convention of 141, death by SIGPIPE,
would tell them nothing.)
"""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from xpyrment_sql.reporting.records import MonitoringReport
from xpyrment_sql.reporting.text import format_run


def emit(text: str, stream: TextIO | None = None, end: str = "\n") -> None:
    """Print ``text`` to ``stream`` (stdout) now; a reader that has gone away is not an error."""
    target = sys.stdout if stream is None else stream
    try:
        print(text, file=target, end=end, flush=True)
    except BrokenPipeError:
        discard(target)


def discard(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at the null device: later writes and flushes go nowhere."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, stream.fileno())
    os.close(null)


def print_run(run: MonitoringReport, as_json: bool) -> None:
    """The run as text, or as one JSON object (non-finite numbers are ``null``, never ``NaN``)."""
    emit(json.dumps(run.to_dict(), indent=2, allow_nan=False) if as_json else format_run(run))
