"""User input -> a validated Ibis table plus column roles: the one place schema errors come from.

Accepted inputs:

* a path or glob of Parquet or CSV files (read in place by an embedded DuckDB, never loaded whole);
* a pandas or polars DataFrame or a pyarrow Table (registered on the embedded DuckDB);
* an Ibis table on any backend (queries run on that backend);
* a connection URL (``postgres://…``, ``duckdb://file.db``, …) plus ``table=``.

Validation happens once, at construction, from one schema look-up (:func:`open_source`). Modules:

* ``open``: :func:`open_source`, which tells the input's kind apart and checks every column role;
* ``table``: :class:`Source` and :meth:`Source.execute`, the one path every query takes;
* ``columns``: a named column must exist, and the rule that picks the unit column;
* ``timestamps``: time-column types, string parsing (offsets found in one scan), epoch units;
* ``files``: Parquet/CSV paths, globs and folders, and a Parquet log's span from its footers;
* ``frames``: pandas, polars and Arrow inputs (nanoseconds, mixed-type columns);
* ``urls``: connection URLs, read-only connection options, secrets kept out of messages;
* ``engine`` and ``memory_budget``: the embedded DuckDB and the share of memory it gets.
"""

from __future__ import annotations

from xpyrment_sql.source.columns import UNIT_RULES, require_column
from xpyrment_sql.source.engine import EngineSettings
from xpyrment_sql.source.open import open_source
from xpyrment_sql.source.table import Source, TimeSpan
from xpyrment_sql.source.timestamps import TIME_UNITS, epoch_timestamp
from xpyrment_sql.source.urls import read_only_connect_options, redact_url

__all__ = [
    "TIME_UNITS",
    "UNIT_RULES",
    "EngineSettings",
    "Source",
    "TimeSpan",
    "epoch_timestamp",
    "open_source",
    "read_only_connect_options",
    "redact_url",
    "require_column",
]
