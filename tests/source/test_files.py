"""Parquet and CSV paths, globs and folders read like the same rows in a DataFrame."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xpyrment_sql as xs
from xpyrment_sql.errors import SourceError


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


def test_mixed_file_types_are_rejected(log, tmp_path):
    log.to_parquet(tmp_path / "a.parquet")
    log.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(SourceError) as info:
        xs.LiveMonitor(str(tmp_path / "*"), time_col="ts")
    assert "both Parquet files" in str(info.value)
    assert "a.parquet" in str(info.value)
    assert "b.csv" in str(info.value)
