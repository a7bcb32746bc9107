"""The progress indicator: drawn on a terminal for long runs, silent when piped, quick or --json."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import time

import pytest

from xpyrment_sql.cli.progress import CLEAR_LINE, ProgressIndicator
from xpyrment_sql.synthetic import write_exposure_log


def test_a_long_run_shows_elapsed_time_and_the_check_then_clears_the_line():
    stream = io.StringIO()
    with ProgressIndicator(stream, enabled=True, delay=0.05, interval=0.01) as progress:
        progress.on_statement('SELECT "bin", COUNT(*) AS "active", 1 AS "new" FROM t')
        time.sleep(0.3)
    drawn = stream.getvalue()
    assert "traffic matrix (anomaly, chi-square and anytime-valid SRM) ..." in drawn
    elapsed = [float(part.split("s  ")[0]) for part in drawn.split(CLEAR_LINE) if "s  " in part]
    assert elapsed, "at least one redraw"
    assert elapsed == sorted(elapsed)
    assert elapsed[0] >= 0.05
    assert drawn.endswith(CLEAR_LINE), "the line is cleared when the run ends"


def test_a_quick_run_or_a_disabled_indicator_writes_nothing():
    quick, disabled = io.StringIO(), io.StringIO()
    with ProgressIndicator(quick, enabled=True, delay=1.0, interval=0.01):
        time.sleep(0.1)
    with ProgressIndicator(disabled, enabled=False, delay=0.0, interval=0.01):
        time.sleep(0.1)
    assert quick.getvalue() == ""
    assert disabled.getvalue() == ""


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    """Large enough that the traffic matrix query spans several redraws."""
    path = tmp_path_factory.mktemp("progress") / "big.parquet"
    write_exposure_log(path, rows=3_000_000, days=7, rows_per_unit=2.0, seed=1)
    return str(path)


LAUNCHER = (
    "import sys; from xpyrment_sql.cli import progress; from xpyrment_sql.cli.main import main; "
    "progress.ProgressIndicator.__init__.__defaults__ = (0.0, 0.05); sys.exit(main(sys.argv[1:]))"
)
"""The command line with the indicator drawing from the start (its 1 s delay is tested above): how
long the check takes on a shared machine then decides nothing."""


def _check(big_log, *extra, stderr_tty):
    command = [sys.executable, "-c", LAUNCHER, "check", big_log, "--time-col", "ts"]
    command += ["--ratios", "1,1", "--freq", "h", "--threads", "1", *extra]
    if not stderr_tty:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        return result.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.communicate(timeout=300)
    os.close(leader)
    return b"".join(chunks).decode()


def test_the_cli_draws_progress_on_a_terminal(big_log):
    drawn = _check(big_log, stderr_tty=True)
    assert re.search(r"\d+\.\ds  (traffic matrix|multiple exposure)", drawn), "elapsed time and the check"
    assert drawn.endswith(CLEAR_LINE)


def test_the_cli_is_quiet_when_piped_or_asked_for_json(big_log):
    assert _check(big_log, stderr_tty=False) == ""
    assert CLEAR_LINE not in _check(big_log, "--json", stderr_tty=True)
