"""How many queries each check sends, and that what comes back is aggregated, never per row."""

from __future__ import annotations

import numpy as np

import xpyrment_sql as xs

from conftest import make_log


def test_run_telemetry_checks_sends_at_most_three_queries(query_log):
    log = make_log(units=5000, rows=40_000, days=10)
    monitor = xs.LiveMonitor(log, time_col="ts")
    report = monitor.run_telemetry_checks([1, 1], freq="h")
    assert len(query_log) == 1, "healthy: the traffic matrix alone rules out an SPRT crossing"
    assert "GROUP BY" in query_log[0]
    assert report.traffic.active.shape == (240, 2)
    assert report.sequential_srm.stopped_index == -1

    lost = (log.variant == "treatment") & (log.unit_id % 3 == 0)
    query_log.clear()
    report = xs.LiveMonitor(log[~lost], time_col="ts").run_telemetry_checks([1, 1], freq="h")
    assert report.sequential_srm.srm_detected
    assert len(query_log) == 2, "the traffic matrix, then the crossing inside the candidate bins"
    assert "LIMIT 1" in query_log[1]


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
    monitor.check_sequential_srm(target_treatment_ratio=0.3)
    assert len(query_log) == 4, "a 30% design on a 50/50 log crosses: matrix plus crossing"


def test_live_srm_from_the_matrix_equals_the_distinct_count_query(log):
    monitor = xs.LiveMonitor(log, time_col="ts")
    report = monitor.run_telemetry_checks([1, 1], freq="h")
    direct = monitor.check_live_srm([1, 1])
    assert report.cumulative_srm.observed_counts == direct.observed_counts
    assert np.isclose(report.cumulative_srm.p_value, direct.p_value, rtol=1e-12)
    assert direct.observed_counts == tuple(log.groupby("variant").unit_id.nunique())
