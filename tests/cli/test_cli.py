"""The command line: readable report, JSON, exit codes 0/1/2, webhooks to a real local server, closed pipes,
segment, metric and guardrail options, and the demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.cli.main import main
from xpyrment_sql.cli.options import parse_guardrail, parse_metric, parse_ratios
from xpyrment_sql.errors import ParameterError

from conftest import make_log


@pytest.fixture
def healthy_path(tmp_path):
    path = tmp_path / "healthy.parquet"
    make_log(units=2000, rows=20_000, days=10).to_parquet(path)
    return str(path)


@pytest.fixture
def broken_path(tmp_path):
    log = make_log(units=4000, rows=40_000, days=10)
    lost = (log.variant == "treatment") & (log.unit_id % 5 == 0)
    path = tmp_path / "broken.parquet"
    log[~lost].to_parquet(path)
    return str(path)


def test_healthy_log_exits_zero_with_a_readable_report(healthy_path, capsys):
    code = main(
        ["check", healthy_path, "--time-col", "ts", "--ratios", "control=1,treatment=1", "--freq", "h"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "healthy: no alert fired" in out
    assert "SRM (chi-square)" in out
    assert "control" in out


def test_an_srm_exits_one_and_names_the_alerts(broken_path, capsys):
    code = main(["check", broken_path, "--time-col", "ts", "--ratios", "1,1", "--freq", "h"])
    out = capsys.readouterr().out
    assert code == 1
    assert "ALERTS: SRM_SHUTOFF_TRIGGERED, SEQUENTIAL_SRM_TRIGGERED (shutoff triggered)" in out


def test_json_output_is_the_full_result(broken_path, capsys):
    code = main(["check", broken_path, "--time-col", "ts", "--ratios", "1,1", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 1
    assert result["cumulative_srm"]["srm_detected"] is True
    assert result["cumulative_srm"]["observed_counts"] == [2000, 1600]
    assert len(result["traffic"]["bins"]) == 10


@pytest.mark.parametrize("method", ["changepoint", "anytime", "sprt"])
def test_the_sequential_method_is_chosen_by_name(broken_path, capsys, method):
    args = ["check", broken_path, "--time-col", "ts", "--ratios", "1,1", "--json"]
    assert main([*args, "--sequential-method", method]) == 1
    sequential = json.loads(capsys.readouterr().out)["sequential_srm"]
    assert sequential["srm_detected"] is True
    if method != "sprt":
        assert sequential["method"] == method
    if method == "changepoint":
        assert sequential["onset_at"] is not None, "the change-point method names the onset day"
    with pytest.raises(SystemExit) as info:
        main([*args, "--sequential-method", "wald"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--time-col", "when", "--ratios", "1,1"], "time_col='when' is not a column"),
        (["--time-col", "ts", "--ratios", "1,1,1"], "expected_ratios has 3 value(s)"),
        (["--time-col", "ts", "--ratios", "control=x"], "--ratios 'control=x' is not understood"),
        (["--time-col", "ts", "--ratios", "1,1", "--freq", "month"], "freq='month'"),
    ],
)
def test_bad_input_exits_two_with_the_reason(healthy_path, capsys, args, words):
    assert main(["check", healthy_path, *args]) == 2
    assert words in capsys.readouterr().err


def test_missing_required_argument_exits_two(healthy_path):
    with pytest.raises(SystemExit) as info:
        main(["check", healthy_path, "--ratios", "1,1"])
    assert info.value.code == 2


def test_ratio_parsing():
    assert parse_ratios("control=1, treatment=3") == {"control": 1.0, "treatment": 3.0}
    assert parse_ratios("1,1,2") == [1.0, 1.0, 2.0]
    with pytest.raises(ParameterError):
        parse_ratios("control=1,2")


def test_webhook_receives_the_alerts_and_the_url_is_not_printed(broken_path, capsys, webhook):
    url = f"{webhook.url}/hooks/SECRET-TOKEN"
    code = main(["check", broken_path, "--time-col", "ts", "--ratios", "1,1", "--webhook", url])
    captured = capsys.readouterr()
    assert code == 1
    kinds = [body["alert_type"] for _, body in webhook.bodies]
    assert kinds == ["SRM_SHUTOFF_TRIGGERED", "SEQUENTIAL_SRM_TRIGGERED"]
    assert webhook.bodies[0][1]["details"]["observed_counts"] == [2000, 1600]
    assert "SECRET-TOKEN" not in captured.out + captured.err


def test_console_script_runs_the_demo(tmp_path):
    """With --json, stdout is exactly one JSON object; where the files are goes to stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "xpyrment_sql.cli", "demo", "--out", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(result.stdout)
    assert "SRM_SHUTOFF_TRIGGERED" in report["alerts_triggered"]
    assert "TRAFFIC_DROP_ANOMALY" in report["alerts_triggered"]
    written = pd.read_parquet(tmp_path / "exposures.parquet", columns=["variant"])
    assert len(written) > 1_000_000
    assert np.isin(written.variant.unique(), ["control", "treatment"]).all()
    page = tmp_path / "report.html"
    assert f"report: {page.resolve()}" in result.stderr, "with --json the path goes to stderr"
    assert "<h2>SQL that ran</h2>" in page.read_text()


