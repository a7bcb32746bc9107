"""How many queries each check sends, and that what comes back is aggregated, never per row."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xpyrment_sql as xs
from xpyrment_sql import queries
from xpyrment_sql.bins import parse_freq, time_chunks

from conftest import make_log


def test_run_telemetry_checks_sends_one_query_and_the_sprt_none_of_its_own(query_log):
    """The matrix query also finds the SPRT's first crossing and counts the multiple exposure."""
    log = make_log(units=5000, rows=40_000, days=10)
    monitor = xs.LiveMonitor(log, time_col="ts")
    report = monitor.run_telemetry_checks([1, 1], freq="h", sequential_method="sprt")
    assert len(query_log) == 1
    assert "GROUP BY" in query_log[0]
    assert "ROW_NUMBER() OVER" in query_log[0], "the crossing's window runs inside the matrix query"
    assert "'pair' AS" in query_log[0], "the multiple-exposure events come from the same query"
    assert report.traffic.active.shape == (240, 2)
    assert report.sequential_srm.stopped_index == -1

    lost = (log.variant == "treatment") & (log.unit_id % 3 == 0)
    query_log.clear()
    broken = xs.LiveMonitor(log[~lost], time_col="ts")
    report = broken.run_telemetry_checks([1, 1], freq="h", sequential_method="sprt")
    assert report.sequential_srm.srm_detected
    assert len(query_log) == 1, "the crossing comes back with the matrix"
    assert report.sequential_srm.stopped_index >= 0


def test_the_anytime_test_needs_no_query_of_its_own(query_log):
    log = make_log(units=5000, rows=40_000, days=10)
    lost = (log.variant == "treatment") & (log.unit_id % 3 == 0)
    report = xs.LiveMonitor(log[~lost], time_col="ts").run_telemetry_checks([1, 1], freq="h")
    assert report.sequential_srm.srm_detected
    assert "MULTIPLE_EXPOSURE" not in report.alerts_triggered
    assert len(query_log) == 1, "the traffic matrix, with the multiple-exposure events"
    assert not any("ROW_NUMBER() OVER" in q for q in query_log), "the anytime test needs no window"
    query_log.clear()
    report = xs.LiveMonitor(log, time_col="ts").run_telemetry_checks(
        [1, 1], freq="h", max_multiple_exposure_share=None
    )
    assert report.multiple_exposure is None
    assert len(query_log) == 1, "the traffic matrix alone"
    assert "'pair' AS" not in query_log[0], "no multiple-exposure events when not asked for"


def test_three_arms_need_one_query(query_log):
    monitor = xs.LiveMonitor(make_log(variants=("a", "b", "c")), time_col="ts")
    report = monitor.run_telemetry_checks([1, 1, 1], freq="h")
    assert len(query_log) == 1
    assert report.sequential_srm.variants == ("a", "b", "c")
    query_log.clear()
    report = monitor.run_telemetry_checks([1, 1, 1], freq="h", sequential_method="sprt")
    assert len(query_log) == 1
    assert "exactly two variants" in report.sequential_srm.message


def test_single_checks_send_one_query_each(log, query_log):
    monitor = xs.LiveMonitor(log.assign(variant_group=log.unit_id % 3), time_col="ts")
    monitor.get_binned_traffic(freq="h")
    assert len(query_log) == 1
    monitor.check_live_srm([1, 1])
    assert len(query_log) == 2
    assert "COUNT(DISTINCT" in query_log[-1]
    assert monitor.check_sequential_srm(target_treatment_ratio=0.3).srm_detected
    assert len(query_log) == 3, "a 30% design on a 50/50 log crosses, found by the matrix query"
    monitor.check_anytime_srm([7, 3])
    assert len(query_log) == 4
    monitor.check_multiple_exposure()
    assert len(query_log) == 5
    monitor.check_srm_by("variant_group", [1, 1])
    assert len(query_log) == 6
    assert "DISTINCT" in query_log[-1]
    assert "UNION ALL" in query_log[-1]


