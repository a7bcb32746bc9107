"""User input -> a validated Ibis table plus column roles: the one place schema errors come from.

Accepted inputs:

* a path or glob of Parquet or CSV files (read in place by an embedded DuckDB, never loaded whole);
* a pandas or polars DataFrame or a pyarrow Table (registered on the embedded DuckDB);
* an Ibis table on any backend (queries run on that backend);
* a connection URL (``postgres://…``, ``duckdb://file.db``, …) plus ``table=``.

Validation happens once, at construction, from one schema look-up. A string time column is parsed in
SQL; values that do not parse are reported with their count and one example, and the same scan finds
whether any value carries a UTC offset (then every value is parsed as an instant). That scan is the
only query construction sends, and only string time columns pay for it. Epoch numbers are converted
in SQL too, in the unit the caller states (``time_unit=``): no unit is guessed.
"""

from __future__ import annotations

import atexit
import dataclasses
import glob
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.common.exceptions as com
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xpyrment_sql.bins import as_utc
from xpyrment_sql.errors import (
    BackendError,
    ColumnError,
    DataError,
    ParameterError,
    SourceError,
    XpyrmentError,
)
from xpyrment_sql.source.memory_budget import duckdb_share

_PARQUET_SUFFIXES = (".parquet", ".pq")
_TEXT_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
_MISSING_OPERATION = re.compile(r"(?:operations\.(?:\w+\.)*|rule for ')(\w+)'")
"""The Ibis operation named in a backend's "no translation rule for ..." error."""

TIME_UNITS = ("s", "ms", "us", "ns")
"""Units of epoch-number time columns: seconds, milli-, micro- and nanoseconds since 1970-01-01 UTC."""

UNIT_RULES: Mapping[str, str] = {
    "given": "given as unit_col",
    "unit_id": "the column named unit_id",
    "first other column": "first column that is not the time or variant column",
}
"""How the unit column was chosen (``Source.unit_rule``) -> how outputs say it."""

_INSTANT = dt.Timestamp(timezone="UTC")
_PER_SECOND = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_MICROSECONDS = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """Settings of the private embedded DuckDB that reads files and DataFrames.

    Attributes:
        memory_limit: The process's memory budget (e.g. ``"8GB"``); DuckDB's own ``memory_limit`` is
            set a little below it (see ``memory_budget``), and beyond that DuckDB spills to disk.
        threads: DuckDB ``threads``; default all cores.
        temp_directory: Where DuckDB spills; default a fresh private folder removed at exit.
        progress: Print DuckDB's progress bar on stderr for queries longer than two seconds.
    """

    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: str | None = None
    progress: bool = False


@dataclasses.dataclass(frozen=True)
class TimeSpan:
    """First and last exposure time and row count of a Parquet log, read from its footers.

    Used only to plan time chunks (see ``bins.time_chunks``); the chunks at both ends are open, so a
    log that grows after this was read is still counted in full.
    """

    first: pd.Timestamp
    last: pd.Timestamp
    rows: int


