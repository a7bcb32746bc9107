"""Connection URLs: secrets never shown (passwords, secret-looking parameters), and nothing created."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.cli.main import main
from xpyrment_sql.errors import SourceError
from xpyrment_sql.source import read_only_connect_options, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://analyst:hunter2@db:5432/events", "postgres://analyst:***@db:5432/events"),
        ("postgres://analyst:p%40ss:w@rd@db/events", "postgres://analyst:***@db/events"),
        ("postgres://analyst@db/events", "postgres://analyst@db/events"),
        ("duckdb:///data/warehouse.duckdb", "duckdb:///data/warehouse.duckdb"),
        (
            "snowflake://me:hunter2@acct/db/schema?warehouse=wh&private_key_file_pwd=hunter2&token=hunter2",
            "snowflake://me:***@acct/db/schema?warehouse=wh&private_key_file_pwd=***&token=***",
        ),
        (
            "bigquery://project/dataset?credentials=hunter2&location=EU",
            "bigquery://project/dataset?credentials=***&location=EU",
        ),
        (
            "trino://u:hunter2@host:8080/hive/logs?source=xp&secure",
            "trino://u:***@host:8080/hive/logs?source=xp&secure",
        ),
    ],
)
def test_secrets_are_replaced_and_the_rest_kept(url, shown):
    assert redact_url(url) == shown
    assert "hunter2" not in redact_url(url)


def test_a_connection_error_in_the_cli_shows_the_redacted_url_only(capsys):
    url = "postgres://analyst:hunter2@127.0.0.1:1/events?password=hunter2"
    code = main(["check", url, "--table", "public.exposures", "--time-col", "ts", "--ratios", "1,1"])
    captured = capsys.readouterr()
    assert code == 2
    assert "could not connect to postgres://analyst:***@127.0.0.1:1/events?password=***" in captured.err
    assert "hunter2" not in captured.out + captured.err


def test_urls_open_with_options_that_create_nothing():
    assert read_only_connect_options("duckdb:///w.duckdb") == {"read_only": True}
    assert read_only_connect_options("snowflake://me@acct/db/schema") == {"create_object_udfs": False}
    assert read_only_connect_options("postgres://me@db/events") == {}


def test_databricks_urls_are_refused_because_connecting_creates_a_volume():
    with pytest.raises(SourceError, match="creates a volume when it connects") as info:
        xs.LiveMonitor("databricks://token:hunter2@host/sql", time_col="ts", table="logs.exposures")
    assert "hunter2" not in str(info.value)


def test_duckdb_url_is_opened_read_only_and_reads_the_table(log, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as raw:
        raw.execute("CREATE SCHEMA logs")
        raw.execute("CREATE TABLE logs.exposures AS SELECT * FROM log")
    expected = xs.LiveMonitor(log, time_col="ts").get_binned_traffic(freq="h")
    monitor = xs.LiveMonitor(f"duckdb://{path}", time_col="ts", table="logs.exposures")
    pd.testing.assert_frame_equal(monitor.get_binned_traffic(freq="h"), expected, check_dtype=False)
    with pytest.raises(Exception, match="read-only"):
        monitor.source.backend.raw_sql("CREATE TABLE logs.scratch (x INT)")
