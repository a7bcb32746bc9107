"""Importing the package, and a telemetry run whose drop check finds no traffic above its forecast,
load none of the slow optional modules: ``scipy.stats`` alone takes about half a second, which an
hourly monitor would pay on every run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from xpyrment_sql.synthetic import write_exposure_log

DEFERRED = ("scipy", "scipy.special", "scipy.stats", "matplotlib", "urllib.request")
"""Modules ``import xpyrment_sql`` must not load: statistics, charts and webhook delivery load them
when they are used."""


def loaded_after(code: str, cwd: Path) -> list[str]:
    """Which of ``DEFERRED`` a fresh interpreter has in ``sys.modules`` after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_importing_the_package_loads_no_scipy_matplotlib_or_urllib_request(tmp_path):
    assert loaded_after("import xpyrment_sql", tmp_path) == []


def test_a_telemetry_run_judging_a_drop_loads_no_scipy_stats(tmp_path):
    """The drop is below its forecast, so the seasonal score needs only the lower tail (scipy.special)."""
    path = tmp_path / "log.parquet"
    write_exposure_log(path, rows=60_000, days=9, seed=3, traffic_drop={"keep": 0.2, "after": 0.99})
    code = (
        "import xpyrment_sql as xs\n"
        f"report = xs.LiveMonitor({str(path)!r}, time_col='ts')"
        ".run_telemetry_checks({'control': 1, 'treatment': 1}, freq='h')\n"
        "assert report.traffic_anomaly.anomaly_detected, report.traffic_anomaly.message\n"
    )
    assert loaded_after(code, tmp_path) == ["scipy", "scipy.special"]
