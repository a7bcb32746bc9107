"""Hand-written DuckDB SQL baseline: exact semantics, two queries through the ``duckdb`` Python API.

1. The matrix: active units = distinct (bin, variant, unit) triples per (bin, variant), deduplicated
   one whole-bin time range at a time (``UNION ALL``; ranges planned from Parquet statistics); new
   units = (unit, variant) pairs per bin of their first exposure (``MIN(ts)``).
2. The SPRT's first crossing, only when the per-bin counts say some bin can cross: the pairs seen in
   those bins minus those seen before them (earlier rows probed against the bins' units), in
   (first ts, unit, variant) order, with running counts from window functions.

Bins are ``CAST(FLOOR((EPOCH(ts) + origin) / width) AS BIGINT)``. ``XPYRMENT_MEMORY_LIMIT`` (set by
``run.py --mem-limit``) becomes DuckDB's ``memory_limit``, as for the xpyrment implementation.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from typing import Any

import duckdb

from benchmarks.baselines.common import SearchWindow, cli, dense, exact_output, parse_freq

_NOT_NULL = "unit_id IS NOT NULL AND variant IS NOT NULL AND ts IS NOT NULL"

SPAN_SQL = "SELECT EPOCH_US(MIN(ts)), EPOCH_US(MAX(ts)), COUNT(*) FROM read_parquet({path})"

ACTIVE_CHUNK_SQL = """
SELECT b, v, COUNT(*) AS active FROM (
    SELECT DISTINCT CAST(FLOOR((EPOCH(ts) + {origin}) / {width}) AS BIGINT) AS b, variant AS v, unit_id AS u
    FROM read_parquet({path})
    WHERE {not_null} AND {time_range}
) GROUP BY b, v
"""

MATRIX_SQL = """
WITH active AS ({active}), new AS (
    SELECT CAST(FLOOR((EPOCH(t) + {origin}) / {width}) AS BIGINT) AS b, v, COUNT(*) AS new
    FROM (
        SELECT variant AS v, MIN(ts) AS t FROM read_parquet({path}) WHERE {not_null} GROUP BY unit_id, variant
    ) GROUP BY ALL
)
SELECT b, v, active, COALESCE(new, 0) AS new FROM active LEFT JOIN new USING (b, v)
"""

CHUNK_ROWS = 500_000
MAX_CHUNKS = 400


def time_ranges(con: duckdb.DuckDBPyConnection, source: str, width: int, origin: int) -> list[str]:
    """Whole-bin time ranges of about ``CHUNK_ROWS`` rows, open at both ends (min/max/count come
    from Parquet statistics, so this reads no rows). Each range is deduplicated on its own, which
    keeps DuckDB's hash table small; on time-ordered files each range reads only its row groups."""
    first_us, last_us, rows = con.execute(SPAN_SQL.format(path=source)).fetchone()
    if first_us is None:
        return ["TRUE"]
    first_key = (first_us // 1_000_000 + origin) // width
    last_key = (last_us // 1_000_000 + origin) // width
    count = min(max(1, -(-rows // CHUNK_ROWS)), last_key - first_key + 1, MAX_CHUNKS)
    step = -(-(last_key - first_key + 1) // count)
    edges = [(key * width - origin) * 1_000_000 for key in range(first_key + step, last_key + 1, step)]
    bounds = [None, *edges, None]
    ranges = []
    for since, before in itertools.pairwise(bounds):
        parts = [f"ts >= make_timestamp({since}::BIGINT)"] if since is not None else []
        parts += [f"ts < make_timestamp({before}::BIGINT)"] if before is not None else []
        ranges.append(" AND ".join(parts) or "TRUE")
    return ranges


CROSSING_SQL = """
WITH rows AS (
    SELECT unit_id AS u, variant AS v, ts AS t FROM read_parquet({path}) WHERE {not_null}
), seen_in_window AS (
    SELECT u, v, MIN(t) AS t
    FROM rows
    WHERE t >= make_timestamp({since_us}::BIGINT) AND t < make_timestamp({before_us}::BIGINT)
    GROUP BY u, v
), seen_before AS (
    SELECT DISTINCT u, v FROM rows
    WHERE t < make_timestamp({since_us}::BIGINT) AND u IN (SELECT u FROM seen_in_window)
), running AS (
    SELECT ROW_NUMBER() OVER w AS i, {k0} + SUM(CAST(v = {treatment} AS BIGINT)) OVER w AS k
    FROM seen_in_window ANTI JOIN seen_before USING (u, v)
    WINDOW w AS (ORDER BY t, u, v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), scored AS (
    SELECT i, k * {a_up} + ({n0} + i - k) * {b_up} AS up, k * {a_dn} + ({n0} + i - k) * {b_dn} AS dn
    FROM running
)
SELECT MIN(i) FROM scored
WHERE GREATEST(up, dn) + LN(1 + EXP(-ABS(up - dn))) + LN(0.5) >= {threshold}
"""


def _quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory connection, with ``memory_limit`` from ``XPYRMENT_MEMORY_LIMIT`` if set.

    Parquet footers are cached: the matrix query scans the file once per time range, and each scan
    would otherwise parse and hold its own copy of the footer. Spills go to a private temporary
    folder (DuckDB's default is ``.tmp`` in the working directory), removed at exit.
    """
    spill = tempfile.mkdtemp(prefix="duckdb-sql-spill-")
    atexit.register(shutil.rmtree, spill, ignore_errors=True)
    con = duckdb.connect(config={"temp_directory": spill})
    con.execute("SET parquet_metadata_cache = true")
    limit = os.environ.get("XPYRMENT_MEMORY_LIMIT")
    if limit:
        con.execute(f"SET memory_limit = {_quote(limit)}")
    return con


def run(path: str, freq: str, ratios: list[float]) -> dict[str, Any]:
    """Traffic matrix, anomaly, chi-square and SPRT over the Parquet log at ``path`` in DuckDB SQL."""
    bins = parse_freq(freq)
    con = connect()
    source = _quote(path)
    chunks = [
        ACTIVE_CHUNK_SQL.format(
            origin=bins.origin, width=bins.width, path=source, not_null=_NOT_NULL, time_range=time_range
        )
        for time_range in time_ranges(con, source, bins.width, bins.origin)
    ]
    matrix_sql = MATRIX_SQL.format(
        active=" UNION ALL ".join(chunks),
        origin=bins.origin,
        width=bins.width,
        path=source,
        not_null=_NOT_NULL,
    )
    counts = con.execute(matrix_sql).fetchnumpy()
    first_key, variants, (active, new) = dense(counts["b"], counts["v"], [counts["active"], counts["new"]])

    def crossing(window: SearchWindow) -> int:
        test = window.test
        sql = CROSSING_SQL.format(
            path=source,
            not_null=_NOT_NULL,
            since_us=(window.first_key * bins.width - bins.origin) * 1_000_000,
            before_us=((window.last_key + 1) * bins.width - bins.origin) * 1_000_000,
            treatment=_quote(window.treatment),
            k0=window.treatment_before,
            n0=window.units_before,
            a_up=repr(test.a_up),
            b_up=repr(test.b_up),
            a_dn=repr(test.a_dn),
            b_dn=repr(test.b_dn),
            threshold=repr(test.threshold),
        )
        (found,) = con.execute(sql).fetchone()
        return -1 if found is None else window.units_before + int(found) - 1

    try:
        return exact_output("duckdb_sql", freq, bins, first_key, variants, active, new, ratios, crossing)
    finally:
        con.close()


if __name__ == "__main__":
    cli(run)
