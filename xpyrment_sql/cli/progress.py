"""A one-line progress indicator for the command line: elapsed time and the check whose query runs.

It draws on a terminal only, and only once a run has taken longer than ``delay`` seconds, so quick
runs and piped or logged output stay clean. The check's name comes from the SQL statement the run is
sending (see :func:`xpyrment_sql.queries.log.check_name`); the line is cleared when the run ends.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TextIO

from xpyrment_sql.queries.log import check_name

CLEAR_LINE = "\r\x1b[K"


class ProgressIndicator:
    """Redraws ``<elapsed>s <stage>`` on ``stream`` while the ``with`` block runs.

    Args:
        stream: Where to draw (the command line passes stderr).
        enabled: Draw at all; the command line enables it for a terminal without ``--json``.
        delay: Seconds before the first draw.
        interval: Seconds between redraws.
    """

    def __init__(self, stream: TextIO, enabled: bool, delay: float = 1.0, interval: float = 0.2) -> None:
        self.stream = stream
        self.enabled = enabled
        self.delay = delay
        self.interval = interval
        self._stage = "starting"
        self._started = 0.0
        self._drawn = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def stage(self, name: str) -> None:
        """Name what the run is doing now."""
        self._stage = name

    def on_statement(self, sql: str) -> None:
        """Name the check that ``sql`` serves (pass as a statement callback)."""
        self.stage(check_name(sql))

    def __enter__(self) -> ProgressIndicator:
        self._started = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="xpyrment-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._drawn:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            elapsed = time.monotonic() - self._started
            if elapsed >= self.delay:
                self.stream.write(f"{CLEAR_LINE}{elapsed:6.1f}s  {self._stage} ...")
                self.stream.flush()
                self._drawn = True