@dataclasses.dataclass(frozen=True)
class Source:
    """A validated exposure log.

    Attributes:
        table: The Ibis table the checks read; nothing is ever written to its backend.
        backend: The backend that executes every query.
        time_col: Column holding exposure timestamps.
        unit_col: Column identifying the randomisation unit.
        variant_col: Default column holding the variant (arm) name.
        schema: Column name -> Ibis data type, read once at construction.
        span: Time span of a Parquet log with a timestamp column (from Parquet statistics, so no
            rows are read), else ``None``.
        unit_rule: How ``unit_col`` was chosen, a key of :data:`UNIT_RULES`: ``"given"`` (passed as
            ``unit_col``), ``"unit_id"`` (the column of that name) or ``"first other column"`` (the
            first column that is neither the time nor the variant column).
        time_unit: Unit of an epoch-number time column (one of :data:`TIME_UNITS`), else ``None``.
        time_offsets: Whether some value of a string time column carries a UTC offset or zone
            (``...Z``, ``+02:00``); then every value is parsed as an instant, naive ones as UTC.
    """

    table: ir.Table
    backend: Any
    time_col: str
    unit_col: str
    variant_col: str
    schema: Mapping[str, dt.DataType]
    span: TimeSpan | None = None
    unit_rule: str = "given"
    time_unit: str | None = None
    time_offsets: bool = False

    @property
    def unit_rule_text(self) -> str:
        """How the unit column was chosen, in words (``"first column that is not the time or ..."``)."""
        return UNIT_RULES[self.unit_rule]

    def timestamp(self, table: ir.Table | None = None) -> ir.TimestampValue:
        """The time column as a timestamp expression; every conversion happens in SQL.

        Timestamps are used as they are and DATE columns cast. Strings are parsed as naive UTC
        timestamps, or as instants when some value carries an offset (``time_offsets``): a naive
        parse would keep ``10:00+02:00`` as 10:00 instead of 08:00 UTC. Epoch numbers become
        ``1970-01-01 + value`` in ``time_unit`` (see :func:`epoch_timestamp`).
        """
        column = (self.table if table is None else table)[self.time_col]
        kind = self.schema[self.time_col]
        if kind.is_timestamp():
            return column
        if kind.is_string():
            return column.try_cast(_INSTANT if self.time_offsets else "timestamp")
        if self.time_unit is not None:
            return epoch_timestamp(column, self.time_unit)
        return column.cast("timestamp")

    def require_column(self, name: str, role: str) -> str:
        """Return ``name`` if the table has it, else raise naming the role and the columns present."""
        return require_column(self.schema, name, role)

    def execute(self, expr: ir.Table, purpose: str = "a query a check needs") -> pd.DataFrame:
        """Run ``expr`` on the source's backend and return the (small) result as a DataFrame.

        Every query the library sends goes through here, so there is one place that touches a
        connection, and one place to count queries. A construct the backend cannot translate is
        reported as a :class:`BackendError` naming the backend and ``purpose`` (what the query is for).
        Files DuckDB cannot read when the query runs (Parquet files of a glob whose columns differ, a
        file removed since the source was opened) are a :class:`SourceError` with DuckDB's account,
        which names the files: the schema is read from the first file only, at construction.
        """
        try:
            return self.backend.execute(expr)
        except (com.OperationNotDefinedError, com.UnsupportedOperationError) as exc:
            operation = _MISSING_OPERATION.search(str(exc))
            missing = f"it has no {operation[1]} operation" if operation else str(exc)
            raise BackendError(f"the {self.backend_name} backend cannot run {purpose}: {missing}") from exc
        except (duckdb.InvalidInputException, duckdb.IOException) as exc:
            account = " ".join(str(exc).split())
            raise SourceError(f"the data could not be read for {purpose}: {account[:600]}") from None

    def require_window_functions(self, purpose: str) -> None:
        """Raise a :class:`BackendError` before sending ``purpose``'s query to an engine without windows.

        Polars' Ibis backend, for one, has no window functions.
        """
        has_operation = getattr(self.backend, "has_operation", None)
        if has_operation is not None and not has_operation(ops.WindowFunction):
            raise BackendError(
                f"the {self.backend_name} backend has no window functions, which {purpose} needs; "
                "run it on a backend with them (DuckDB, PostgreSQL, Spark, DataFusion, SQLite, ...)"
            )

    @property
    def backend_name(self) -> str:
        """Short name of the executing backend (``duckdb``, ``postgres``, ``pyspark``…)."""
        return str(getattr(self.backend, "name", type(self.backend).__name__))


