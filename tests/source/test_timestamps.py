"""Every time column means the same instants, whatever form it comes in.

Strings (with or without UTC offsets), DATE columns, nanosecond timestamps and epoch numbers are
converted in SQL (nanoseconds cut to microseconds before a frame is registered); each test
compares the converted instants (or the traffic binned from them) with the true ones.
"""

from __future__ import annotations

import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import ColumnError, DataError, ParameterError
from xpyrment_sql.source import Source, open_source

OFFSETS = {"Z": 0, "+02:00": 120, "-05:00": -300, "+05:30": 330}


def instants(source: Source) -> pd.Series:
    """The time column as converted by the backend, as aware UTC timestamps in row order."""
    rows = source.execute(source.table.select("row", ts=source.timestamp()), "a test")
    stamps = pd.DatetimeIndex(rows.sort_values("row")["ts"])
    stamps = stamps.tz_convert("UTC") if stamps.tz is not None else stamps.tz_localize("UTC")
    return pd.Series(stamps.as_unit("us"), name="ts")


def with_offsets(log: pd.DataFrame, naive_too: bool) -> pd.DataFrame:
    """``log`` with each time written as a local clock reading and its offset (mixed in one column)."""
    suffixes = [*OFFSETS, ""] if naive_too else list(OFFSETS)
    suffix = pd.Series(np.asarray(suffixes)[np.arange(len(log)) % len(suffixes)], index=log.index)
    minutes = suffix.map(lambda text: OFFSETS.get(text, 0))
    local = log.ts + pd.to_timedelta(minutes, unit="min")
    return log.assign(ts=local.dt.strftime("%Y-%m-%dT%H:%M:%S") + suffix)


@pytest.mark.parametrize("naive_too", [False, True], ids=["offsets", "offsets-and-naive"])
def test_offset_strings_in_a_frame_bin_like_the_same_rows_read_from_csv(log, tmp_path, naive_too):
    text = with_offsets(log, naive_too)
    assert text.ts.str.contains("+02:00", regex=False).any()
    assert text.ts.str.contains("-05:00", regex=False).any()
    path = tmp_path / "log.csv"
    text.to_csv(path, index=False)
    truth = xs.LiveMonitor(log, time_col="ts")
    for data in (text, str(path)):
        monitor = xs.LiveMonitor(data, time_col="ts")
        for method in ("get_binned_traffic", "get_cumulative_traffic"):
            got = getattr(monitor, method)(freq="h")
            pd.testing.assert_frame_equal(got, getattr(truth, method)(freq="h"), check_dtype=False)


def test_offset_strings_are_read_as_instants_and_naive_strings_as_utc(log):
    text = with_offsets(log, naive_too=True).assign(row=np.arange(len(log)))
    source = xs.LiveMonitor(text, time_col="ts").source
    assert source.time_offsets
    expected = log.ts.dt.tz_localize("UTC").dt.as_unit("us").reset_index(drop=True)
    pd.testing.assert_series_equal(instants(source).reset_index(drop=True), expected)


def test_naive_strings_keep_the_naive_parse_and_one_scan(log, query_log):
    text = log.assign(ts=log.ts.dt.strftime("%Y-%m-%d %H:%M:%S"))
    source = xs.LiveMonitor(text, time_col="ts").source
    assert len(query_log) == 1, "one scan checks the parse and looks for offsets"
    assert not source.time_offsets
    assert source.timestamp().type() == dt.timestamp
    with_offset = xs.LiveMonitor(with_offsets(log, naive_too=False), time_col="ts").source
    assert len(query_log) == 2
    assert with_offset.timestamp().type().timezone == "UTC"


