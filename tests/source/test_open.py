"""open_source: every input kind opens, bad inputs fail clearly, and only the schema is read."""

from __future__ import annotations

import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import ColumnError, ParameterError, SourceError
from xpyrment_sql.source import open_source

from conftest import make_log


def test_construction_reads_the_schema_only(log, query_log):
    xs.LiveMonitor(log, time_col="ts")
    assert query_log == []
    xs.LiveMonitor(log.assign(ts=log.ts.astype(str)), time_col="ts")
    assert len(query_log) == 1, "a string time column costs exactly one parse check"


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


def test_a_source_without_a_time_column_reads_nothing_and_refuses_timestamps(log, tmp_path, query_log):
    path = tmp_path / "log.parquet"
    log.assign(ts=log.ts.astype(str)).to_parquet(path)
    source = open_source(str(path), time_col=None)
    assert query_log == [], "no parse check and no span without a time role"
    assert (source.time_col, source.unit_col, source.variant_col, source.span) == (
        None,
        "unit_id",
        "variant",
        None,
    )
    with pytest.raises(ColumnError, match=r"opened without a time column \(time_col=None\)"):
        source.timestamp()


def test_a_time_unit_without_a_time_column_is_a_parameter_error(log):
    with pytest.raises(
        ParameterError, match="time_unit='s' is for an epoch-number time column, but time_col is None"
    ):
        open_source(log, time_col=None, time_unit="s")
