"""Every accepted input gives the same matrix; every bad input gives a clear XpyrmentError."""

from __future__ import annotations

import duckdb
import ibis
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import ColumnError, DataError, SourceError

from conftest import make_log


def binned(data, **kwargs) -> pd.DataFrame:
    return xs.LiveMonitor(data, time_col="ts", **kwargs).get_binned_traffic(freq="h")


def test_parquet_file_glob_directory_and_csv_match_the_dataframe(log, tmp_path):
    expected = binned(log)
    folder = tmp_path / "parts"
    folder.mkdir()
    half = len(log) // 2
    pq.write_table(pa.Table.from_pandas(log.iloc[:half]), folder / "a.parquet")
    pq.write_table(pa.Table.from_pandas(log.iloc[half:]), folder / "b.parquet")
    log.to_csv(tmp_path / "log.csv", index=False)
    for data in (str(folder / "*.parquet"), folder, str(tmp_path / "log.csv")):
        pd.testing.assert_frame_equal(binned(data), expected, check_dtype=False)


def test_arrow_polars_and_ibis_tables_match_the_dataframe(log):
    expected = binned(log)
    pd.testing.assert_frame_equal(binned(pa.Table.from_pandas(log)), expected, check_dtype=False)
    pd.testing.assert_frame_equal(binned(pl.from_pandas(log)), expected, check_dtype=False)
    con = ibis.duckdb.connect()
    table = con.create_table("exposures", log)
    pd.testing.assert_frame_equal(binned(table), expected, check_dtype=False)


def test_duckdb_url_is_opened_read_only_and_reads_the_table(log, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as raw:
        raw.execute("CREATE SCHEMA logs")
        raw.execute("CREATE TABLE logs.exposures AS SELECT * FROM log")
    monitor = xs.LiveMonitor(f"duckdb://{path}", time_col="ts", table="logs.exposures")
    pd.testing.assert_frame_equal(monitor.get_binned_traffic(freq="h"), binned(log), check_dtype=False)
    with pytest.raises(Exception, match="read-only"):
        monitor.source.backend.raw_sql("CREATE TABLE logs.scratch (x INT)")


@pytest.mark.parametrize(
    ("columns", "kwargs", "unit_col", "rule"),
    [
        (["ts", "unit_id", "variant"], {}, "unit_id", "unit_id"),
        (["ts", "variant", "user"], {}, "user", "first other column"),
        (["variant", "ts", "user", "unit"], {}, "user", "first other column"),
        (["ts", "user", "unit_id"], {"variant_col": "unit_id"}, "user", "first other column"),
        (["ts", "user", "variant"], {"unit_col": "user"}, "user", "given"),
    ],
)
def test_unit_col_is_unit_id_then_the_first_column_that_is_not_time_or_variant(
    log, columns, kwargs, unit_col, rule
):
    frame = log.assign(user=log.unit_id, unit=log.unit_id)[columns]
    source = xs.LiveMonitor(frame, time_col="ts", **kwargs).source
    assert (source.unit_col, source.unit_rule) == (unit_col, rule)
    assert source.unit_rule_text == xs.source.UNIT_RULES[rule]


def test_the_first_other_column_rule_is_said_in_words(log):
    renamed = log.rename(columns={"unit_id": "user_id"})[["ts", "user_id", "variant"]]
    source = xs.LiveMonitor(renamed, time_col="ts").source
    assert f"{source.unit_col} ({source.unit_rule_text})" == (
        "user_id (first column that is not the time or variant column)"
    )
    binned = xs.LiveMonitor(renamed, time_col="ts").get_cumulative_traffic(freq="D")
    assert binned.iloc[-1].sum() == log.unit_id.nunique(), "units, not rows"


@pytest.mark.parametrize(
    ("columns", "kwargs", "words"),
    [
        (["ts", "variant"], {}, "no column can be the unit column: the data has only ts, variant"),
        (["unit_id", "variant", "ts"], {"unit_col": "ts"}, "unit_col='ts' is also time_col"),
        (["unit_id", "variant", "ts"], {"unit_col": "variant"}, "unit_col='variant' is also variant_col"),
        (["unit_id", "variant", "ts"], {"variant_col": "ts"}, "variant_col='ts' is also time_col"),
    ],
)
def test_a_column_never_plays_two_roles(log, columns, kwargs, words):
    with pytest.raises(ColumnError) as info:
        xs.LiveMonitor(log[columns], time_col="ts", **kwargs)
    assert words in str(info.value)


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


def test_construction_reads_the_schema_only(log, query_log):
    xs.LiveMonitor(log, time_col="ts")
    assert query_log == []
    xs.LiveMonitor(log.assign(ts=log.ts.astype(str)), time_col="ts")
    assert len(query_log) == 1, "a string time column costs exactly one parse check"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (
            {"time_col": "when"},
            "time_col='when' is not a column of the data; columns are: unit_id, variant, ts",
        ),
        ({"time_col": "ts", "unit_col": "user"}, "unit_col='user' is not a column"),
        ({"time_col": "ts", "variant_col": "arm"}, "variant_col='arm' is not a column"),
        ({"time_col": "unit_id"}, "time_col='unit_id' has type int64; expected TIMESTAMP"),
    ],
)
def test_bad_columns_name_the_column_and_the_expectation(log, kwargs, words):
    with pytest.raises(ColumnError) as info:
        xs.LiveMonitor(log, **kwargs)
    assert words in str(info.value)
    assert isinstance(info.value, xs.XpyrmentError)
    assert isinstance(info.value, ValueError)


