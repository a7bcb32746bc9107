"""How many queries each check sends, and that what comes back is aggregated, never per row."""

from __future__ import annotations

import numpy as np

import xpyrment_sql as xs

from conftest import make_log


def test_run_telemetry_checks_sends_at_most_three_queries(query_log):
    log = make_log(units=5000, rows=40_000, days=10)
    monitor = xs.LiveMonitor(log, time_col="ts")
    report = monitor.run_telemetry_checks([1, 1], freq="h")
    assert 1 <= len(query_log) <= 3
    assert len(query_log) == 2, "the traffic matrix and the SPRT crossing"
    assert all("GROUP BY" in sql or "LIMIT 1" in sql for sql in query_log)
    assert report.traffic.active.shape == (240, 2)


def test_three_arms_need_one_query(query_log):
    monitor = xs.LiveMonitor(make_log(variants=("a", "b", "c")), time_col="ts")
    report = monitor.run_telemetry_checks([1, 1, 1], freq="h")
    assert len(query_log) == 1
    assert "exactly two variants" in report.sequential_srm.message


def test_single_checks_send_one_query_each_and_sprt_two(log, query_log):
    monitor = xs.LiveMonitor(log, time_col="ts")
    monitor.get_binned_traffic(freq="h")
    assert len(query_log) == 1
    monitor.check_live_srm([1, 1])
    assert len(query_log) == 2
    assert "COUNT(DISTINCT" in query_log[-1]
    monitor.check_sequential_srm()
    assert len(query_log) == 4


def test_live_srm_from_the_matrix_equals_the_distinct_count_query(log):
    monitor = xs.LiveMonitor(log, time_col="ts")
    report = monitor.run_telemetry_checks([1, 1], freq="h")
    direct = monitor.check_live_srm([1, 1])
    assert report.cumulative_srm.observed_counts == direct.observed_counts
    assert np.isclose(report.cumulative_srm.p_value, direct.p_value, rtol=1e-12)
    assert direct.observed_counts == tuple(log.groupby("variant").unit_id.nunique())
