"""pandas, polars, Arrow and Ibis tables read like the same rows, and the caller's frame is left as it was."""

from __future__ import annotations

import ibis
import pandas as pd
import polars as pl
import pyarrow as pa

import xpyrment_sql as xs


def binned(data, **kwargs) -> pd.DataFrame:
    return xs.LiveMonitor(data, time_col="ts", **kwargs).get_binned_traffic(freq="h")


def test_arrow_polars_and_ibis_tables_match_the_dataframe(log):
    expected = binned(log)
    pd.testing.assert_frame_equal(binned(pa.Table.from_pandas(log)), expected, check_dtype=False)
    pd.testing.assert_frame_equal(binned(pl.from_pandas(log)), expected, check_dtype=False)
    con = ibis.duckdb.connect()
    table = con.create_table("exposures", log)
    pd.testing.assert_frame_equal(binned(table), expected, check_dtype=False)


def test_the_callers_frame_is_left_as_it_was(log):
    nanos = log.assign(ts=log.ts.dt.as_unit("ns") + pd.Timedelta(999, unit="ns"))
    before = nanos.copy()
    xs.LiveMonitor(nanos, time_col="ts").get_binned_traffic(freq="h")
    pd.testing.assert_frame_equal(nanos, before)
    assert nanos.ts.dt.unit == "ns"
