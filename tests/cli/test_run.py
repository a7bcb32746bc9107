"""One run of the checks for the report: no query beyond the checks, every statement named by its check,
the chart's place kept without matplotlib, and the ``report`` command writing HTML and Markdown."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import xpyrment_sql as xs
from xpyrment_sql.cli.main import main
from xpyrment_sql.cli.run import run_report
from xpyrment_sql.queries.log import check_name
from xpyrment_sql.reporting.documents import render_html
from xpyrment_sql.settings import CheckSettings, Design

from conftest import latency_guardrails


def test_the_report_costs_no_query_beyond_the_checks(broken_log, query_log):
    xs.LiveMonitor(broken_log, time_col="ts").run_telemetry_checks(
        [1, 1], freq="h", guardrails=latency_guardrails()
    )
    checks_alone = list(query_log)
    monitor = xs.LiveMonitor(broken_log, time_col="ts")
    query_log.clear()
    report = run_report(
        monitor, Design([1, 1]), CheckSettings(freq="h"), source_name="x", guardrails=latency_guardrails()
    )
    assert [check_name(sql) for sql in checks_alone] == [
        "metric moments (guardrails)",
        "traffic matrix and multiple exposure (anomaly, SRM tests)",
    ], "the span comes from the Parquet footers, not from a query over the rows"
    assert _tables_renamed(query_log) == _tables_renamed(checks_alone), "an outer verbose log sees them"
    assert [s.sql for s in report.statements] == query_log, "the SQL section holds exactly what ran"
    assert [s.check for s in report.statements] == [check_name(sql) for sql in query_log]


def test_opening_statements_come_first_and_are_named_too(broken_log):
    opening = ['SELECT MIN("ts") AS "start", COUNT(*) AS "rows" FROM log']
    monitor = xs.LiveMonitor(broken_log, time_col="ts")
    report = run_report(
        monitor,
        Design([1, 1]),
        CheckSettings(freq="h"),
        source_name="x",
        opening_statements=opening,
        chart=False,
    )
    assert report.statements[0] == (check_name(opening[0]), opening[0])
    assert report.statements[0].check == "time span of the log"
    assert report.chart_png is None, "no chart asked for, none drawn"
    assert report.chart_note == ""


def _tables_renamed(statements):
    """The statements with each monitor's generated Parquet view name replaced by one placeholder."""
    return [re.sub(r"ibis_read_parquet_\w+", "LOG", sql) for sql in statements]


def test_without_matplotlib_the_report_says_how_to_get_the_chart(broken_log, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    report = run_report(
        xs.LiveMonitor(broken_log, time_col="ts"), Design([1, 1]), CheckSettings(freq="h"), source_name="x"
    )
    assert report.chart_png is None
    assert "pip install matplotlib" in html.unescape(render_html(report))


def test_report_command_writes_html_and_markdown(broken_log, tmp_path, capsys):
    out = tmp_path / "report.html"
    args = ["report", broken_log, "--time-col", "ts", "--ratios", "1,1"]
    code = main([*args, "--freq", "h", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1, "an alert fired"
    assert f"report: {out.resolve()}" in printed
    page = out.read_text()
    assert "<h2>SQL that ran</h2>" in page
    assert "<h1>Experiment monitoring report: broken.parquet (duckdb)</h1>" in page, "the file's name"
    assert str(Path(broken_log).parent) not in page, "no temporary path in a shared report"
    md = tmp_path / "ticket.txt"
    assert main([*args, "--out", str(md), "--format", "md"]) == 1
    assert md.read_text().startswith("# Experiment monitoring report")
    assert main([*args, "--out", "r.pdf"]) == 2
    assert "path='r.pdf'" in capsys.readouterr().err
