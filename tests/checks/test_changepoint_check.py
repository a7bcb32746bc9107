"""The change-point method end to end: from a log to the alert, the onset day, the report's words
and the chart's SRM panel (computed from the traffic matrix, no query of its own)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.reporting.charts import traffic_figure

START = pd.Timestamp("2026-01-05")


def late_break_log(
    days: int = 20, per_day: int = 3000, onset_day: int = 15, loss: float = 0.3
) -> pd.DataFrame:
    """One exposure per unit, evenly split; from ``onset_day`` on, treatment loses ``loss`` of its units."""
    rng = np.random.default_rng(8)
    units = days * per_day
    ts = START + pd.to_timedelta(rng.integers(0, days * 86_400, units), unit="s")
    variant = np.where(rng.random(units) < 0.5, "control", "treatment")
    lost = (
        (variant == "treatment")
        & (ts >= START + pd.Timedelta(days=onset_day - 1))
        & (rng.random(units) < loss)
    )
    return pd.DataFrame({"unit_id": np.arange(units), "variant": variant, "ts": ts})[~lost]


def test_a_late_break_alerts_with_its_onset_where_the_cumulative_test_is_still_quiet(query_log):
    log = late_break_log()
    monitor = xs.LiveMonitor(log, time_col="ts")
    query_log.clear()
    report = monitor.run_telemetry_checks([1, 1], freq="h", sequential_method="changepoint")
    assert len(query_log) == 1, "no query beyond the traffic matrix"
    sequential = report.sequential_srm
    assert sequential.method == "changepoint"
    assert sequential.srm_detected
    assert "SEQUENTIAL_SRM_TRIGGERED" in report.alerts_triggered
    assert sequential.onset_at == START + pd.Timedelta(days=14)
    assert sequential.stopped_at < START + pd.Timedelta(days=16)
    cumulative = monitor.run_telemetry_checks([1, 1], freq="h", sequential_method="anytime").sequential_srm
    assert not cumulative.srm_detected or cumulative.stopped_at > sequential.stopped_at
    figure = traffic_figure(report.traffic, [1, 1], sequential_method="changepoint")
    labels = [line.get_label() for line in figure.axes[3].get_lines()]
    assert "change-point mixture p-value" in labels
    assert "onset (most evidence at detection)" in labels


def test_the_method_is_refused_by_name_when_misspelled():
    with pytest.raises(xs.ParameterError, match="'anytime', 'changepoint' or 'sprt'"):
        xs.CheckSettings(sequential_method="change-point")
