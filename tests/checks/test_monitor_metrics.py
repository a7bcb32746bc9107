"""LiveMonitor's metric and guardrail methods: defaults, alerts, shutoff, query counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import xpyrment_sql as xs

from conftest import make_log


def monitored_log(latency_lift: float = 0.10) -> pd.DataFrame:
    """The shared exposure log plus a page load time per row; treatment loads ``latency_lift`` slower."""
    log = make_log(units=600, rows=6000)
    rng = np.random.default_rng(1)
    factor = np.where(log.variant == "treatment", 1 + latency_lift, 1.0)
    return log.assign(load_time=rng.normal(200.0, 10.0, len(log)) * factor)


def test_calculate_metrics_sums_per_monitor_unit_and_respects_until(query_log):
    log = monitored_log()
    until = pd.Timestamp("2026-01-07")
    monitor = xs.LiveMonitor(log, time_col="ts", until=until)
    query_log.clear()
    report = monitor.calculate_metrics([xs.MeanMetric("load", "load_time")])
    assert len(query_log) == 1
    kept = log[log.ts < until]
    units = kept.groupby(["variant", "unit_id"]).load_time.sum()
    control, treatment = units["control"], units["treatment"]
    result = report.get("load")
    assert (result.n_control, result.n_treatment) == (len(control), len(treatment))
    assert result.p_value == pytest.approx(stats.ttest_ind(treatment, control, equal_var=False).pvalue)


def test_guardrail_breach_alerts_and_shutoff_only_when_asked(query_log):
    latency = xs.MeanMetric("Page Latency", "load_time")
    calls = []
    alerts = xs.WebhookAlertDispatcher()
    alerts.register_callback(lambda kind, message, payload: calls.append((kind, payload)))
    monitor = xs.LiveMonitor(monitored_log(), time_col="ts", dispatcher=alerts)
    query_log.clear()
    report = monitor.run_telemetry_checks([1, 1], guardrails=[xs.GuardrailMetric(latency, 0.02)])
    assert report.alerts_triggered == ("GUARDRAIL_BREACH",)
    assert not report.shutoff_triggered
    assert not monitor.shutoff_triggered
    assert calls[0][1].metric_name == "Page Latency"
    assert report.guardrails.breaches[0].treatment == "treatment"
    assert len(query_log) == 2, "guardrail moments, traffic matrix with the multiple exposure"

    stop = xs.GuardrailMetric(latency, 0.02, direction="increase", shutoff=True)
    report = monitor.run_telemetry_checks([1, 1], guardrails=[stop])
    assert report.shutoff_triggered
    assert monitor.shutoff_triggered


def test_no_guardrails_no_guardrail_query(query_log):
    monitor = xs.LiveMonitor(monitored_log(0.0), time_col="ts")
    query_log.clear()
    report = monitor.run_telemetry_checks([1, 1])
    assert report.guardrails is None
    direct = monitor.check_guardrails([xs.GuardrailMetric(xs.MeanMetric("l", "load_time"), 0.05)])
    assert [r.status for r in direct.results] == ["ok"]


def test_bad_guardrail_input_fails_before_any_query(query_log):
    monitor = xs.LiveMonitor(monitored_log(), time_col="ts")
    query_log.clear()
    with pytest.raises(xs.ColumnError, match="value_col='latency'"):
        monitor.run_telemetry_checks([1, 1], guardrails=[xs.GuardrailMetric(xs.MeanMetric("l", "latency"))])
    with pytest.raises(xs.ParameterError, match="list of GuardrailMetric"):
        monitor.check_guardrails([xs.MeanMetric("l", "load_time")])
    with pytest.raises(xs.ColumnError, match="unit_col='user'"):
        monitor.calculate_metrics([xs.MeanMetric("l", "load_time")], unit_col="user")
    assert query_log == []
