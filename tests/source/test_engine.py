"""The embedded engine's settings, and the approximate mode for active counts."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import ParameterError

from conftest import make_log


def setting(monitor: xs.LiveMonitor, name: str):
    return monitor.source.backend.con.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def test_memory_limit_threads_and_spill_folder_reach_duckdb(log, tmp_path):
    monitor = xs.LiveMonitor(
        log, time_col="ts", memory_limit="512MB", threads=1, temp_directory=str(tmp_path / "spill")
    )
    # A 512 MB budget leaves DuckDB half of it (384 MiB held back would leave less): 256,000,000 bytes.
    reference = duckdb.connect()
    reference.execute("SET memory_limit = '256000000B'")
    expected = reference.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert setting(monitor, "memory_limit") == expected == "244.1 MiB"
    assert setting(monitor, "threads") == 1
    assert setting(monitor, "temp_directory") == str(tmp_path / "spill")
    assert setting(monitor, "enable_progress_bar") is False
    assert setting(monitor, "preserve_insertion_order") is False
    assert setting(monitor, "parquet_metadata_cache") is True
    assert (
        xs.LiveMonitor(log, time_col="ts", progress=True)
        .source.backend.con.execute("SELECT current_setting('enable_progress_bar')")
        .fetchone()[0]
    )


def test_a_memory_limit_that_is_not_a_size_is_a_parameter_error(log):
    with pytest.raises(ParameterError, match="memory_limit='lots' is not a memory size"):
        xs.LiveMonitor(log, time_col="ts", memory_limit="lots")


def test_refused_duckdb_settings_are_a_parameter_error(log):
    with pytest.raises(ParameterError, match="the DuckDB settings were refused"):
        xs.LiveMonitor(log, time_col="ts", threads=-3)


def test_a_small_memory_limit_still_gives_exact_counts(tmp_path):
    log = make_log(units=200_000, rows=600_000, days=3)
    small = xs.LiveMonitor(log, time_col="ts", memory_limit="64MB", threads=1)
    roomy = xs.LiveMonitor(log, time_col="ts")
    assert np.array_equal(small.traffic_matrix(freq="h").active, roomy.traffic_matrix(freq="h").active)


def test_approximate_active_counts_are_close_and_everything_else_exact():
    log = make_log(units=50_000, rows=400_000, days=4)
    exact = xs.LiveMonitor(log, time_col="ts").run_telemetry_checks([1, 1], freq="h")
    approx = xs.LiveMonitor(log, time_col="ts", exact=False).run_telemetry_checks([1, 1], freq="h")
    error = np.abs(approx.traffic.active - exact.traffic.active) / exact.traffic.active
    assert error.mean() < 0.05
    assert error.max() < 0.2
    assert not np.array_equal(approx.traffic.active, exact.traffic.active)
    assert np.array_equal(approx.traffic.new, exact.traffic.new)
    assert approx.cumulative_srm.p_value == exact.cumulative_srm.p_value
    assert approx.sequential_srm.stopped_index == exact.sequential_srm.stopped_index
