"""The rows every query starts from: ``(ts, variant, unit)``, their bin keys, and time literals.

Bins are integer keys computed in the backend from epoch seconds (see :mod:`xpyrment_sql.bins`), so
every engine can floor to 15 minutes or to local midnight; the evaluation instant ``until`` becomes
a literal typed like the time column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from xpyrment_sql.bins import BinSpec, utc_offsets
from xpyrment_sql.source import Source


def exposures(
    source: Source,
    variant_col: str,
    until: pd.Timestamp | None = None,
    extra: Mapping[str, str] | None = None,
) -> ir.Table:
    """Rows reduced to ``(ts, variant, unit)``; rows missing one, or at or after ``until``, are dropped.

    ``until`` is the evaluation instant: bins are half-open ``[start, end)``, and a row stamped exactly
    at ``until`` would belong to a bin that does not exist yet. ``extra`` maps further output names to
    source columns (kept as they are, nulls included).
    """
    table = source.table
    ts = source.timestamp()
    kept = {name: table[column] for name, column in (extra or {}).items()}
    rows = table.select(ts=ts, variant=table[variant_col], unit=table[source.unit_col], **kept)
    keep = rows.ts.notnull() & rows.variant.notnull() & rows.unit.notnull()
    if until is not None:
        keep &= before(rows.ts, until)
    return rows.filter(keep)


def bin_key(ts: ir.TimestampValue, bins: BinSpec, until: pd.Timestamp | None) -> ir.IntegerValue:
    """``floor((epoch + utc_offset(epoch) + origin) / width)`` as a backend expression (see ``bins``)."""
    epoch = ts.epoch_seconds()
    shifted = epoch + bins.origin if bins.origin else epoch
    if bins.uses_local_offset and bins.tz is not None:
        shifted = shifted + _utc_offset(epoch, bins.tz, until)
    return (shifted / bins.width).floor().cast("int64")


def _utc_offset(epoch: ir.IntegerValue, tz: str, until: pd.Timestamp | None) -> ir.IntegerValue:
    """The zone's offset at ``epoch`` as a CASE over its transitions, newest first.

    Recent rows match the first branch, so the cost per row is one or two comparisons.
    """
    end = until if until is not None else pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=366)
    steps = utc_offsets(tz, end)
    case = ibis.cases(
        *((epoch >= since, offset) for since, offset in reversed(steps[1:])),
        else_=steps[0][1],
    )
    return case.cast("int64")


def before(ts: ir.TimestampValue, until: pd.Timestamp) -> ir.BooleanValue:
    """``ts < until``: the rows that exist at the evaluation instant ``until``."""
    return ts < instant(ts, until)


def instant(column: ir.TimestampValue, when: pd.Timestamp) -> ir.TimestampScalar:
    """A literal for the aware instant ``when``, typed like ``column`` (naive columns hold UTC)."""
    zone = column.type().timezone
    value = when.tz_convert(zone) if zone else when.tz_convert("UTC").tz_localize(None)
    return ibis.literal(value, type=column.type())


def union_all(tables: Sequence[ir.Table]) -> ir.Table:
    """``UNION ALL`` of ``tables`` as a balanced tree, so hundreds of chunks stay shallow to compile."""
    if len(tables) == 1:
        return tables[0]
    middle = len(tables) // 2
    return union_all(tables[:middle]).union(union_all(tables[middle:]))
