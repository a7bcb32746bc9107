"""Every check gives the same answer whatever kind of input holds the log.

One parametrised fixture hands the same rows to the monitor as a pandas, polars or Arrow frame, a
Parquet or CSV file, a ``duckdb://`` file with a table name, and an Ibis table of the user's own
DuckDB connection. The answers are compared with the pandas references in ``reference.py``, so a
kind that misreads a column or a timestamp fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import polars as pl
import pytest

import xpyrment_sql as xs

import reference as ref
from backends import TABLE, arrow_log, experiment_log, write_duckdb_file

KINDS = ("pandas", "polars", "arrow", "parquet", "csv", "duckdb_file", "ibis_table")
RATIOS = {"control": 1, "treatment": 1}


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return experiment_log()


def as_input(kind: str, frame: pd.DataFrame, folder: Path) -> tuple[Any, str | None]:
    """What a user would hand the monitor for ``kind``, and the table name a URL needs."""
    arrow = arrow_log(frame)
    if kind == "pandas":
        return frame, None
    if kind == "polars":
        return pl.from_arrow(arrow), None
    if kind == "arrow":
        return arrow, None
    if kind == "parquet":
        path = folder / "log.parquet"
        frame.to_parquet(path)
        return str(path), None
    if kind == "csv":
        path = folder / "log.csv"
        frame.to_csv(path, index=False)
        return str(path), None
    if kind == "duckdb_file":
        write_duckdb_file(frame, folder / "log.duckdb")
        return f"duckdb://{folder / 'log.duckdb'}", f"logs.{TABLE}"
    return ibis.duckdb.connect().create_table(TABLE, arrow), None


@pytest.fixture(scope="module", params=KINDS)
def monitor(request, log, tmp_path_factory) -> xs.LiveMonitor:
    data, table = as_input(request.param, log, tmp_path_factory.mktemp(request.param))
    return xs.LiveMonitor(data, time_col="ts", table=table)


def test_the_traffic_matrix_is_the_reference_on_every_kind(monitor, log):
    expected = ref.binned_traffic(log, "h")
    got = monitor.get_binned_traffic(freq="h")
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
    assert list(got.index) == list(expected.index)
    np.testing.assert_array_equal(
        monitor.get_cumulative_traffic(freq="D").to_numpy(), ref.cumulative_traffic(log, "D").to_numpy()
    )


def test_the_srm_tests_are_the_reference_on_every_kind(monitor, log):
    expected = ref.live_srm(log, RATIOS)
    live = monitor.check_live_srm(RATIOS)
    assert live.observed_counts == tuple(expected["observed_counts"])
    assert live.p_value == pytest.approx(expected["p_value"], rel=1e-12)
    segments = monitor.check_srm_by("platform", RATIOS)
    assert segments.overall_p_value == pytest.approx(expected["p_value"], rel=1e-12)


def test_a_telemetry_run_gives_the_same_alerts_on_every_kind(monitor, log):
    report = monitor.run_telemetry_checks(RATIOS, freq="h", drop_method="zscore", sequential_method="sprt")
    expected = ref.telemetry_alerts(log, RATIOS, freq="h")
    assert [a for a in report.alerts_triggered if a != "MULTIPLE_EXPOSURE"] == expected
    assert report.multiple_exposure.units == log.unit_id.nunique()


def test_until_cuts_every_kind_at_the_same_instant(log, tmp_path):
    until = (log.ts.min() + pd.Timedelta(days=2)).floor("h") + pd.Timedelta(minutes=30)
    kept = log[log.ts < until]
    counts = set()
    for kind in KINDS:
        folder = tmp_path / kind
        folder.mkdir()
        data, table = as_input(kind, log, folder)
        mon = xs.LiveMonitor(data, time_col="ts", table=table, until=until)
        counts.add(tuple(mon.check_live_srm(RATIOS).observed_counts))
    assert counts == {tuple(kept.groupby("variant").unit_id.nunique())}