def test_the_demo_says_where_its_files_are_and_how_to_remove_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("xpyrment-demo-")]
    assert f"report: {(folder / 'report.html').resolve()}" in out
    where = folder.resolve()
    assert out.rstrip().endswith(f"files in {where}: remove them with `rm -r {where}` (or pass --out)")
    assert sorted(p.name for p in folder.iterdir()) == ["exposures.parquet", "report.html"]
    page = (folder / "report.html").read_text()
    assert "TRAFFIC_DROP_ANOMALY" in page
    assert "<h1>Experiment monitoring report: demo exposure log (synthetic)</h1>" in page
    assert str(tmp_path) not in page.split("<h2>")[0], "the title names the log, not a temporary path"
    assert "Judged bin: 2026-01-11 22:00:00" in out, "the bin before the one in progress is judged"
    assert "2026-01-11 23:00:00 (in progress)" in out


def _closed_pipe_run(*args):
    """Run the console script with stdout a pipe whose reader is gone before it writes a byte."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "xpyrment_sql.cli", *args],
            stdout=writer, stderr=subprocess.PIPE, text=True, timeout=300, check=False,
        )  # fmt: skip
    finally:
        os.close(writer)
    return result


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_a_closed_pipe_is_quiet_and_keeps_the_runs_exit_code(healthy_path, broken_path, extra):
    healthy = _closed_pipe_run("check", healthy_path, "--time-col", "ts", "--ratios", "1,1", *extra)
    broken = _closed_pipe_run("check", broken_path, "--time-col", "ts", "--ratios", "1,1", *extra)
    assert (healthy.returncode, healthy.stderr) == (0, ""), "no alert: 0, and no traceback"
    assert (broken.returncode, broken.stderr) == (1, ""), "an alert fired: 1, as without the pipe"


def test_head_reading_one_line_of_the_help_is_not_an_error():
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m xpyrment_sql.cli check --help | head -n 1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.startswith("usage: xpyrment-sql check")
    assert "Traceback" not in result.stderr


@pytest.fixture
def product_path(tmp_path):
    """The healthy log with a platform segment, and a latency 10% higher in treatment (a guardrail breach)."""
    log = make_log(units=2000, rows=20_000, days=10)
    log["platform"] = np.asarray(["ios", "android", "web"])[log.unit_id % 3]
    log["latency"] = np.where(log.variant == "treatment", 110.0, 100.0) + (log.unit_id % 7)
    log["revenue"] = (log.unit_id % 5).astype(float)
    log["orders"] = 1 + log.unit_id % 2
    path = tmp_path / "product.parquet"
    log.to_parquet(path)
    return str(path)


def _strict_json(text):
    """Parse JSON that must be standard: NaN or Infinity in it fails."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON output"))


