"""The command line: readable report, JSON, exit codes 0/1/2, webhooks to a real local server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from xpyrment_sql.cli import main, parse_ratios
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


class _Recorder(BaseHTTPRequestHandler):
    bodies: ClassVar[list] = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        type(self).bodies.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_receives_the_alerts_and_the_url_is_not_printed(broken_path, capsys):
    _Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/hooks/SECRET-TOKEN"
    try:
        code = main(["check", broken_path, "--time-col", "ts", "--ratios", "1,1", "--webhook", url])
    finally:
        server.shutdown()
    captured = capsys.readouterr()
    assert code == 1
    kinds = [body["alert_type"] for _, body in _Recorder.bodies]
    assert kinds == ["SRM_SHUTOFF_TRIGGERED", "SEQUENTIAL_SRM_TRIGGERED"]
    assert _Recorder.bodies[0][1]["details"]["observed_counts"] == [2000, 1600]
    assert "SECRET-TOKEN" not in captured.out + captured.err


def test_console_script_runs_the_demo(tmp_path):
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


def test_the_demo_prints_where_its_report_is(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"report: {(tmp_path / 'report.html').resolve()}")
    assert "TRAFFIC_DROP_ANOMALY" in (tmp_path / "report.html").read_text()
