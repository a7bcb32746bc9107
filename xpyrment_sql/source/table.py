"""The validated exposure log (:class:`Source`) and the one path every query takes to its backend.

A :class:`Source` is what the checks read: an Ibis table, the backend that runs it, the column roles
and the schema, all validated when it was opened. :meth:`Source.execute` is the only place a
connection is touched, so backend failures become errors that name the backend and the query's
purpose in one place.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import ibis.common.exceptions as com
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.errors import BackendError, ColumnError, SourceError
from xpyrment_sql.source.columns import UNIT_RULES, require_column
from xpyrment_sql.source.timestamps import INSTANT, epoch_timestamp

_MISSING_OPERATION = re.compile(r"(?:operations\.(?:\w+\.)*|rule for ')(\w+)'")
"""The Ibis operation named in a backend's "no translation rule for ..." error."""


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
        time_col: Column holding exposure timestamps, or ``None`` for a source opened without one
            (metric calculations read no timestamps); then :meth:`timestamp` raises.
        unit_col: Column identifying the randomisation unit.
        variant_col: Default column holding the variant (arm) name.
        schema: Column name -> Ibis data type, read once at construction.
        span_reader: Reads the time span of a Parquet log with a timestamp column (see :attr:`span`).
        unit_rule: How ``unit_col`` was chosen, a key of :data:`UNIT_RULES`: ``"given"`` (passed as
            ``unit_col``), ``"unit_id"`` (the column of that name) or ``"first other column"`` (the
            first column that is neither the time nor the variant column).
        time_unit: Unit of an epoch-number time column (one of ``TIME_UNITS``), else ``None``.
        time_offsets: Whether some value of a string time column carries a UTC offset or zone
            (``...Z``, ``+02:00``); then every value is parsed as an instant, naive ones as UTC.
        origin: Where the rows come from, in words (``files /data/*.parquet``, ``a DataFrame``, a
            redacted URL and table): part of a state file's fingerprint.
        embedded: True when the queries run on the library's private embedded DuckDB (files and
            frames), where a local state file can be attached next to the rows.
    """

    table: ir.Table
    backend: Any
    time_col: str | None
    unit_col: str
    variant_col: str
    schema: Mapping[str, dt.DataType]
    span_reader: Callable[[Source], TimeSpan | None] | None = None
    unit_rule: str = "given"
    time_unit: str | None = None
    time_offsets: bool = False
    origin: str = "an Ibis table"
    embedded: bool = False

    @functools.cached_property
    def span(self) -> TimeSpan | None:
        """Time span of a Parquet log with a timestamp column (from its footers), else ``None``.

        Read on first use and kept: only a run that plans time chunks (a full scan) needs it, so an
        incremental run, which reads one window, never pays for it.
        """
        return None if self.span_reader is None else self.span_reader(self)

    @property
    def unit_rule_text(self) -> str:
        """How the unit column was chosen, in words (``"first column that is not the time or ..."``)."""
        return UNIT_RULES[self.unit_rule]

    def timestamp(self, table: ir.Table | None = None) -> ir.TimestampValue:
        """The time column as a timestamp expression; every conversion happens in SQL.

        Timestamps are used as they are and DATE columns cast. Strings are parsed as naive UTC
        timestamps, or as instants when some value carries an offset (``time_offsets``): a naive
        parse would keep ``10:00+02:00`` as 10:00 instead of 08:00 UTC. Epoch numbers become
        ``1970-01-01 + value`` in ``time_unit`` (see ``epoch_timestamp``).

        Raises:
            ColumnError: the source was opened without a time column.
        """
        if self.time_col is None:
            raise ColumnError(
                "this source was opened without a time column (time_col=None), and this needs exposure "
                "times; open it with open_source(data, time_col=...)"
            )
        column = (self.table if table is None else table)[self.time_col]
        kind = self.schema[self.time_col]
        if kind.is_timestamp():
            return column
        if kind.is_string():
            return column.try_cast(INSTANT if self.time_offsets else "timestamp")
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
