"""One small experiment log, and the same rows loaded into every backend the library is tested on.

The log has the features that break backends in different ways: string unit ids, a unit seen under
both arms, a planted sample ratio mismatch (treatment loses three quarters of its Android units, so the
chi-square, anytime and SPRT tests fire and the SPRT's first-crossing query runs), rows with a
missing time, unit or variant, a float metric with nulls, and a boolean metric.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from postgres_server import DATABASE, PostgresServer

TABLE = "exposures"
READER = "monitor_reader"
COLUMNS_SQL = (
    "unit_id TEXT, variant TEXT, ts TIMESTAMP, platform TEXT, revenue DOUBLE PRECISION, purchased BOOLEAN"
)
SPARK_HINT = (
    "Apache Spark needs a Java runtime: run `bash scripts/install_os_packages.sh` as root, or install "
    "`openjdk-17-jre-headless`, and the pyspark extra (`pip install -e '.[pyspark]'`)"
)


def experiment_log(seed: int = 6) -> pd.DataFrame:
    """About 4,000 exposure rows over four days, two arms, with the planted problems described above."""
    rng = np.random.default_rng(seed)
    n_units = 1600
    unit = np.array([f"user-{i:05d}" for i in range(n_units)], dtype=object)
    arm = np.where(rng.random(n_units) < 0.5, "control", "treatment").astype(object)
    platform = rng.choice(np.array(["android", "ios", "web"], dtype=object), n_units)
    lost = (arm == "treatment") & (platform == "android") & (rng.random(n_units) < 0.75)
    keep = ~lost
    unit, arm, platform = unit[keep], arm[keep], platform[keep]
    visits = rng.poisson(1.7, unit.size) + 1
    row_unit = np.repeat(unit, visits)
    seconds = rng.integers(0, 4 * 86_400, row_unit.size)
    frame = pd.DataFrame(
        {
            "unit_id": row_unit,
            "variant": np.repeat(arm, visits),
            "ts": pd.Timestamp("2026-03-02") + pd.to_timedelta(seconds, unit="s"),
            "platform": np.repeat(platform, visits),
            "revenue": np.round(rng.gamma(2.0, 3.0, row_unit.size), 2),
            "purchased": rng.random(row_unit.size) < 0.2,
        }
    )
    crossover = (
        frame[frame.unit_id == unit[7]]
        .iloc[:1]
        .assign(
            variant="control" if arm[7] == "treatment" else "treatment",
            ts=pd.Timestamp("2026-03-04 12:00:00"),
        )
    )
    frame = pd.concat([frame, crossover], ignore_index=True)
    frame.loc[frame.sample(25, random_state=seed).index, "revenue"] = np.nan
    frame.loc[3, "variant"] = None
    frame.loc[5, "ts"] = pd.NaT
    frame.loc[9, "unit_id"] = None
    frame = frame.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)
    return frame.astype(
        {"unit_id": object, "variant": object, "platform": object, "revenue": "float64", "purchased": bool}
    )


def arrow_log(frame: pd.DataFrame) -> pa.Table:
    """The log as Arrow with explicit types (timestamps in microseconds, strings as strings)."""
    schema = pa.schema(
        [
            ("unit_id", pa.string()),
            ("variant", pa.string()),
            ("ts", pa.timestamp("us")),
            ("platform", pa.string()),
            ("revenue", pa.float64()),
            ("purchased", pa.bool_()),
        ]
    )
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def load_postgres(server: PostgresServer, frame: pd.DataFrame, reader_password: str) -> None:
    """Create ``public.exposures`` as the superuser and a role that may only SELECT from it.

    The role cannot create temporary tables (TEMPORARY is revoked from PUBLIC on the database) nor
    anything in ``public`` (PostgreSQL 15 grants CREATE there to nobody by default).
    """
    rows = arrow_log(frame).to_pylist()
    with server.connect() as admin:
        admin.execute(f"CREATE TABLE public.{TABLE} ({COLUMNS_SQL})")
        with admin.cursor() as cursor, cursor.copy(f"COPY public.{TABLE} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row.values()))
        admin.execute(f"REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC")
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        admin.execute(f"CREATE ROLE {READER} LOGIN PASSWORD '{reader_password}'")
        admin.execute(f"GRANT CONNECT ON DATABASE {DATABASE} TO {READER}")
        admin.execute(f"GRANT SELECT ON public.{TABLE} TO {READER}")


def relation_count(server: PostgresServer) -> int:
    """Relations in ``pg_class``, temporary ones of every session included."""
    with server.connect() as admin:
        return int(admin.execute("SELECT count(*) FROM pg_class").fetchone()[0])


def write_duckdb_file(frame: pd.DataFrame, path: Path) -> None:
    """A DuckDB database file holding ``logs.exposures``."""
    arrow = arrow_log(frame)
    with duckdb.connect(str(path)) as raw:
        raw.register("arrow_log", arrow)
        raw.execute("CREATE SCHEMA logs")
        raw.execute(f"CREATE TABLE logs.{TABLE} AS SELECT * FROM arrow_log")


def write_sqlite(frame: pd.DataFrame, path: Path) -> None:
    """A SQLite file holding ``exposures``, timestamps as ISO text (how SQLite and Ibis store them)."""
    rows = [
        (*row[:2], None if row[2] is None else row[2].isoformat(sep=" "), *row[3:])
        for row in (tuple(record.values()) for record in arrow_log(frame).to_pylist())
    ]
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute(f"CREATE TABLE {TABLE} ({COLUMNS_SQL.replace('DOUBLE PRECISION', 'REAL')})")
        raw.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)


def write_parquet_parts(frame: pd.DataFrame, folder: Path, parts: int = 3) -> str:
    """The log split into ``parts`` Parquet files; returns their glob."""
    folder.mkdir(parents=True, exist_ok=True)
    arrow = arrow_log(frame)
    size = -(-arrow.num_rows // parts)
    for index in range(parts):
        pq.write_table(arrow.slice(index * size, size), folder / f"part-{index}.parquet")
    return str(folder / "*.parquet")


@contextlib.contextmanager
def spark_session() -> Iterator[Any]:
    """A local Spark with two cores on 127.0.0.1, no UI, two shuffle partitions, UTC session time."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail(SPARK_HINT, pytrace=False)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail(SPARK_HINT, pytrace=False)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    warehouse = tempfile.mkdtemp(prefix="xpyrment-spark-")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("xpyrment-sql-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        shutil.rmtree(warehouse, ignore_errors=True)


def spark_table(session: Any, frame: pd.DataFrame) -> Any:
    """The log as a Spark temporary view, seen through Ibis' PySpark backend.

    Loaded from Arrow, so missing values arrive as NULL (from pandas, Spark would keep NaN).
    """
    session.createDataFrame(arrow_log(frame)).createOrReplaceTempView(TABLE)
    return ibis.pyspark.connect(session).table(TABLE)
