"""xpyrment_sql: the library under test, through its public ``LiveMonitor`` API only.

The baselines compute the seed's checks, so the library is asked for exactly those: the seed's SPRT
(``sequential_method="sprt"``), its z-score drop test (``drop_method="zscore"``) and no extra
multiple-exposure query (``max_multiple_exposure_share=None``), each passed only if
``run_telemetry_checks`` accepts it. The seed judges the last bin; the library judges the latest
*complete* one, so the monitor is evaluated at the end of the log's last bin (``until``, from the
Parquet footers' statistics: no rows are read), where the two are the same bin.
``XPYRMENT_MEMORY_LIMIT`` (set by ``run.py --mem-limit``) becomes ``LiveMonitor(memory_limit=...)``.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import xpyrment_sql as xs
from benchmarks.baselines.common import EXACT_SEMANTICS, cli, iso_labels, lr_value
from xpyrment_sql.bins import as_utc, parse_freq

SAME_CHECKS: dict[str, Any] = {
    "sequential_method": "sprt",
    "max_multiple_exposure_share": None,
    "drop_method": "zscore",
}


def end_of_last_bin(path: str, freq: str) -> pd.Timestamp:
    """The end of the bin holding the log's latest exposure, from the Parquet footers alone."""
    metadata = pq.ParquetFile(path).metadata
    column = metadata.schema.names.index("ts")
    stats = (metadata.row_group(i).column(column).statistics for i in range(metadata.num_row_groups))
    latest = max(pd.Timestamp(s.max) for s in stats)
    bins = parse_freq(freq)
    return as_utc(bins.labels(np.array([bins.key_of(latest) + 1]))[0])


def _same_checks(monitor: xs.LiveMonitor) -> dict[str, Any]:
    """The keyword arguments of ``SAME_CHECKS`` that this version of the library accepts."""
    accepted = inspect.signature(monitor.run_telemetry_checks).parameters
    return {name: value for name, value in SAME_CHECKS.items() if name in accepted}


def run_monitor(path: str, freq: str, ratios: list[float], *, exact: bool = True) -> dict[str, Any]:
    """``run_telemetry_checks(ratios, freq=freq)`` converted to the baselines' output dict."""
    monitor = xs.LiveMonitor(
        path,
        time_col="ts",
        exact=exact,
        memory_limit=os.environ.get("XPYRMENT_MEMORY_LIMIT") or None,
        until=end_of_last_bin(path, freq),
    )
    report = monitor.run_telemetry_checks(ratios, freq=freq, **_same_checks(monitor))
    traffic, anomaly, chi, seq = (
        report.traffic,
        report.traffic_anomaly,
        report.cumulative_srm,
        report.sequential_srm,
    )
    if hasattr(seq, "running_log_likelihood_ratios"):
        log_lr = np.asarray(seq.running_log_likelihood_ratios, dtype=float)
    else:
        log_lr = np.log(np.asarray(getattr(seq, "running_likelihood_ratios", []), dtype=float))
    sprt: dict[str, Any] = {
        "srm_detected": bool(seq.srm_detected),
        "stopped_index": int(seq.stopped_index),
        "log_lr": log_lr.tolist(),
        "last_lr": lr_value(float(log_lr[-1])) if log_lr.size else None,
    }
    if log_lr.size:
        sprt.update(control=seq.control, treatment=seq.treatment, p0=float(seq.target_treatment_ratio))
    semantics = dict(EXACT_SEMANTICS, active="exact" if exact else "approx")
    return {
        "impl": "xpyrment" if exact else "xpyrment_approx",
        "freq": freq,
        "semantics": semantics,
        "bins": iso_labels(traffic.bins.to_numpy()),
        "variants": [str(v) for v in traffic.variants],
        "active": np.asarray(traffic.active, dtype=np.int64).tolist(),
        "cumulative": np.cumsum(np.asarray(traffic.new, dtype=np.int64), axis=0).tolist(),
        "anomaly": {
            "anomaly_detected": bool(anomaly.anomaly_detected),
            "latest_volume": float(anomaly.latest_volume),
            "historical_mean": float(anomaly.historical_mean),
            "historical_std": float(anomaly.historical_std),
            "z_score": float(anomaly.z_score),
        },
        "chi_square": {
            "srm_detected": bool(chi.srm_detected),
            "p_value": float(chi.p_value),
            "statistic": float(chi.chi_square),
            "observed": [int(c) for c in chi.observed_counts],
        },
        "sprt": sprt,
        "extra": {"alerts": list(report.alerts_triggered)},
    }


def run(path: str, freq: str, ratios: list[float]) -> dict[str, Any]:
    """xpyrment_sql's ``run_telemetry_checks`` with exact distinct counts."""
    return run_monitor(path, freq, ratios, exact=True)


if __name__ == "__main__":
    cli(run)