def test_live_srm_from_the_matrix_equals_the_distinct_count_query(log):
    monitor = xs.LiveMonitor(log, time_col="ts")
    report = monitor.run_telemetry_checks([1, 1], freq="h")
    direct = monitor.check_live_srm([1, 1])
    assert report.cumulative_srm.observed_counts == direct.observed_counts
    assert np.isclose(report.cumulative_srm.p_value, direct.p_value, rtol=1e-12)
    assert direct.observed_counts == tuple(log.groupby("variant").unit_id.nunique())


def test_time_chunks_cover_whole_bins_with_open_ends():
    bins = parse_freq("h")
    first, last = pd.Timestamp("2026-01-05 00:10", tz="UTC"), pd.Timestamp("2026-01-08 23:50", tz="UTC")
    chunks = time_chunks(bins, first, last, rows=40_000_000, target_rows=8_000_000)
    assert len(chunks) == 5
    assert chunks[0][0] is None
    assert chunks[-1][1] is None
    for (_, before), (since, _) in itertools.pairwise(chunks):
        assert before == since
        assert since.minute == 0
        assert since.second == 0
    assert time_chunks(bins, first, last, rows=1_000)[0] == (None, None)


@pytest.mark.parametrize("int96", [False, True], ids=["footer statistics", "int96 without statistics"])
def test_a_parquet_logs_span_is_read_when_first_needed_from_its_footers(tmp_path, query_log, int96):
    """Min, max and count of the time column over two files; INT96 timestamps carry no statistics,
    so the span falls back to one query over the rows, which the report lists."""
    log = make_log(units=500, rows=4_000, days=3)
    log["ts"] = log.ts + pd.to_timedelta(np.arange(len(log)) % 997, unit="us")
    for part, rows in enumerate((log.iloc[:2_500], log.iloc[2_500:])):
        table = pa.Table.from_pandas(rows, preserve_index=False)
        pq.write_table(table, tmp_path / f"part-{part}.parquet", row_group_size=700,
                       use_deprecated_int96_timestamps=int96)  # fmt: skip
    monitor = xs.LiveMonitor(str(tmp_path / "*.parquet"), time_col="ts")
    query_log.clear()
    assert "span" not in vars(monitor.source), "opening the log reads no span"
    span = monitor.source.span
    assert (span.first, span.last) == (log.ts.min().tz_localize("UTC"), log.ts.max().tz_localize("UTC"))
    assert span.rows == 4_000
    assert len(query_log) == (1 if int96 else 0)
    assert monitor.source.span is span, "read once"


def test_chunked_counts_equal_one_pass_counts(tmp_path):
    log = make_log(units=3000, rows=30_000, days=6)
    path = tmp_path / "log.parquet"
    log.sort_values("ts").to_parquet(path, row_group_size=2_000)
    monitor = xs.LiveMonitor(str(path), time_col="ts")
    span = monitor.source.span
    assert span.rows == 30_000
    assert span.first == log.ts.min().tz_localize("UTC")
    bins = parse_freq("h")
    chunks = time_chunks(bins, span.first, span.last, span.rows, target_rows=3_000)
    assert len(chunks) == 10
    one_pass = monitor.source.execute(queries.traffic_counts(monitor.source, "variant", bins))
    chunked = monitor.source.execute(queries.traffic_counts(monitor.source, "variant", bins, None, chunks))
    key = ["bin", "variant"]
    pd.testing.assert_frame_equal(
        chunked.sort_values(key).reset_index(drop=True),
        one_pass.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    per_hour = log.assign(bin=log.ts.dt.floor("h")).groupby(["bin", "variant"]).unit_id.nunique()
    assert chunked.active.sum() == per_hour.sum()


def test_hundreds_of_chunks_compile_and_count_the_same(log):
    monitor = xs.LiveMonitor(log, time_col="ts")
    bins = parse_freq("h")
    first = log.ts.min().tz_localize("UTC")
    last = log.ts.max().tz_localize("UTC")
    chunks = time_chunks(bins, first, last, rows=10**9, target_rows=1)
    assert len(chunks) == 120
    chunked = monitor.source.execute(queries.traffic_counts(monitor.source, "variant", bins, None, chunks))
    one_pass = monitor.source.execute(queries.traffic_counts(monitor.source, "variant", bins))
    assert chunked.active.sum() == one_pass.active.sum()
    assert chunked.new.sum() == one_pass.new.sum()