def test_segments_metrics_and_guardrails_reach_json_and_alert(product_path, capsys):
    args = ["check", product_path, "--time-col", "ts", "--ratios", "1,1", "--segment-col", "platform"]
    args += ["--metric", "revenue/orders:ratio", "--guardrail", "latency:mean:increase:0.02", "--json"]
    code = main(args)
    result = _strict_json(capsys.readouterr().out)
    assert code == 1
    assert result["alerts_triggered"] == ["GUARDRAIL_BREACH"]
    assert result["source"] == "product.parquet (duckdb)"
    assert result["unit_col"] == "unit_id"
    segments = result["segment_srm"]
    assert segments["dimension_cols"] == ["platform"]
    assert sorted(row["platform"] for row in segments["table"]) == ["android", "ios", "web"]
    (guardrail,) = result["guardrails"]["results"]
    assert (guardrail["metric_name"], guardrail["status"]) == ("latency", "breach")
    assert guardrail["relative_lift"] > 0.02
    (metric,) = result["metrics"]["results"]
    assert metric["metric_name"] == "revenue/orders"
    anomaly = result["traffic_anomaly"]
    assert anomaly["judged_bin"] == "2026-01-13T00:00:00"
    assert anomaly["unfinished_bin"] == "2026-01-14T00:00:00"
    assert result["traffic"]["unfinished"] is True


def test_segments_metrics_and_guardrails_in_the_text_and_the_report(product_path, tmp_path, capsys):
    args = ["--time-col", "ts", "--ratios", "1,1", "--segment-col", "platform", "--metric", "latency:mean"]
    args += ["--guardrail", "latency:mean:increase:2%"]
    assert main(["check", product_path, *args]) == 1
    out = capsys.readouterr().out
    assert "SRM by segment:" in out
    assert len(re.findall(r"^\s*platform=(ios|android|web)\s", out, flags=re.MULTILINE)) == 3
    assert re.search(r"guardrail latency \(treatment\)\s*ALERT", out)
    assert "latency (treatment): +" in out, "the metric's relative lift"
    page = tmp_path / "r.md"
    assert main(["report", product_path, *args, "--out", str(page)]) == 1
    text = page.read_text()
    assert "## SRM by segment" in text
    assert "## Metrics" in text
    assert "## Guardrails" in text


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--guardrail", "latency:mean", "--guardrail 'latency:mean' is not understood; expected COLUMN:KIND"),
        ("--guardrail", "latency:median:increase:0.02", "kind 'median' is not one of mean, proportion"),
        ("--guardrail", "latency:mean:up:0.02", "direction 'up' is not one of both, increase, decrease"),
        ("--guardrail", "latency:mean:increase:two", "tolerance 'two' is not a relative change >= 0"),
        ("--guardrail", "latency:mean:increase:-1%", "tolerance '-1%' is not a relative change >= 0"),
        ("--guardrail", "revenue:ratio:decrease:0.05", "a ratio names NUMERATOR/DENOMINATOR columns"),
        ("--metric", "latency", "--metric 'latency' is not understood; expected COLUMN:KIND"),
        ("--metric", "latency:avg", "--metric 'latency:avg': kind 'avg' is not one of mean, proportion"),
        ("--metric", "missing:mean", "value_col='missing' is not a column"),
    ],
)
def test_bad_metric_and_guardrail_options_exit_two_naming_them(product_path, capsys, option, value, words):
    assert main(["check", product_path, "--time-col", "ts", "--ratios", "1,1", option, value]) == 2
    assert words in capsys.readouterr().err


def test_guardrail_and_metric_syntax():
    guardrail = parse_guardrail("revenue/orders:ratio:decrease:5%:ci:shutoff")
    assert guardrail.metric == xs.RatioMetric("revenue/orders", "revenue", "orders")
    assert (guardrail.max_allowed_change, guardrail.direction) == (0.05, "decrease")
    assert (guardrail.method, guardrail.shutoff) == ("ci", True)
    plain = parse_guardrail("load:ms:mean:both:0.1")
    assert plain.metric == xs.MeanMetric("load:ms", "load:ms"), "fields are read from the right"
    assert (plain.method, plain.shutoff) == ("point", False)
    assert parse_metric("buyers:proportion") == xs.ProportionMetric("buyers", "buyers")


