"""xpyrment_sql with ``LiveMonitor(exact=False)``: active units per bin by HyperLogLog.

Cumulative traffic and both SRM tests stay exact and are compared as such; the active matrix (and the
anomaly test on it) is an estimate, reported as a relative error against the exact matrix.
"""

from __future__ import annotations

from typing import Any

from benchmarks.baselines.common import cli
from benchmarks.baselines.xpyrment import run_monitor


def run(path: str, freq: str, ratios: list[float]) -> dict[str, Any]:
    """xpyrment_sql's ``run_telemetry_checks`` with approximate active counts."""
    return run_monitor(path, freq, ratios, exact=False)


if __name__ == "__main__":
    cli(run)
