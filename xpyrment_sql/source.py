"""User input -> a validated Ibis table plus column roles: the one place schema errors come from.

Accepted inputs:

* a path or glob of Parquet or CSV files (read in place by an embedded DuckDB, never loaded whole);
* a pandas or polars DataFrame or a pyarrow Table (registered on the embedded DuckDB);
* an Ibis table on any backend (queries run on that backend);
* a connection URL (``postgres://…``, ``duckdb://file.db``, …) plus ``table=``.

Validation happens once, at construction, from one schema look-up. A string time column is parsed in
SQL; values that do not parse are reported with their count and one example (that check is one scan,
and only string time columns pay for it).
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

import ibis
import ibis.common.exceptions as com
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from xpyrment_sql.bins import as_utc
from xpyrment_sql.errors import BackendError, ColumnError, DataError, ParameterError, SourceError
from xpyrment_sql.memory_budget import duckdb_share

_TEXT_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
_MISSING_OPERATION = re.compile(r"(?:operations\.(?:\w+\.)*|rule for ')(\w+)'")
"""The Ibis operation named in a backend's "no translation rule for ..." error."""


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
    """

    table: ir.Table
    backend: Any
    time_col: str
    unit_col: str
    variant_col: str
    schema: Mapping[str, dt.DataType]
    span: TimeSpan | None = None

    def timestamp(self, table: ir.Table | None = None) -> ir.TimestampValue:
        """The time column as a timestamp expression (DATE and string columns are cast in SQL)."""
        column = (self.table if table is None else table)[self.time_col]
        if self.schema[self.time_col].is_timestamp():
            return column
        if self.schema[self.time_col].is_string():
            return column.try_cast("timestamp")
        return column.cast("timestamp")

    def require_column(self, name: str, role: str) -> str:
        """Return ``name`` if the table has it, else raise naming the role and the columns present."""
        return require_column(self.schema, name, role)

    def execute(self, expr: ir.Table, purpose: str = "a query a check needs") -> pd.DataFrame:
        """Run ``expr`` on the source's backend and return the (small) result as a DataFrame.

        Every query the library sends goes through here, so there is one place that touches a
        connection, and one place to count queries. A construct the backend cannot translate is
        reported as a :class:`BackendError` naming the backend and ``purpose`` (what the query is for).
        """
        try:
            return self.backend.execute(expr)
        except (com.OperationNotDefinedError, com.UnsupportedOperationError) as exc:
            operation = _MISSING_OPERATION.search(str(exc))
            missing = f"it has no {operation[1]} operation" if operation else str(exc)
            raise BackendError(f"the {self.backend_name} backend cannot run {purpose}: {missing}") from exc

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
    engine: EngineSettings = EngineSettings(),
) -> Source:
    """Open ``data`` as a validated :class:`Source`.

    Args:
        data: A path/glob, a DataFrame or Arrow table, an Ibis table, or a connection URL.
        time_col: Timestamp column (TIMESTAMP, TIMESTAMPTZ, DATE, or a string parsed in SQL).
        unit_col: Unit column; defaults to ``unit_id`` if present, else the first column (the seed's rule).
        variant_col: Variant column used when a check is not given another one.
        table: Table name, required with a connection URL (``schema.table`` is accepted).
        engine: Settings for the embedded DuckDB (used for files and DataFrames only).

    Raises:
        SourceError: the input cannot be opened. ColumnError: a column is missing or mistyped.
        DataError: a string time column holds values that do not parse as timestamps.
    """
    expr, backend, is_parquet = _open_table(data, table, engine)
    schema = dict(expr.schema().items())
    if not schema:
        raise SourceError("the data source has no columns")
    unit = unit_col if unit_col is not None else ("unit_id" if "unit_id" in schema else next(iter(schema)))
    source = Source(
        table=expr,
        backend=backend,
        time_col=require_column(schema, time_col, "time_col"),
        unit_col=require_column(schema, unit, "unit_col"),
        variant_col=require_column(schema, variant_col, "variant_col"),
        schema=schema,
    )
    _check_time_type(source)
    if is_parquet and source.schema[source.time_col].is_timestamp():
        source = dataclasses.replace(source, span=_parquet_span(source))
    return source


def require_column(schema: Mapping[str, dt.DataType], name: str, role: str) -> str:
    """Return ``name`` if ``schema`` has it, else raise a ColumnError naming the role and columns."""
    if not isinstance(name, str) or name not in schema:
        raise ColumnError(
            f"{role}={name!r} is not a column of the data; columns are: {', '.join(map(str, schema))}"
        )
    return name


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
        return ibis.memtable(data), _embedded_duckdb(engine), False
    raise SourceError(
        f"cannot monitor an object of type {type(data).__name__}; expected a Parquet/CSV path or glob, "
        "a pandas or polars DataFrame, a pyarrow Table, an Ibis table, or a connection URL with table="
    )


def _is_frame(data: Any) -> bool:
    if isinstance(data, (pd.DataFrame, pa.Table)):
        return True
    module = type(data).__module__
    return module.startswith("polars") and type(data).__name__ == "DataFrame"


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
    matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
    if not matches or not all(Path(m).exists() for m in matches):
        raise SourceError(f"no file matches the path {path!r}; expected Parquet or CSV files")
    if any(Path(m).is_dir() for m in matches):
        matches = sorted(str(p) for m in matches for p in Path(m).rglob("*") if p.is_file())
    backend = _embedded_duckdb(engine)
    lowered = [m.lower() for m in matches]
    try:
        if all(m.endswith(".parquet") or m.endswith(".pq") for m in lowered):
            return backend.read_parquet(matches), backend, True
        if all(m.endswith(_TEXT_SUFFIXES) for m in lowered):
            return backend.read_csv(matches), backend, False
    except Exception as exc:
        raise SourceError(f"could not read {path!r}: {exc}") from exc
    raise SourceError(
        f"the path {path!r} matched files that are not all Parquet (.parquet) or all CSV (.csv)"
    )


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


def _check_time_type(source: Source) -> None:
    kind = source.schema[source.time_col]
    if kind.is_timestamp() or kind.is_date():
        return
    if not kind.is_string():
        raise ColumnError(
            f"time_col={source.time_col!r} has type {kind}; expected TIMESTAMP, TIMESTAMPTZ, DATE "
            "or a string of timestamps"
        )
    raw = source.table[source.time_col]
    bad = source.table.filter(raw.notnull() & source.timestamp().isnull())
    summary = source.execute(bad.aggregate(n=bad.count(), example=raw.min()))
    count = int(summary["n"].iloc[0])
    if count:
        raise DataError(
            f"time_col={source.time_col!r}: {count} value(s) do not parse as timestamps, "
            f"e.g. {summary['example'].iloc[0]!r}"
        )


def _parquet_span(source: Source) -> TimeSpan | None:
    """Min, max and count of a Parquet log: DuckDB answers these from footer statistics."""
    ts = source.table[source.time_col]
    span = source.execute(source.table.aggregate(first=ts.min(), last=ts.max(), rows=source.table.count()))
    first, last = span["first"].iloc[0], span["last"].iloc[0]
    if pd.isna(first) or pd.isna(last):
        return None
    return TimeSpan(as_utc(first), as_utc(last), int(span["rows"].iloc[0]))
