"""Opening a source: any accepted input -> one validated :class:`~xpyrment_sql.source.table.Source`.

This is where the input's kind is told apart (Ibis table, path, URL, frame) and where every column
role is checked, from one schema look-up, so schema errors have one place to come from.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import ibis.expr.types as ir

from xpyrment_sql.errors import ColumnError, SourceError
from xpyrment_sql.source.columns import require_column, unit_column
from xpyrment_sql.source.engine import EngineSettings, embedded_duckdb
from xpyrment_sql.source.files import open_files, parquet_span
from xpyrment_sql.source.frames import frame_table, is_frame
from xpyrment_sql.source.table import Source
from xpyrment_sql.source.timestamps import check_time_type, check_time_unit, parse_time_strings
from xpyrment_sql.source.urls import open_url, redact_url

_DEFAULT_ENGINE = EngineSettings()


def open_source(
    data: Any,
    *,
    time_col: str | None,
    unit_col: str | None = None,
    variant_col: str = "variant",
    table: str | None = None,
    time_unit: str | None = None,
    engine: EngineSettings = _DEFAULT_ENGINE,
) -> Source:
    """Open ``data`` as a validated :class:`Source`.

    Args:
        data: A path/glob, a DataFrame or Arrow table, an Ibis table, or a connection URL. Nanosecond
            timestamps in a DataFrame or Arrow table are truncated to the microsecond (DuckDB's
            resolution) before the data is registered: only those columns are replaced, the others
            are shared, not copied.
        time_col: Timestamp column: TIMESTAMP, TIMESTAMPTZ, DATE, a string parsed in SQL (values with
            a UTC offset such as ``Z`` or ``+02:00`` are read as instants, naive values as UTC), or
            epoch numbers with ``time_unit``. ``None`` opens a source without a time role, for
            calculations that read no timestamps (metrics): nothing is scanned, and
            :meth:`Source.timestamp` raises a ColumnError if called.
        unit_col: Unit column. Default: ``unit_id`` if there is one, else the first column that is
            neither ``time_col`` nor ``variant_col`` (the seed took the first column, even the time
            column); ``Source.unit_rule`` records which rule chose it.
        variant_col: Variant column used when a check is not given another one.
        table: Table name, required with a connection URL (``schema.table`` is accepted).
        time_unit: Unit of an integer or float epoch time column: ``"s"``, ``"ms"``, ``"us"`` or
            ``"ns"`` since 1970-01-01 UTC. Required for such a column (a wrong guess would move every
            row by a factor of a thousand) and refused for any other time column, or without one.
        engine: Settings for the embedded DuckDB (used for files and DataFrames only).

    Raises:
        SourceError: the input cannot be opened. ColumnError: a column is missing, mistyped, or plays
        two roles. ParameterError: ``time_unit`` is unknown or does not fit the time column.
        DataError: a string time column holds values that do not parse as timestamps.
    """
    check_time_unit(time_col, time_unit)
    expr, backend, parquet_files, origin, embedded = _open_table(data, table, engine)
    schema = dict(expr.schema().items())
    if not schema:
        raise SourceError("the data source has no columns")
    if time_col is not None:
        time_col = require_column(schema, time_col, "time_col")
    variant_col = require_column(schema, variant_col, "variant_col")
    if variant_col == time_col:
        raise ColumnError(
            f"variant_col={variant_col!r} is also time_col; the variant column names each row's arm "
            "and must be another column"
        )
    unit, rule = unit_column(schema, unit_col, time_col, variant_col)
    if time_col is not None:
        check_time_type(schema, time_col, time_unit)
    source = Source(
        table=expr,
        backend=backend,
        time_col=time_col,
        unit_col=unit,
        variant_col=variant_col,
        schema=schema,
        unit_rule=rule,
        time_unit=time_unit,
        origin=origin,
        embedded=embedded,
    )
    if time_col is None:
        return source
    if schema[time_col].is_string():
        source = dataclasses.replace(source, time_offsets=parse_time_strings(source, time_col))
    if parquet_files and schema[time_col].is_timestamp():
        source = dataclasses.replace(source, span_reader=functools.partial(parquet_span, files=parquet_files))
    return source


def _open_table(
    data: Any, table: str | None, engine: EngineSettings
) -> tuple[ir.Table, Any, tuple[str, ...], str, bool]:
    """The Ibis table, the backend that runs it, the Parquet files it reads in place (if any), where the
    rows come from (for a state file's fingerprint) and whether they run on the private embedded DuckDB.
    """
    if isinstance(data, ir.Table):
        if table is not None:
            raise SourceError("table= is only used with a connection URL, not with an Ibis table")
        try:
            return data, data.get_backend(), (), "an Ibis table", False
        except Exception:
            return data, embedded_duckdb(engine), (), "an unbound Ibis table", True
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        if "://" in text:
            return (*open_url(text, table), (), f"{redact_url(text)} table {table}", False)
        if table is not None:
            raise SourceError("table= is only used with a connection URL, not with a file path")
        return (*open_files(text, engine), f"files {os.path.abspath(text)}", True)
    if table is not None:
        raise SourceError("table= is only used with a connection URL")
    if is_frame(data):
        return frame_table(data), embedded_duckdb(engine), (), f"a {type(data).__name__}", True
    raise SourceError(
        f"cannot monitor an object of type {type(data).__name__}; expected a Parquet/CSV path or glob, "
        "a pandas or polars DataFrame, a pyarrow Table, an Ibis table, or a connection URL with table="
    )
