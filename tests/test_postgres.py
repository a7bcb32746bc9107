"""Against a real PostgreSQL server: the monitor only reads, as a role that may only SELECT.

The role cannot create anything (no TEMPORARY on the database, no CREATE on any schema), the server
logs every statement with the role that sent it, and ``pg_class`` is counted before and after, with
the monitor's connection still open so that its temporary relations would still be there.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import psycopg
import pytest

import xpyrment_sql as xs
from xpyrment_sql.cli.main import main
from xpyrment_sql.errors import SourceError

from backends import TABLE, relation_count

WRITES = re.compile(r"\b(CREATE|INSERT|UPDATE|DELETE|DROP|ALTER|TRUNCATE|COPY|GRANT|MERGE)\b", re.IGNORECASE)


def test_the_role_can_read_the_table_and_nothing_else(postgres_server, postgres_reader):
    user, password = postgres_reader
    with psycopg.connect(postgres_server.url(user, password), autocommit=True) as con:
        assert con.execute(f"SELECT count(*) FROM public.{TABLE}").fetchone()[0] > 3000
        for statement in ("CREATE TEMP TABLE scratch (x int)", "CREATE TABLE public.scratch (x int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute(statement)


def test_every_check_runs_read_only_and_creates_nothing(postgres_server, postgres_reader):
    user, password = postgres_reader
    before = relation_count(postgres_server)
    logged_before = len(postgres_server.statements_by(user))
    monitor = xs.LiveMonitor(postgres_server.url(user, password), time_col="ts", table=f"public.{TABLE}")
    report = monitor.run_telemetry_checks(
        {"control": 1, "treatment": 1},
        freq="h",
        sequential_method="sprt",
        guardrails=[xs.GuardrailMetric(xs.MeanMetric("revenue", "revenue"), 0.01)],
    )
    assert report.sequential_srm.stopped_index >= 0, "the SPRT's window query ran"
    monitor.check_srm_by("platform", [1, 1])
    monitor.check_live_srm([1, 1])
    monitor.check_anytime_srm([1, 1], freq="15min")
    monitor.calculate_metrics([xs.RatioMetric("revenue per purchase", "revenue", "purchased")])
    assert relation_count(postgres_server) == before, "the monitor's connection created a relation"
    sent = postgres_server.statements_by(user)[logged_before:]
    assert sum("SELECT" in statement for statement in sent) >= 7
    assert [s for s in sent if WRITES.search(s)] == []
    monitor.source.backend.disconnect()
    assert relation_count(postgres_server) == before


def test_cli_reads_a_url_and_never_prints_the_password(postgres_server, postgres_reader):
    user, password = postgres_reader
    url = postgres_server.url(user, password)
    done = _cli(
        ["check", url, "--table", f"public.{TABLE}", "--time-col", "ts", "--ratios", "1,1", "--freq", "h"]
    )
    assert done.returncode == 1, done.stderr
    assert "SRM_SHUTOFF_TRIGGERED" in done.stdout
    assert f"{user}:***@127.0.0.1" in done.stdout
    assert password not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("table", "password_ok", "words"),
    [
        ("public.no_such_table", True, "table 'public.no_such_table' was not found at postgres://"),
        (f"public.{TABLE}", False, "could not connect to postgres://"),
    ],
)
def test_cli_errors_name_the_problem_without_the_password(
    postgres_server, postgres_reader, table, password_ok, words
):
    user, password = postgres_reader
    given = password if password_ok else password + "-wrong"
    url = postgres_server.url(user, given)
    done = _cli(["check", url, "--table", table, "--time-col", "ts", "--ratios", "1,1", "--json"])
    assert done.returncode == 2
    assert words in done.stderr
    assert ":***@127.0.0.1" in done.stderr
    assert given not in done.stdout + done.stderr
    assert password not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_library_errors_never_hold_the_password(postgres_server, postgres_reader):
    user, password = postgres_reader
    with pytest.raises(SourceError) as info:
        xs.LiveMonitor(postgres_server.url(user, password), time_col="ts", table="public.missing")
    assert password not in str(info.value)
    assert password not in repr(info.value.__cause__) + repr(info.value.__context__)


def test_the_cli_main_accepts_the_url_in_process(postgres_server, postgres_reader, capsys):
    user, password = postgres_reader
    url = postgres_server.url(user, password)
    code = main(["check", url, "--table", f"public.{TABLE}", "--time-col", "ts", "--ratios", "1,1", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert password not in captured.out + captured.err


def _cli(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "xpyrment_sql.cli", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_a_state_file_follows_a_growing_table_with_one_read_only_probe(
    postgres_server, postgres_reader, tmp_path
):
    """The state stays in a local file; each later run sends one SELECT returning counts only, and
    its numbers equal a full run's on the grown table (a late row within the allowance included)."""
    user, password = postgres_reader
    url = postgres_server.url(user, password)
    ratios = {"control": 1, "treatment": 1}
    with postgres_server.connect() as admin:
        start, end = admin.execute(f"SELECT min(ts), max(ts) FROM public.{TABLE}").fetchone()
        cut = start + (end - start) * 0.7
        admin.execute(f"CREATE TABLE public.growing (LIKE public.{TABLE})")
        admin.execute(f"INSERT INTO public.growing SELECT * FROM public.{TABLE} WHERE ts < %s", [cut])
        admin.execute(f"GRANT SELECT ON public.growing TO {user}")
    try:
        before = relation_count(postgres_server)
        logged_before = len(postgres_server.statements_by(user))
        state = tmp_path / "monitor-state.duckdb"
        first = xs.LiveMonitor(url, time_col="ts", table="public.growing", state=state)
        assert first.run_telemetry_checks(ratios, freq="h").state.full_build
        with postgres_server.connect() as admin:
            admin.execute(f"INSERT INTO public.growing SELECT * FROM public.{TABLE} WHERE ts >= %s", [cut])
            late = "('user-late', 'treatment', %s, 'web', 1.0, false)"
            admin.execute(f"INSERT INTO public.growing VALUES {late}", [cut - dt.timedelta(minutes=20)])
        probed_from = len(postgres_server.statements_by(user))
        kept = xs.LiveMonitor(url, time_col="ts", table="public.growing", state=state)
        report = kept.run_telemetry_checks(ratios, freq="h")
        probe = [s for s in postgres_server.statements_by(user)[probed_from:] if "growing" in s]
        full = xs.LiveMonitor(url, time_col="ts", table="public.growing").run_telemetry_checks(
            ratios, freq="h"
        )
        assert not report.state.full_build
        assert {**report.to_dict(), "state": None} == {**full.to_dict(), "state": None}
        assert report.multiple_exposure.multiple_units >= 1, "the log's crossover unit is counted"
        assert len([s for s in probe if "GROUP BY" in s]) == 1, "one probe query per later run"
        assert relation_count(postgres_server) == before, "nothing was created on the server"
        sent = postgres_server.statements_by(user)[logged_before:]
        assert [s for s in sent if WRITES.search(s)] == []
        assert state.exists()
    finally:
        with postgres_server.connect() as admin:
            admin.execute("DROP TABLE public.growing")