def nanosecond_inputs(log: pd.DataFrame) -> dict[str, object]:
    """The log with 999 ns added to every time, in every in-memory form that can hold nanoseconds."""
    nanos = log.assign(ts=log.ts.dt.as_unit("ns") + pd.Timedelta(999, unit="ns"), row=np.arange(len(log)))
    berlin = nanos.assign(ts=nanos.ts.dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    return {
        "pandas": nanos,
        "pandas-utc": nanos.assign(ts=nanos.ts.dt.tz_localize("UTC")),
        "pandas-berlin": berlin,
        "polars": pl.from_pandas(nanos),
        "arrow": pa.Table.from_pandas(nanos, preserve_index=False),
        "arrow-berlin": pa.Table.from_pandas(berlin, preserve_index=False),
    }


@pytest.mark.parametrize("form", list(nanosecond_inputs(pd.DataFrame({"ts": pd.to_datetime([])}))))
def test_nanosecond_timestamps_are_truncated_to_the_microsecond(log, form):
    data = nanosecond_inputs(log)[form]
    source = xs.LiveMonitor(data, time_col="ts").source
    expected = log.ts.dt.tz_localize("UTC").dt.as_unit("us").reset_index(drop=True)
    pd.testing.assert_series_equal(instants(source).reset_index(drop=True), expected)
    got = xs.LiveMonitor(data, time_col="ts").get_binned_traffic(freq="h")
    pd.testing.assert_frame_equal(got, xs.LiveMonitor(log, time_col="ts").get_binned_traffic(freq="h"))


@pytest.mark.parametrize(("unit", "step"), [("s", "1s"), ("ms", "1ms"), ("us", "1us"), ("ns", "1ns")])
def test_integer_epoch_columns_are_read_in_the_stated_unit(log, unit, step):
    fraction = pd.to_timedelta((np.arange(len(log)) * 7_919_993) % 1_000_000_000, unit="ns").floor(step)
    truth = log.ts.dt.as_unit("ns") + fraction.to_numpy()
    ticks = truth.astype("int64") // pd.Timedelta(step).value
    source = open_source(log.assign(ts=ticks, row=np.arange(len(log))), time_col="ts", time_unit=unit)
    expected = truth.dt.floor("us").dt.tz_localize("UTC").dt.as_unit("us").reset_index(drop=True)
    pd.testing.assert_series_equal(instants(source).reset_index(drop=True), expected)


def test_nanosecond_epochs_round_down_exactly_before_and_after_1970():
    values = [-1, -1_000, -1_001, 0, 999, 1_767_571_200_123_456_789, 9_000_000_000_000_000_001]
    frame = pd.DataFrame({"row": range(len(values)), "unit_id": 1, "variant": "a", "ts": values})
    got = instants(open_source(frame, time_col="ts", time_unit="ns"))
    expected = pd.to_datetime(values, unit="ns", utc=True).floor("us").as_unit("us")
    assert got.tolist() == expected.tolist()


@pytest.mark.parametrize(("unit", "values"), [("s", [1_767_571_200.25, -0.5]), ("ms", [1_767_571_200_250.0])])
def test_float_epoch_columns_are_rounded_to_the_microsecond(unit, values):
    frame = pd.DataFrame({"row": range(len(values)), "unit_id": 1, "variant": "a", "ts": values})
    got = instants(open_source(frame, time_col="ts", time_unit=unit))
    assert got.tolist() == pd.to_datetime(values, unit=unit, utc=True).as_unit("us").tolist()


def test_epoch_numbers_need_their_unit_and_only_they_take_one(log):
    epoch = log.assign(ts=log.ts.astype("int64") // 10**9)
    with pytest.raises(ColumnError) as info:
        open_source(epoch, time_col="ts")
    assert "time_col='ts' has type int64" in str(info.value)
    assert "time_unit= naming their unit: one of 's', 'ms', 'us', 'ns'" in str(info.value)
    with pytest.raises(ParameterError, match=r"time_unit='sec' is not a unit of epoch time; expected one of"):
        open_source(epoch, time_col="ts", time_unit="sec")
    with pytest.raises(ParameterError, match=r"time_unit='s' is for epoch-number time columns, but"):
        open_source(log, time_col="ts", time_unit="s")


def test_offset_strings_and_epoch_numbers_on_postgresql(postgres_server, log):
    rows = log.iloc[:200].reset_index(drop=True)
    text = with_offsets(rows, naive_too=True)
    millis = rows.ts.dt.as_unit("ms").astype("int64")
    with postgres_server.connect() as admin:
        admin.execute("DROP DATABASE IF EXISTS time_parsing")
        admin.execute("CREATE DATABASE time_parsing")
    with postgres_server.connect("time_parsing") as con:
        con.execute("CREATE TABLE t (row INT, unit_id BIGINT, variant TEXT, ts TEXT, ms BIGINT, bad TEXT)")
        with con.cursor() as cursor, cursor.copy("COPY t FROM STDIN") as copy:
            for index in range(len(rows)):
                record = (
                    index,
                    int(rows.unit_id[index]),
                    rows.variant[index],
                    text.ts[index],
                    int(millis[index]),
                    "soon" if index == 7 else text.ts[index],
                )
                copy.write_row(record)
    url = postgres_server.url(database="time_parsing")
    expected = rows.ts.dt.tz_localize("UTC").dt.as_unit("us")
    as_text = open_source(url, table="t", time_col="ts")
    as_millis = open_source(url, table="t", time_col="ms", time_unit="ms")
    with pytest.raises(DataError, match=r"time_col='bad': the postgres backend could not parse .*soon"):
        open_source(url, table="t", time_col="bad")
    try:
        assert as_text.time_offsets
        pd.testing.assert_series_equal(instants(as_text), expected)
        pd.testing.assert_series_equal(instants(as_millis), expected)
    finally:
        as_text.backend.disconnect()
        as_millis.backend.disconnect()


def test_string_date_and_timestamptz_time_columns_bin_like_timestamps(log):
    expected = xs.LiveMonitor(log, time_col="ts").get_binned_traffic(freq="D")
    as_text = log.assign(ts=log.ts.dt.strftime("%Y-%m-%d %H:%M:%S"))
    as_date = log.assign(ts=log.ts.dt.floor("D").dt.date)
    as_utc = log.assign(ts=log.ts.dt.tz_localize("UTC"))
    for frame in (as_text, as_date, as_utc):
        got = xs.LiveMonitor(frame, time_col="ts").get_binned_traffic(freq="D")
        assert got.to_numpy().tolist() == expected.to_numpy().tolist()
        assert list(got.index.tz_localize(None) if got.index.tz else got.index) == list(expected.index)


def test_unparseable_time_strings_are_counted_and_one_is_shown(log):
    bad = log.assign(ts=log.ts.dt.strftime("%Y-%m-%d %H:%M:%S"))
    bad.loc[[3, 7, 11], "ts"] = ["yesterday", "soon", "yesterday"]
    with pytest.raises(DataError, match=r"time_col='ts': 3 value\(s\) do not parse") as info:
        xs.LiveMonitor(bad, time_col="ts")
    assert "'soon'" in str(info.value) or "'yesterday'" in str(info.value)
