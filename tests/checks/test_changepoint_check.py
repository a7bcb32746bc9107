"""The change-point method end to end: from a log to the alert, the onset day, the report's words
and the chart's SRM panel (computed from the traffic matrix, no query of its own)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

import xpyrment_sql as xs
from xpyrment_sql.reporting.charts import traffic_figure
from xpyrment_sql.reporting.text import format_report

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
    assert "the mismatch most likely started on 2026-01-19" in format_report(report, "log")
    assert sequential.stopped_at < START + pd.Timedelta(days=16)
    cumulative = monitor.run_telemetry_checks([1, 1], freq="h", sequential_method="anytime").sequential_srm
    assert not cumulative.srm_detected or cumulative.stopped_at > sequential.stopped_at
    figure = traffic_figure(report.traffic, [1, 1], sequential_method="changepoint")
    labels = [line.get_label() for line in figure.axes[3].get_lines()]
    assert "change-point evidence R_t" in labels
    assert "1/alpha = 100" in labels
    assert "onset (most evidence at detection)" in labels


def test_the_method_is_refused_by_name_when_misspelled():
    with pytest.raises(xs.ParameterError, match="'anytime', 'changepoint' or 'sprt'"):
        xs.CheckSettings(sequential_method="change-point")


def test_the_concentration_setting_is_the_cumulative_terms_prior():
    """``concentration`` reaches the change-point's ``c0`` (it is not silently ignored): every other
    term of ``R_t`` is nonnegative, so ``R_t >= w * BF_c0(1:t)``, here computed with scipy for the
    chosen ``c0``."""
    monitor = xs.LiveMonitor(late_break_log(days=6, onset_day=1, loss=0.1), time_col="ts")
    report = monitor.run_telemetry_checks([1, 1], freq="D", concentration=50_000.0)
    sequential = report.sequential_srm
    assert sequential.concentration == 50_000.0
    counts = np.cumsum(report.traffic.new, axis=0)
    c, n = 50_000.0, counts
    log_bf = (
        gammaln(c) - gammaln(c + n.sum(axis=1))
        + (gammaln(c / 2 + n) - gammaln(c / 2)).sum(axis=1) - n.sum(axis=1) * np.log(0.5)
    )  # fmt: skip
    assert np.all(np.asarray(sequential.running_log_bayes_factors) >= np.log(0.75) + log_bf - 1e-9)
    default = monitor.run_telemetry_checks([1, 1], freq="D").sequential_srm
    assert not np.allclose(default.running_log_bayes_factors, sequential.running_log_bayes_factors)