def test_check_all_runs_as_the_select_only_role(postgres_server, postgres_reader, tmp_path):
    """The fleet's queries on PostgreSQL: SELECTs only, ``pg_class`` unchanged (platform stands in for
    the experiment column)."""
    user, password = postgres_reader
    config = tmp_path / "fleet.toml"
    config.write_text('[defaults]\nfreq = "h"\nratios = { control = 1, treatment = 1 }\n')
    before = relation_count(postgres_server)
    logged_before = len(postgres_server.statements_by(user))
    monitor = xs.LiveMonitor(postgres_server.url(user, password), time_col="ts", table=f"public.{TABLE}")
    fleet = monitor.check_all(config, experiment_col="platform")
    assert {status.experiment for status in fleet.experiments} == {"android", "ios", "web"}
    assert fleet["android"].status == "shutoff"
    builds = []
    for _ in range(2):
        kept = xs.LiveMonitor(
            postgres_server.url(user, password),
            time_col="ts",
            table=f"public.{TABLE}",
            state=tmp_path / "fleet-state.duckdb",
        )
        again = kept.check_all(config, experiment_col="platform")
        kept.source.backend.disconnect()
        for status in fleet.experiments:
            assert again[status.experiment].report.traffic.to_dict() == status.report.traffic.to_dict()
        builds.append(again["ios"].report.state.full_build)
    assert builds == [True, False], "the second run probed the window with the local state file"
    sent = postgres_server.statements_by(user)[logged_before:]
    assert [s for s in sent if WRITES.search(s)] == []
    assert relation_count(postgres_server) == before
    monitor.source.backend.disconnect()