def open_source(
    data: Any,
    *,
    time_col: str,
    unit_col: str | None = None,
    variant_col: str = "variant",
    table: str | None = None,
    time_unit: str | None = None,
    engine: EngineSettings = EngineSettings(),
) -> Source:
    """Open ``data`` as a validated :class:`Source`.

    Args:
        data: A path/glob, a DataFrame or Arrow table, an Ibis table, or a connection URL. Nanosecond
            timestamps in a DataFrame or Arrow table are truncated to the microsecond (DuckDB's
            resolution) before the data is registered: only those columns are replaced, the others
            are shared, not copied.
        time_col: Timestamp column: TIMESTAMP, TIMESTAMPTZ, DATE, a string parsed in SQL (values with
            a UTC offset such as ``Z`` or ``+02:00`` are read as instants, naive values as UTC), or
            epoch numbers with ``time_unit``.
        unit_col: Unit column. Default: ``unit_id`` if there is one, else the first column that is
            neither ``time_col`` nor ``variant_col`` (the seed took the first column, even the time
            column); ``Source.unit_rule`` records which rule chose it.
        variant_col: Variant column used when a check is not given another one.
        table: Table name, required with a connection URL (``schema.table`` is accepted).
        time_unit: Unit of an integer or float epoch time column: ``"s"``, ``"ms"``, ``"us"`` or
            ``"ns"`` since 1970-01-01 UTC. Required for such a column (a wrong guess would move every
            row by a factor of a thousand) and refused for any other time column.
        engine: Settings for the embedded DuckDB (used for files and DataFrames only).

    Raises:
        SourceError: the input cannot be opened. ColumnError: a column is missing, mistyped, or plays
        two roles. ParameterError: ``time_unit`` is unknown or does not fit the time column.
        DataError: a string time column holds values that do not parse as timestamps.
    """
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ParameterError(
            f"time_unit={time_unit!r} is not a unit of epoch time; expected one of "
            f"{', '.join(map(repr, TIME_UNITS))}"
        )
    expr, backend, is_parquet = _open_table(data, table, engine)
    schema = dict(expr.schema().items())
    if not schema:
        raise SourceError("the data source has no columns")
    time_col = require_column(schema, time_col, "time_col")
    variant_col = require_column(schema, variant_col, "variant_col")
    if variant_col == time_col:
        raise ColumnError(
            f"variant_col={variant_col!r} is also time_col; the variant column names each row's arm "
            "and must be another column"
        )
    unit, rule = _unit_column(schema, unit_col, time_col, variant_col)
    _check_time_type(schema, time_col, time_unit)
    source = Source(
        table=expr,
        backend=backend,
        time_col=time_col,
        unit_col=unit,
        variant_col=variant_col,
        schema=schema,
        unit_rule=rule,
        time_unit=time_unit,
    )
    if schema[time_col].is_string():
        source = dataclasses.replace(source, time_offsets=_parse_time_strings(source))
    if is_parquet and schema[time_col].is_timestamp():
        source = dataclasses.replace(source, span=_parquet_span(source))
    return source


def epoch_timestamp(column: ir.NumericValue, unit: str) -> ir.TimestampValue:
    """``1970-01-01 + column`` with ``column`` counted in ``unit`` (one of :data:`TIME_UNITS`), in SQL.

    Integers are exact: whole seconds and the rest are added as two intervals, the rest found by
    integer subtraction, so the sum stays exact where a backend divides through a double;
    nanoseconds are truncated to the microsecond. Floats are rounded to the microsecond first.
    Intervals added to a timestamp translate on every SQL backend, unlike ``to_timestamp``.
    """
    epoch = ibis.timestamp("1970-01-01 00:00:00")
    if not column.type().is_integer():
        column = (column.cast("float64") * _MICROSECONDS[unit]).round().cast("int64")
        unit = "us"
    if unit == "s":
        return epoch + column.as_interval("s")
    seconds = column // _PER_SECOND[unit]
    rest = column - seconds * _PER_SECOND[unit]
    if unit == "ns":
        rest, unit = rest // 1_000, "us"
    return epoch + seconds.as_interval("s") + rest.as_interval(unit)


def require_column(schema: Mapping[str, dt.DataType], name: str, role: str) -> str:
    """Return ``name`` if ``schema`` has it, else raise a ColumnError naming the role and columns."""
    if not isinstance(name, str) or name not in schema:
        raise ColumnError(
            f"{role}={name!r} is not a column of the data; columns are: {', '.join(map(str, schema))}"
        )
    return name


