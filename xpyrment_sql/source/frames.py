"""In-memory frames (pandas, polars, Arrow) as Ibis tables on the embedded DuckDB.

Two things stop a frame from reading like the same rows in a file, and both are settled here, before
the first query: nanosecond timestamps (DuckDB keeps microseconds, and pyarrow refuses to drop the
rest when Ibis registers a pandas frame) and object columns of mixed types, which no database column
can hold.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xpyrment_sql.errors import ColumnError, SourceError


def is_frame(data: Any) -> bool:
    """Whether ``data`` is a pandas or polars DataFrame or a pyarrow Table (polars need not be installed)."""
    if isinstance(data, (pd.DataFrame, pa.Table)):
        return True
    module = type(data).__module__
    return module.startswith("polars") and type(data).__name__ == "DataFrame"


def frame_table(data: Any) -> ir.Table:
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
