"""``xpyrment-sql sql``: every query the checks send, compiled for a dialect, each headed by its check."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import psycopg
import pytest

import xpyrment_sql as xs
from xpyrment_sql.cli.main import main
from xpyrment_sql.queries.sql import DIALECTS

from backends import TABLE

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
EXAMPLE = ["--table", "exposures", "--time-col", "ts", "--freq", "h"]
EXAMPLE_COLUMNS = ["--segment-col", "platform", "--metric-col", "load_ms", "--experiment-col", "experiment"]


def sql_output(capsys, *arguments: str) -> str:
    assert main(["sql", *arguments]) == 0
    return capsys.readouterr().out


def statements(text: str) -> list[tuple[str, str]]:
    """(comment, SQL) of each printed query."""
    blocks = [block for block in text.split(";\n") if block.strip()]
    return [tuple(block.strip().split("\n", 1)) for block in blocks]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_example_prints_what_the_sql_folder_holds(capsys, dialect):
    printed = sql_output(capsys, "--dialect", dialect, *EXAMPLE, *EXAMPLE_COLUMNS)
    files = [path.read_text() for path in sorted((SQL_DIR / dialect).glob("*.sql"))]
    assert len(files) == len(statements(printed)) == 9
    for text in files:
        assert printed.count(text) == 1
    assert len(printed) == sum(map(len, files)) + len(files) - 1, "the queries, one blank line apart"


def test_the_fleet_query_is_printed_for_the_experiment_column_and_runs_on_duckdb(capsys, tmp_path):
    """The printed check-all query, run by hand on DuckDB, counts each experiment's distinct units."""
    import duckdb

    printed = sql_output(
        capsys, "--dialect", "duckdb", "--table", "assignments", "--time-col", "ts", "--experiment-col", "exp"
    )
    (fleet,) = [sql for comment, sql in statements(printed) if "check_all" in comment]
    frame = pd.DataFrame(
        {
            "unit_id": [1, 2, 3, 1, 4, 4],
            "variant": ["a", "b", "a", "a", "b", "a"],
            "ts": pd.to_datetime(["2026-01-05 01:00", "2026-01-05 02:00", "2026-01-04 00:00",
                                  "2026-01-06 00:00", "2026-01-05 03:00", "2026-01-05 04:00"]),
            "exp": ["checkout-redesign", "checkout-redesign", "checkout-redesign", "other", "other", "other"],
        }
    )  # fmt: skip
    con = duckdb.connect()
    con.register("assignments", frame)
    counts = con.execute(fleet).df()
    units = counts[counts.part == "units"].groupby("experiment")["units"].sum().to_dict()
    assert units == {"checkout-redesign": 2, "other": 2}, "unit 3 is before the configured start"
    multiple = counts[counts.part == "multiple"].groupby("experiment")["units"].sum().to_dict()
    assert multiple == {"other": 1}, "unit 4 is in both arms of 'other'; unit 1 is in two experiments"


def test_the_fleet_moments_query_is_printed_with_a_metric_and_runs_on_duckdb(capsys):
    """The printed guardrails query of check-all, run by hand: each experiment's per-variant mean of
    the per-unit sums, within the configured experiment's window."""
    import duckdb

    printed = sql_output(
        capsys, "--dialect", "duckdb", "--table", "assignments", "--time-col", "ts",
        "--experiment-col", "exp", "--metric-col", "revenue",
    )  # fmt: skip
    (moments,) = [sql for comment, sql in statements(printed) if "guardrails):" in comment]
    frame = pd.DataFrame(
        {
            "unit_id": [1, 1, 2, 3, 5, 6, 7],
            "variant": ["a", "a", "a", "b", "a", "b", "b"],
            "ts": pd.to_datetime(["2026-01-05 01:00", "2026-01-05 02:00", "2026-01-05 03:00",
                                  "2026-01-05 04:00", "2026-01-04 00:00", "2026-01-06 00:00",
                                  "2026-01-06 01:00"]),
            "exp": ["checkout-redesign"] * 5 + ["other"] * 2,
            "revenue": [1.0, 2.0, 5.0, 4.0, 100.0, 10.0, 20.0],
        }
    )  # fmt: skip
    con = duckdb.connect()
    con.register("assignments", frame)
    got = con.execute(moments).df().set_index(["experiment", "variant"])
    means = (got["m0__numerator_mean"] + got["m0__shift"]).to_dict()
    assert means == pytest.approx(
        {("checkout-redesign", "a"): 4.0, ("checkout-redesign", "b"): 4.0, ("other", "b"): 15.0}
    ), "unit 1 sums to 3, unit 2 to 5; unit 5 is before the configured start"
    assert got["m0__n"].to_dict() == {
        ("checkout-redesign", "a"): 2, ("checkout-redesign", "b"): 1, ("other", "b"): 2
    }  # fmt: skip