def test_a_method_variant_col_is_checked_against_the_schema(log):
    monitor = xs.LiveMonitor(log, time_col="ts")
    with pytest.raises(ColumnError, match="variant_col='arm' is not a column"):
        monitor.get_binned_traffic(variant_col="arm")


@pytest.mark.parametrize(
    ("data", "kwargs", "words"),
    [
        ("nowhere/*.parquet", {}, "no file matches the path 'nowhere/*.parquet'"),
        (42, {}, "cannot monitor an object of type int"),
        ("postgres://u:hunter2@127.0.0.1:1/db", {}, "needs table="),
        ("postgres://u:hunter2@127.0.0.1:1/db", {"table": "t"}, "could not connect to postgres://u:***@"),
    ],
)
def test_bad_sources_raise_source_errors_without_credentials(data, kwargs, words):
    with pytest.raises(SourceError) as info:
        xs.LiveMonitor(data, time_col="ts", **kwargs)
    assert words in str(info.value)
    assert "hunter2" not in str(info.value)


def test_table_argument_is_rejected_for_frames_and_files(log, tmp_path):
    with pytest.raises(SourceError, match="table= is only used with a connection URL"):
        xs.LiveMonitor(log, time_col="ts", table="x")
    path = tmp_path / "log.parquet"
    log.to_parquet(path)
    with pytest.raises(SourceError, match="table= is only used with a connection URL"):
        xs.LiveMonitor(str(path), time_col="ts", table="x")


def test_mixed_file_types_are_rejected(log, tmp_path):
    log.to_parquet(tmp_path / "a.parquet")
    log.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(SourceError) as info:
        xs.LiveMonitor(str(tmp_path / "*"), time_col="ts")
    assert "both Parquet files" in str(info.value)
    assert "a.parquet" in str(info.value)
    assert "b.csv" in str(info.value)