def _unit_column(
    schema: Mapping[str, dt.DataType], unit_col: str | None, time_col: str, variant_col: str
) -> tuple[str, str]:
    """The unit column and the rule that chose it (a key of :data:`UNIT_RULES`).

    A unit column that is also the time column would make every row its own "unit", and one that is
    also the variant column would make every arm one unit, so neither is ever taken, nor accepted.
    """
    if unit_col is not None:
        name = require_column(schema, unit_col, "unit_col")
        for role, other in (("time_col", time_col), ("variant_col", variant_col)):
            if name == other:
                raise ColumnError(
                    f"unit_col={name!r} is also {role}; the unit column identifies the randomised "
                    "unit (a user, a session) and must be another column"
                )
        return name, "given"
    others = [name for name in schema if name not in (time_col, variant_col)]
    if "unit_id" in others:
        return "unit_id", "unit_id"
    if others:
        return others[0], "first other column"
    raise ColumnError(
        f"no column can be the unit column: the data has only {', '.join(map(str, schema))}, which are "
        f"time_col={time_col!r} and variant_col={variant_col!r}; add a column identifying each unit "
        "and name it with unit_col="
    )


_SECRET_PARAMETER = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` without its secrets, for messages: credentials never appear in output.

    The password in ``user:password@host`` and the value of every query parameter whose name looks
    like a secret (``password=``, ``token=``, ``private_key=``, ``credentials=``...) become ``***``.
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{name}=***" if _SECRET_PARAMETER.search(name) else f"{name}={value}" if sep else name
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    shown = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    return shown + (f"#{parts.fragment}" if parts.fragment else "")


def _open_table(data: Any, table: str | None, engine: EngineSettings) -> tuple[ir.Table, Any, bool]:
    """The Ibis table, the backend that runs it, and whether it reads Parquet files in place."""
    if isinstance(data, ir.Table):
        if table is not None:
            raise SourceError("table= is only used with a connection URL, not with an Ibis table")
        try:
            return data, data.get_backend(), False
        except Exception:
            return data, _embedded_duckdb(engine), False
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        if "://" in text:
            return (*_open_url(text, table), False)
        if table is not None:
            raise SourceError("table= is only used with a connection URL, not with a file path")
        return _open_files(text, engine)
    if table is not None:
        raise SourceError("table= is only used with a connection URL")
    if _is_frame(data):
        return _frame_table(data), _embedded_duckdb(engine), False
    raise SourceError(
        f"cannot monitor an object of type {type(data).__name__}; expected a Parquet/CSV path or glob, "
        "a pandas or polars DataFrame, a pyarrow Table, an Ibis table, or a connection URL with table="
    )


def _is_frame(data: Any) -> bool:
    if isinstance(data, (pd.DataFrame, pa.Table)):
        return True
    module = type(data).__module__
    return module.startswith("polars") and type(data).__name__ == "DataFrame"


def _frame_table(data: Any) -> ir.Table:
    """A DataFrame or Arrow table as an Ibis table, refused here if no database column can hold it.

    Ibis infers the schema from the frame now but converts it to Arrow only at the first query, so a
    column it cannot type (an object column mixing numbers and strings) is named here instead of
    failing inside pyarrow later.
    """
    try:
        table = ibis.memtable(_microsecond_timestamps(data))
        schema = table.schema()
    except Exception as exc:
        raise SourceError(f"the {type(data).__name__} could not be read as a table: {exc}") from None
    mixed = [name for name, kind in schema.items() if kind.is_unknown()]
    if mixed:
        raise ColumnError(
            f"column(s) {', '.join(map(repr, mixed))} hold Python objects of mixed or unsupported types, "
            f"which no database column can hold; convert them to one type first, e.g. "
            f"frame[{mixed[0]!r}].astype(str)"
        )
    return table


def _microsecond_timestamps(data: Any) -> Any:
    """``data`` with nanosecond timestamp columns truncated (rounded down) to the microsecond.

    DuckDB keeps microseconds, and Ibis registers a pandas frame through pyarrow, which refuses to
    drop sub-microsecond digits; polars and Arrow nanosecond columns are cut the same way so that every
    input gives the same instants. Only those columns are replaced: a pandas frame is copied
    shallowly (its other columns are shared), polars and Arrow tables share the other columns too.
    """
    if isinstance(data, pd.DataFrame):
        nanos = [name for name, column in data.items() if _is_pandas_nanoseconds(column)]
        if not nanos:
            return data
        frame = data.copy(deep=False)
        for name in nanos:
            frame[name] = data[name].dt.as_unit("us")
        return frame
    if isinstance(data, pa.Table):
        for index, field in enumerate(data.schema):
            if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
                naive = data.column(index).cast(pa.timestamp("ns"))
                floored = pc.floor_temporal(naive, unit="microsecond").cast(pa.timestamp("us"))
                data = data.set_column(index, field.name, floored.cast(pa.timestamp("us", field.type.tz)))
        return data
    nanos = [
        name
        for name, kind in data.schema.items()
        if type(kind).__name__ == "Datetime" and getattr(kind, "time_unit", None) == "ns"
    ]
    return data.with_columns(data[name].dt.cast_time_unit("us") for name in nanos) if nanos else data


def _is_pandas_nanoseconds(column: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(column.dtype) and column.dt.unit == "ns"


def _embedded_duckdb(engine: EngineSettings) -> Any:
    """A private in-memory DuckDB: the only database this library ever creates objects in.

    Every query's result is small and placed by its keys (or ordered explicitly), so DuckDB need not
    preserve insertion order, which lets its operators stream and spill with less memory. Parquet
    footers are cached (and re-read when a file changes): the traffic matrix scans the log once per
    time chunk, and without the cache every scan keeps its own parsed copy of the footer outside
    ``memory_limit`` (at 1e8 rows in 168 chunks that alone doubled peak memory).
    """
    spill = engine.temp_directory or _private_spill_folder()
    options = {
        "memory_limit": None if engine.memory_limit is None else duckdb_share(engine.memory_limit),
        "threads": engine.threads,
        "temp_directory": spill,
        "preserve_insertion_order": False,
    }
    try:
        backend = ibis.duckdb.connect(**{k: v for k, v in options.items() if v is not None})
    except Exception as exc:
        raise ParameterError(f"the DuckDB settings were refused: {exc}") from None
    backend.con.execute(f"SET enable_progress_bar = {str(engine.progress).lower()}")
    backend.con.execute("SET parquet_metadata_cache = true")
    return backend


def _private_spill_folder() -> str:
    folder = tempfile.mkdtemp(prefix="xpyrment-spill-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _open_files(path: str, engine: EngineSettings) -> tuple[ir.Table, Any, bool]:
    """The files ``path`` matches, read in place: all Parquet or all CSV, without the empty ones.

    An empty (0-byte) file holds no rows, and DuckDB refuses it (a writer may just have created it),
    so it is skipped; a path matching only empty files is an error.
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
    backend = _embedded_duckdb(engine)
    try:
        if parquet:
            return backend.read_parquet(non_empty), backend, True
        return backend.read_csv(non_empty), backend, False
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"could not read {path!r}: {reason}") from None


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


def read_only_connect_options(url: str) -> dict[str, Any]:
    """Options for ``ibis.connect(url)`` that keep the connection from creating anything.

    DuckDB files open read-only. Ibis' Snowflake backend would otherwise create a database of UDFs
    (``ibis_udfs``) on first connect. Ibis' Databricks backend always runs ``CREATE VOLUME`` when it
    connects, so ``databricks://`` URLs are refused: read the table through Spark instead, or hand
    in an Ibis table from a connection you opened yourself.

    Raises:
        SourceError: for a ``databricks://`` URL.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "databricks":
        raise SourceError(
            f"{redact_url(url)}: Ibis' Databricks backend creates a volume when it connects, and this "
            "library only reads; pass ibis.pyspark.connect(spark).table(...) or a table of your own "
            "ibis.databricks.connect(...) instead"
        )
    if scheme == "duckdb":
        return {"read_only": True}
    if scheme == "snowflake":
        return {"create_object_udfs": False}
    return {}


def _open_url(url: str, table: str | None) -> tuple[ir.Table, Any]:
    shown = redact_url(url)
    if table is None:
        raise SourceError(f"a connection URL ({shown}) needs table= naming the table to monitor")
    options = read_only_connect_options(url)
    try:
        backend = ibis.connect(url, **options)
    except Exception as exc:
        raise SourceError(f"could not connect to {shown}: {type(exc).__name__}") from None
    database, _, name = table.rpartition(".")
    try:
        return backend.table(name, database=database or None), backend
    except Exception as exc:
        raise SourceError(f"table {table!r} was not found at {shown}: {type(exc).__name__}") from None


def _check_time_type(schema: Mapping[str, dt.DataType], time_col: str, time_unit: str | None) -> None:
    """Refuse a time column of a type no timestamp comes from, or epoch numbers without their unit."""
    kind = schema[time_col]
    units = ", ".join(map(repr, TIME_UNITS))
    is_number = kind.is_integer() or kind.is_floating() or kind.is_decimal()
    if time_unit is not None:
        if not is_number:
            raise ParameterError(
                f"time_unit={time_unit!r} is for epoch-number time columns, but time_col={time_col!r} "
                f"has type {kind}; leave time_unit out"
            )
        return
    if kind.is_timestamp() or kind.is_date() or kind.is_string():
        return
    if is_number:
        raise ColumnError(
            f"time_col={time_col!r} has type {kind}; expected TIMESTAMP, TIMESTAMPTZ, DATE or a string "
            f"of timestamps, or, for epoch numbers, time_unit= naming their unit: one of {units} "
            "(since 1970-01-01 UTC)"
        )
    if kind.is_null():
        raise ColumnError(
            f"time_col={time_col!r} holds only nulls (type null); expected TIMESTAMP, TIMESTAMPTZ, "
            "DATE or a string of timestamps"
        )
    raise ColumnError(
        f"time_col={time_col!r} has type {kind}; expected TIMESTAMP, TIMESTAMPTZ, DATE or a string "
        f"of timestamps, or epoch numbers with time_unit= one of {units}"
    )


def _parse_time_strings(source: Source) -> bool:
    """Check that a string time column parses; return whether some value carries a UTC offset.

    One scan parses every value twice, as an instant and as a naive timestamp: a value the instant
    parse rejects does not parse at all (reported with the count and one example), and a value whose
    two parses differ carries an offset or a zone. Without any, the column keeps the naive parse,
    which DuckDB runs about three times faster. Words that databases read as special timestamps
    (``infinity``, ``epoch``, ``now``, ``yesterday``) are not exposure times: a value must start with
    a digit.
    """
    raw = source.table[source.time_col]
    naive = raw.try_cast("timestamp")
    aware = raw.try_cast(_INSTANT)
    unparsed = raw.notnull() & (aware.isnull() | ~raw.re_search(r"^\s*[0-9]"))
    shifted = aware.notnull() & (naive.isnull() | (naive.epoch_seconds() != aware.epoch_seconds()))
    query = source.table.aggregate(
        unparsed=unparsed.sum(), example=raw.min(where=unparsed), offsets=shifted.any()
    )
    try:
        summary = source.execute(query, "the check that the time column parses")
    except XpyrmentError:
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"time_col={source.time_col!r}: the {source.backend_name} backend could not parse its values "
            f"as timestamps ({reason})"
        ) from None
    count = summary["unparsed"].iloc[0]
    if not pd.isna(count) and int(count):
        raise DataError(
            f"time_col={source.time_col!r}: {int(count)} value(s) do not parse as timestamps, "
            f"e.g. {summary['example'].iloc[0]!r}"
        )
    offsets = summary["offsets"].iloc[0]
    return not pd.isna(offsets) and bool(offsets)


def _parquet_span(source: Source) -> TimeSpan | None:
    """Min, max and count of a Parquet log: DuckDB answers these from footer statistics."""
    ts = source.table[source.time_col]
    span = source.execute(source.table.aggregate(first=ts.min(), last=ts.max(), rows=source.table.count()))
    first, last = span["first"].iloc[0], span["last"].iloc[0]
    if pd.isna(first) or pd.isna(last):
        return None
    return TimeSpan(as_utc(first), as_utc(last), int(span["rows"].iloc[0]))
