"""The time column: which types become timestamps, how strings and epoch numbers are read, in SQL.

Timestamps and DATE columns are used as they are. A string column is parsed in SQL; values that do
not parse are reported with their count and one example, and the same scan finds whether any value
carries a UTC offset (then every value is parsed as an instant). That scan is the only query opening
a source sends, and only string time columns pay for it. Epoch numbers are converted in SQL too, in
the unit the caller states (``time_unit=``): no unit is guessed, since a wrong guess would move every
row by a factor of a thousand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.errors import ColumnError, DataError, ParameterError, XpyrmentError

if TYPE_CHECKING:
    from xpyrment_sql.source.table import Source

TIME_UNITS = ("s", "ms", "us", "ns")
"""Units of epoch-number time columns: seconds, milli-, micro- and nanoseconds since 1970-01-01 UTC."""

INSTANT = dt.Timestamp(timezone="UTC")
"""The type strings with a UTC offset are parsed as: an instant, shown in UTC."""

_PER_SECOND = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_MICROSECONDS = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}


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


def check_time_unit(time_col: str | None, time_unit: str | None) -> None:
    """Refuse an unknown ``time_unit``, or one given for a source without a time column."""
    if time_unit is None:
        return
    if time_unit not in TIME_UNITS:
        raise ParameterError(
            f"time_unit={time_unit!r} is not a unit of epoch time; expected one of "
            f"{', '.join(map(repr, TIME_UNITS))}"
        )
    if time_col is None:
        raise ParameterError(
            f"time_unit={time_unit!r} is for an epoch-number time column, but time_col is None; "
            "leave time_unit out or name the time column"
        )


def check_time_type(schema: Mapping[str, dt.DataType], time_col: str, time_unit: str | None) -> None:
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


def parse_time_strings(source: Source, time_col: str) -> bool:
    """Check that the string column ``time_col`` parses; return whether some value carries a UTC offset.

    One scan parses every value twice, as an instant and as a naive timestamp: a value the instant
    parse rejects does not parse at all (reported with the count and one example), and a value whose
    two parses differ carries an offset or a zone. Without any, the column keeps the naive parse,
    which DuckDB runs about three times faster. Words that databases read as special timestamps
    (``infinity``, ``epoch``, ``now``, ``yesterday``) are not exposure times: a value must start with
    a digit.
    """
    raw = source.table[time_col]
    naive = raw.try_cast("timestamp")
    aware = raw.try_cast(INSTANT)
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
            f"time_col={time_col!r}: the {source.backend_name} backend could not parse its values "
            f"as timestamps ({reason})"
        ) from None
    count = summary["unparsed"].iloc[0]
    if not pd.isna(count) and int(count):
        raise DataError(
            f"time_col={time_col!r}: {int(count)} value(s) do not parse as timestamps, "
            f"e.g. {summary['example'].iloc[0]!r}"
        )
    offsets = summary["offsets"].iloc[0]
    return not pd.isna(offsets) and bool(offsets)