def test_drop_method_and_until_now_reach_the_checks(product_path, capsys):
    args = ["check", product_path, "--time-col", "ts", "--ratios", "1,1", "--json"]
    assert main([*args, "--drop-method", "zscore", "--z-threshold", "2.5"]) == 0
    anomaly = _strict_json(capsys.readouterr().out)["traffic_anomaly"]
    assert (anomaly["method"], anomaly["threshold"]) == ("zscore", 2.5)
    main([*args, "--until", "now"])
    traffic = _strict_json(capsys.readouterr().out)["traffic_anomaly"]
    today = pd.Timestamp.now(tz="UTC").floor("D").tz_localize(None)
    assert pd.Timestamp(traffic["unfinished_bin"]) == today, "evaluated now: today's bin is in progress"
    with pytest.raises(SystemExit) as info:
        main([*args, "--drop-method", "median"])
    assert info.value.code == 2


def test_the_text_names_the_log_the_unit_column_and_counts_distinct_units(tmp_path, capsys):
    log = make_log(units=2000, rows=20_000, days=10)
    leaked = log[log.unit_id < 40].assign(variant="treatment")  # 20 control units also seen in treatment
    log = pd.concat([log, leaked])
    path = tmp_path / "leaky.parquet"
    log.to_parquet(path)
    main(["check", str(path), "--time-col", "ts", "--ratios", "1,1"])
    out = capsys.readouterr().out
    distinct = log.unit_id.nunique()
    pairs = log.groupby("variant").unit_id.nunique().sum()
    assert (distinct, pairs) == (2000, 2020)
    assert "xpyrment-sql check: leaky.parquet (duckdb)" in out
    assert str(tmp_path) not in out
    assert "Unit column: unit_id (the column named unit_id)." in out
    counted = "2,000 distinct units (2,020 (unit, variant) pairs; 20 units seen under more than one variant)"
    assert counted in out
    assert not re.search(r"2,020 units", out), "a (unit, variant) pair count is never called units"


def test_an_epoch_time_column_needs_and_takes_its_unit(tmp_path, capsys):
    log = make_log(units=500, rows=4000, days=3)
    path = tmp_path / "epoch.csv"
    log.assign(ts=log.ts.astype("int64") // 1_000_000).to_csv(path, index=False)
    base = ["check", str(path), "--time-col", "ts", "--ratios", "1,1", "--json"]
    assert main(base) == 2
    assert "time_unit" in capsys.readouterr().err
    assert main([*base, "--time-unit", "ms"]) in (0, 1)
    result = json.loads(capsys.readouterr().out)
    assert sum(result["cumulative_srm"]["observed_counts"]) == log.groupby("variant").unit_id.nunique().sum()


@pytest.mark.parametrize("timeout", ["0", "-1", "nan"])
def test_a_bad_alert_timeout_is_a_clear_error(healthy_path, capsys, timeout):
    code = main(["check", healthy_path, "--time-col", "ts", "--ratios", "1,1", "--alert-timeout", timeout])
    assert code == 2
    assert "timeout must be a finite number of seconds > 0" in capsys.readouterr().err


def test_a_state_file_from_cron_reads_only_new_rows_and_verifies(tmp_path, capsys):
    log = make_log(units=600, rows=6000, days=4)
    path = tmp_path / "log.parquet"
    state = tmp_path / "state.duckdb"
    base = ["check", str(path), "--time-col", "ts", "--ratios", "1,1", "--freq", "h", "--state", str(state)]
    log[log.ts < pd.Timestamp("2026-01-08")].to_parquet(path)
    assert main(base) in (0, 1)
    assert "built from the whole log" in capsys.readouterr().out
    log.to_parquet(path)
    assert main([*base, "--verify", "--json"]) in (0, 1)
    result = json.loads(capsys.readouterr().out)
    assert result["state"]["full_build"] is False
    assert result["state"]["verified"] is True
    assert main([*base, "--freq", "D"]) == 2
    assert "--full-refresh" in capsys.readouterr().err