def _write(folder, files: dict[str, object]) -> None:
    """Files under ``folder``: a DataFrame is written by its suffix, bytes as they are."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif name.endswith(".csv"):
            content.to_csv(path, index=False)
        else:
            content.to_parquet(path)


def _probes(log: pd.DataFrame) -> dict[str, tuple[object, dict, str | None]]:
    """Inputs users hand in by mistake or by circumstance -> (data, files to write, expectation).

    ``data`` is a frame, or a path under the test's folder; the expectation is the words of the
    XpyrmentError it must raise, ``"empty"`` for an empty answer, or ``"log"`` for the log's answer.
    """
    no_time = log.assign(ts=pd.Series(pd.NaT, index=log.index, dtype="datetime64[us]"))
    return {
        "empty parquet": ("e.parquet", {"e.parquet": log.iloc[:0]}, "empty"),
        "header-only csv": ("h.csv", {"h.csv": log.iloc[:0]}, "empty"),
        "zero-byte csv": ("z.csv", {"z.csv": b""}, "is empty (0 bytes)"),
        "zero-byte parquet beside a full one": ("d", {"d/a.parquet": log, "d/b.parquet": b""}, "log"),
        "spark markers in a folder": ("d", {"d/a.parquet": log, "d/_SUCCESS": b"", "d/.a.crc": b"x"}, "log"),
        "a glob matching a folder and a file": (
            "p*",
            {"p/a.parquet": log.iloc[:1000], "p-b.parquet": log.iloc[1000:]},
            "log",
        ),
        "all-null timestamps": ("n.parquet", {"n.parquet": no_time}, "empty"),
        "all-null time strings in a csv": ("n.csv", {"n.csv": log.assign(ts="")}, "empty"),
        "all-None time column": (log.assign(ts=None), {}, "time_col='ts' holds only nulls"),
        "boolean time column": (log.assign(ts=True), {}, "time_col='ts' has type boolean; expected"),
        "epoch seconds without a unit": (
            log.assign(ts=log.ts.astype("int64") // 10**9),
            {},
            "time_col='ts' has type int64; expected",
        ),
        "time strings where nothing parses": (
            log.assign(ts="soon"),
            {},
            "time_col='ts': 3000 value(s) do not parse as timestamps, e.g. 'soon'",
        ),
        "special timestamp words": (
            log.assign(ts=log.ts.astype(str).where(log.index != 5, "infinity")),
            {},
            "time_col='ts': 1 value(s) do not parse as timestamps, e.g. 'infinity'",
        ),
        "all-null variants": (log.assign(variant=None), {}, "empty"),
        "numbers and strings in one unit column": (
            log.assign(unit_id=log.unit_id.astype(object).where(log.index % 2 == 0, "x")),
            {},
            "column(s) 'unit_id' hold Python objects of mixed or unsupported types",
        ),
        "no match": ("missing/*.parquet", {}, "no file matches the path"),
        "an empty folder": ("d", {"d/_SUCCESS": b""}, "no data file is under the path"),
        "parquet and csv in one folder": ("d", {"d/a.parquet": log, "d/b.csv": log}, "both Parquet files"),
        "a file of another kind": ("d", {"d/a.parquet": log, "d/notes.json": b"{}"}, "neither Parquet"),
        "a corrupt parquet file": (
            "c.parquet",
            {"c.parquet": b"PAR1" + bytes(9) + b"PAR1"},
            "could not read '",
        ),
        "parquet files whose columns differ": (
            "d",
            {"d/a.parquet": log, "d/b.parquet": log.rename(columns={"unit_id": "user"})},
            "the data could not be read for ",
        ),
    }


@pytest.mark.parametrize("case", list(_probes(make_log())))
def test_every_awkward_input_gets_a_clear_error_or_the_right_answer(log, tmp_path, case):
    data, files, expected = _probes(log)[case]
    _write(tmp_path, files)
    if isinstance(data, str):
        data = str(tmp_path / data)
    if expected not in ("empty", "log"):
        with pytest.raises(xs.XpyrmentError) as info:
            xs.LiveMonitor(data, time_col="ts").run_telemetry_checks([1, 1], freq="h")
        assert expected in str(info.value)
        return
    monitor = xs.LiveMonitor(data, time_col="ts")
    report = monitor.run_telemetry_checks([1, 1], freq="h")
    binned = monitor.get_binned_traffic(freq="h")
    if expected == "empty":
        assert binned.empty
        assert report["alerts_triggered"] == ()
    else:
        pd.testing.assert_frame_equal(binned, xs.LiveMonitor(log, time_col="ts").get_binned_traffic(freq="h"))