def test_every_query_is_headed_by_the_check_it_serves(capsys):
    printed = sql_output(
        capsys,
        "--dialect",
        "snowflake",
        "--table",
        "analytics.events.exposures",
        "--time-col",
        "event_ts",
        "--unit-col",
        "user_id",
        "--variant-col",
        "arm",
        "--segment-col",
        "country",
        "--metric-col",
        "revenue",
    )
    found = statements(printed)
    comments = [comment for comment, _ in found]
    for check in (
        "traffic anomaly",
        "check_live_srm",
        "sequential_method='sprt'",
        "MULTIPLE_EXPOSURE",
        "check_srm_by",
        "calculate_metrics",
    ):
        assert sum(check in comment for comment in comments) == 1, check
    for comment, sql in found:
        assert comment.startswith("-- ")
        assert sql.lstrip().startswith(("SELECT", "WITH"))
        assert '"analytics"."events"."exposures"' in sql
    assert '"event_ts"' in printed
    assert '"user_id"' in printed
    assert '"arm"' in printed


def test_without_segment_or_metric_columns_their_queries_are_left_out(capsys):
    printed = sql_output(capsys, "--dialect", "postgres", *EXAMPLE)
    assert [c for c, _ in statements(printed) if "check_srm_by" in c or "calculate_metrics" in c] == []
    assert len(statements(printed)) == 5


def test_ratios_set_the_sprt_share_and_tz_the_day_bins(capsys):
    even = sql_output(capsys, "--dialect", "duckdb", *EXAMPLE, "--ratios", "1,1")
    uneven = sql_output(capsys, "--dialect", "duckdb", *EXAMPLE, "--ratios", "control=1,treatment=3")
    assert even != uneven
    assert [c for c, _ in statements(even)] == [c for c, _ in statements(uneven)]
    utc = sql_output(capsys, "--dialect", "duckdb", "--table", "t", "--time-col", "ts", "--freq", "D")
    berlin = sql_output(
        capsys,
        "--dialect",
        "duckdb",
        "--table",
        "t",
        "--time-col",
        "ts",
        "--freq",
        "D",
        "--tz",
        "Europe/Berlin",
    )
    assert "CASE" not in utc.split(";\n")[0]
    assert "CASE" in berlin.split(";\n")[0]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--dialect", "cobol"], "dialect='cobol' is not a SQL dialect Ibis compiles to"),
        (["--dialect", "postgres", "--freq", "3D"], "freq='3D' is not a supported bin size"),
        (["--dialect", "postgres", "--ratios", "1,x"], "--ratios '1,x' is not understood"),
        (["--dialect", "postgres", "--ratios", "1,-1"], "ratio"),
        (["--dialect", "postgres", "--unit-col", "ts"], "must be distinct"),
        (["--dialect", "postgres", "--tz", "Mars/Olympus"], "Mars/Olympus"),
        (["--dialect", "postgres", "--table", "a..t"], "table='a..t' must be 'table', 'schema.table'"),
    ],
)
def test_bad_options_exit_two_with_a_message(capsys, arguments, words):
    assert main(["sql", "--table", "t", "--time-col", "ts", *arguments]) == 2
    captured = capsys.readouterr()
    assert words in captured.err
    assert captured.out == ""


def test_the_printed_postgres_sql_runs_as_the_read_only_role(capsys, postgres_server, postgres_reader):
    user, password = postgres_reader
    printed = sql_output(
        capsys,
        "--dialect",
        "postgres",
        "--table",
        f"public.{TABLE}",
        "--time-col",
        "ts",
        "--freq",
        "h",
        "--segment-col",
        "platform",
        "--metric-col",
        "revenue",
    )
    with psycopg.connect(postgres_server.url(user, password), autocommit=True) as con:
        results = {comment: con.execute(sql).fetchall() for comment, sql in statements(printed)}
    units = next(rows for comment, rows in results.items() if "check_live_srm" in comment)
    monitor = xs.LiveMonitor(postgres_server.url(user, password), time_col="ts", table=f"public.{TABLE}")
    live = monitor.check_live_srm([1, 1])
    assert dict(units) == dict(zip(live.variants, live.observed_counts, strict=True))
    traffic = next(rows for comment, rows in results.items() if "traffic matrix" in comment)
    assert sum(row[5] for row in traffic if row[0] == "matrix") == sum(count for _, count in units)
    distinct = monitor.check_multiple_exposure().units
    assert sum(row[6] for row in traffic if row[0] == "units") == distinct
    probe = next(rows for comment, rows in results.items() if "state=" in comment)
    assert {row[0] for row in probe} <= {"matrix", "units", "multiple", "pair"}
    assert all(re.fullmatch(r"-- .+", comment) for comment in results)
