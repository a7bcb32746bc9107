"""Hand-written DuckDB SQL baseline: exact semantics, one statement through the ``duckdb`` Python API.

- Active units: distinct (bin, variant, unit) triples per (bin, variant), deduplicated one whole-bin
  time range at a time (``UNION ALL``; ranges planned from Parquet statistics).
- New units and the SPRT's first crossing: each (unit, variant) pair's first exposure (``MIN(ts)``)
  passes through one window in (first ts, unit, variant) order; running counts give every pair's
  log LR, and each (bin, variant) reports its new pairs and its first crossing position. ``y = 1``
  marks the arm other than ``MIN(variant)``; by the SPRT's symmetry, testing that arm with its own
  designed share is the test of the treatment arm, so an uneven split gets one column per share.

Bins are ``CAST(FLOOR((EPOCH(ts) + origin) / width) AS BIGINT)``. ``XPYRMENT_MEMORY_LIMIT`` (set by
``run.py --mem-limit``) becomes DuckDB's ``memory_limit`` as given (xpyrment takes it as the whole
process's budget and gives DuckDB 15% less).
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from typing import Any

import duckdb

from benchmarks.baselines.common import SearchWindow, Sprt, cli, dense, exact_output, parse_freq

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
WITH firsts AS (
    SELECT unit_id AS u, variant AS v, MIN(ts) AS t FROM read_parquet({path}) WHERE {not_null} GROUP BY ALL
), steps AS (
    SELECT v, t, CAST(ROW_NUMBER() OVER w AS DOUBLE) AS n, SUM(y) OVER w AS k, y
    FROM (SELECT *, CAST(v <> (SELECT MIN(v) FROM firsts) AS DOUBLE) AS y FROM firsts)
    WINDOW w AS (ORDER BY t, u, v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), new AS (
    SELECT CAST(FLOOR((EPOCH(t) + {origin}) / {width}) AS BIGINT) AS b, v,
        COUNT(*) AS new, MAX(y) AS other{stops}
    FROM steps GROUP BY ALL
), active AS ({active})
SELECT * EXCLUDE (new), COALESCE(new, 0) AS new FROM active LEFT JOIN new USING (b, v)
"""

STOP_SQL = """,
    MIN(n) FILTER (WHERE GREATEST(k * {a_up} + (n - k) * {b_up}, k * {a_dn} + (n - k) * {b_dn})
        + LN(1 + EXP(-ABS(k * ({a_up} - {a_dn}) + (n - k) * ({b_up} - {b_dn}))))
        + LN(0.5) >= {threshold}) AS stop{i}"""

CHUNK_ROWS = 1_000_000
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


def _double(value: float) -> str:
    """A DOUBLE literal: a bare ``0.039...`` is a DECIMAL in DuckDB, and DECIMAL arithmetic on the
    window's running counts is far slower."""
    return f"CAST({value!r} AS DOUBLE)"


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
    shares = sorted({round(r / sum(ratios), 12) for r in ratios}) if len(ratios) == 2 else []
    stops = "".join(
        STOP_SQL.format(
            i=i,
            threshold=_double(test.threshold),
            **{name: _double(getattr(test, name)) for name in ("a_up", "b_up", "a_dn", "b_dn")},
        )
        for i, test in enumerate(Sprt.of(share) for share in shares)
    )
    matrix_sql = MATRIX_SQL.format(
        active=" UNION ALL ".join(chunks),
        origin=bins.origin,
        width=bins.width,
        path=source,
        not_null=_NOT_NULL,
        stops=stops,
    )
    counts = con.execute(matrix_sql).df()
    con.close()
    first_key, variants, (active, new) = dense(
        counts["b"].to_numpy(), counts["v"].tolist(), [counts["active"].to_numpy(), counts["new"].to_numpy()]
    )
    others = set(counts.loc[counts["other"] == 1, "v"])
    designed = dict(zip(variants, (r / sum(ratios) for r in ratios), strict=False))

    def crossing(window: SearchWindow) -> int:
        """The crossing the matrix query found for the non-reference arm's designed share: by the
        SPRT's symmetry, y = 1 for that arm with its own share is the test of the treatment arm."""
        share = designed[window.treatment] if window.treatment in others else 1 - designed[window.treatment]
        nearest = min(range(len(shares)), key=lambda i: abs(shares[i] - share))
        found = counts[f"stop{nearest}"].dropna()
        return int(found.min()) - 1 if len(found) else -1

    return exact_output("duckdb_sql", freq, bins, first_key, variants, active, new, ratios, crossing)


if __name__ == "__main__":
    cli(run)
