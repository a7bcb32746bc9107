"""Parquet and CSV files read in place by the embedded DuckDB, and a Parquet log's span from its footers.

A path may be one file, a glob or a folder (read recursively, as Spark and Arrow datasets are).
Marker and work files (``_SUCCESS``, ``.crc``) and empty files are skipped, and a path that mixes
Parquet with CSV, or matches files of neither kind, is refused before DuckDB sees it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.bins import as_utc
from xpyrment_sql.errors import SourceError
from xpyrment_sql.source.engine import EngineSettings, embedded_duckdb
from xpyrment_sql.source.table import Source, TimeSpan

_PARQUET_SUFFIXES = (".parquet", ".pq")
_TEXT_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")


def open_files(path: str, engine: EngineSettings) -> tuple[ir.Table, Any, tuple[str, ...]]:
    """The files ``path`` matches, read in place: all Parquet or all CSV, without the empty ones.

    Returns the table, the embedded DuckDB that reads it, and the Parquet files read (none for CSV). An empty
    (0-byte) file holds no rows, and DuckDB refuses it (a writer may just have created it), so it is
    skipped; a path matching only empty files is an error.
    """
    files = _matching_files(path)
    parquet = [name for name in files if name.lower().endswith(_PARQUET_SUFFIXES)]
    text = [name for name in files if name.lower().endswith(_TEXT_SUFFIXES)]
    other = [name for name in files if name not in parquet and name not in text]
    if other:
        more = f" (and {len(other) - 1} more such file(s))" if len(other) > 1 else ""
        raise SourceError(
            f"the path {path!r} matched {other[0]!r}{more}, which is neither Parquet "
            f"({', '.join(_PARQUET_SUFFIXES)}) nor CSV ({', '.join(_TEXT_SUFFIXES)})"
        )
    if parquet and text:
        raise SourceError(
            f"the path {path!r} matched both Parquet files ({parquet[0]!r}) and CSV files ({text[0]!r}); "
            "point it at files of one kind"
        )
    non_empty = [name for name in files if os.path.getsize(name) > 0]
    if not non_empty:
        raise SourceError(f"every file the path {path!r} matched is empty (0 bytes), e.g. {files[0]!r}")
    backend = embedded_duckdb(engine)
    try:
        if parquet:
            return backend.read_parquet(non_empty), backend, tuple(non_empty)
        return backend.read_csv(non_empty), backend, ()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"could not read {path!r}: {reason}") from None


def parquet_span(source: Source, files: Sequence[str]) -> TimeSpan | None:
    """First and last exposure time and row count of a Parquet log, from its files' footers.

    ``parquet_metadata`` reads only the footers: each row group's statistics of the time column
    (min and max, as text cast back to an instant) and its row count, so no row is read. Like the
    schema look-up when the files are opened, this metadata read is not one of the queries a report
    lists (it would print the files' paths). Where a row group has no usable statistics (INT96
    timestamps, writers that omit them, all-null groups), the span is computed from the rows
    instead, with a query over the time column that the report does list.
    """
    time_col = source.time_col
    if time_col is None:
        return None
    listed = ", ".join(sql_literal(name) for name in files)
    low, high = "TRY_CAST(stats_min_value AS TIMESTAMPTZ)", "TRY_CAST(stats_max_value AS TIMESTAMPTZ)"
    footers = (
        f"SELECT min({low}), max({high}), sum(row_group_num_rows), "
        f"count(*) FILTER (WHERE {low} IS NULL OR {high} IS NULL) "
        f"FROM parquet_metadata([{listed}]) WHERE path_in_schema = {sql_literal(time_col)}"
    )
    try:
        ((first, last, rows, unknown),) = source.backend.con.execute(footers).fetchall()
    except (duckdb.InvalidInputException, duckdb.IOException) as exc:
        account = " ".join(str(exc).split())
        raise SourceError(f"the Parquet footers could not be read: {account[:600]}") from None
    if unknown:
        ts = source.table[time_col]
        scan = source.table.aggregate(first=ts.min(), last=ts.max(), rows=source.table.count())
        span = source.execute(scan, "the time span of the log")
        first, last, rows = span["first"].iloc[0], span["last"].iloc[0], span["rows"].iloc[0]
    if pd.isna(first) or pd.isna(last):
        return None
    return TimeSpan(as_utc(pd.Timestamp(first)), as_utc(pd.Timestamp(last)), int(rows))


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _matching_files(path: str) -> list[str]:
    """The files ``path`` names: itself, the matches of a glob, and every file under a matched folder.

    Within folders and among glob matches, names starting with ``_`` or ``.`` are skipped, as Spark
    and Arrow datasets skip them: they are markers and work files (``_SUCCESS``, ``.part-0.crc``,
    ``_temporary/``), not data.
    """
    matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
    if not matches or not all(Path(m).exists() for m in matches):
        raise SourceError(f"no file matches the path {path!r}; expected Parquet or CSV files")
    files = []
    for match in map(Path, matches):
        if match.is_dir():
            files += [
                str(found)
                for found in sorted(match.rglob("*"))
                if found.is_file() and not _is_marker(found.relative_to(match))
            ]
        elif len(matches) == 1 or not _is_marker(Path(match.name)):
            files.append(str(match))
    if not files:
        raise SourceError(
            f"no data file is under the path {path!r} (names starting with '_' or '.' are skipped as "
            "markers); expected Parquet or CSV files"
        )
    return files


def _is_marker(relative: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in relative.parts)
