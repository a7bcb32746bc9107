"""The shareable report: content, formats, no extra query, and the HTML opened in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import matplotlib.image
import pandas as pd
import pytest

import xpyrment_sql as xs
from xpyrment_sql.cli import main
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.monitoring_report import report_sections, run_report
from xpyrment_sql.report_formats import render_html, write_report
from xpyrment_sql.synthetic import write_exposure_log

HEADINGS = [
    "Verdict", "Checks", "Traffic chart", "Traffic", "Sample ratio mismatch", "Guardrails",
    "SQL that ran", "Run",
]  # fmt: skip


@pytest.fixture(scope="module")
def broken_log(tmp_path_factory):
    """Treatment units lost from a quarter of the span on: both SRM tests fire."""
    path = tmp_path_factory.mktemp("report") / "broken.parquet"
    write_exposure_log(
        path, rows=40_000, days=2, rows_per_unit=1.5, diurnal=False, seed=5,
        srm={"arm": "treatment", "keep": 0.5, "after": 0.25},
    )  # fmt: skip
    return str(path)


def _guardrails():
    return [xs.GuardrailMetric(xs.MeanMetric("latency", "value"), 0.02, direction="increase")]


@pytest.fixture(scope="module")
def run(broken_log):
    monitor = xs.LiveMonitor(broken_log, time_col="ts")
    return run_report(monitor, [1, 1], source_name="broken.parquet", freq="h", guardrails=_guardrails())


class _Outline(HTMLParser):
    """Headings and every URL-bearing attribute of a page."""

    def __init__(self):
        super().__init__()
        self.headings, self.urls, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self._in = tag if tag in ("h1", "h2") else None
        self.urls += [value for name, value in attrs if name in ("src", "href", "action", "data")]

    def handle_data(self, data):
        if self._in == "h2":
            self.headings.append(data)

    def handle_endtag(self, tag):
        self._in = None


def test_the_html_holds_every_section_and_references_nothing_outside(run):
    page = render_html(run)
    outline = _Outline()
    outline.feed(page)
    assert outline.headings == HEADINGS
    assert outline.urls, "the chart is embedded"
    assert all(url.startswith("data:image/png;base64,") for url in outline.urls)
    assert "default-src 'none'" in page
    assert "SRM_SHUTOFF_TRIGGERED" in page
    assert "latency" in page, "the guardrail is reported"
    assert run.started_at.isoformat(timespec="seconds") in page


def test_the_report_costs_no_query_beyond_the_checks(broken_log, query_log):
    xs.LiveMonitor(broken_log, time_col="ts").run_telemetry_checks([1, 1], freq="h", guardrails=_guardrails())
    checks_alone = list(query_log)
    monitor = xs.LiveMonitor(broken_log, time_col="ts")
    query_log.clear()
    report = run_report(monitor, [1, 1], source_name="x", freq="h", guardrails=_guardrails())
    assert len(checks_alone) == 4, "span, guardrail moments, traffic matrix, multiple exposure"
    assert _tables_renamed(query_log) == _tables_renamed(checks_alone[1:]), "an outer verbose log sees them"
    assert list(report.statements) == query_log, "the SQL section holds exactly what ran"


def _tables_renamed(statements):
    """The statements with each monitor's generated Parquet view name replaced by one placeholder."""
    return [re.sub(r"ibis_read_parquet_\w+", "LOG", sql) for sql in statements]


def test_the_sql_section_names_each_statement_by_its_check(run):
    sections = {section.heading: section for section in report_sections(run)}
    titles = [block.title for block in sections["SQL that ran"].blocks]
    assert titles == [
        "1. metric moments (guardrails)",
        "2. traffic matrix (anomaly, chi-square and anytime-valid SRM)",
        "3. multiple exposure",
    ]
    assert sections["SQL that ran"].blocks[1].text == run.statements[1]


def test_srm_numbers_match_the_raw_log(run, broken_log):
    units = pd.read_parquet(broken_log).groupby("variant").unit_id.nunique()
    page = render_html(run)
    for variant, n in units.items():
        share = n / units.sum()
        assert f"<td>{variant}</td><td>{n:,}</td><td>{share:.4%}</td><td>50.0000%</td>" in page


def test_markdown_writes_the_chart_next_to_it(run, tmp_path):
    path = write_report(run, tmp_path / "ticket.md")
    text = path.read_text()
    assert re.findall(r"^## (.+)$", text, flags=re.MULTILINE) == HEADINGS
    assert "![traffic chart](ticket-traffic.png)" in text
    assert (tmp_path / "ticket-traffic.png").read_bytes().startswith(b"\x89PNG")
    assert "| traffic anomaly | ok |" in text
    assert "```sql" in text


@pytest.mark.parametrize(
    ("path", "chosen", "words"),
    [("report.pdf", None, "report.pdf' must end in .html or .md"), ("r.html", "pdf", "format='pdf'")],
)
def test_unknown_report_formats_are_rejected(run, tmp_path, path, chosen, words):
    with pytest.raises(ParameterError) as info:
        write_report(run, tmp_path / path, chosen)
    assert words in str(info.value)


def test_without_matplotlib_the_report_says_how_to_get_the_chart(broken_log, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    report = run_report(xs.LiveMonitor(broken_log, time_col="ts"), [1, 1], source_name="x", freq="h")
    assert report.chart_png is None
    assert "pip install 'xpyrment-sql[plot]'" in html.unescape(render_html(report))


def test_report_command_writes_html_and_markdown(broken_log, tmp_path, capsys):
    out = tmp_path / "report.html"
    args = ["report", broken_log, "--time-col", "ts", "--ratios", "1,1"]
    code = main([*args, "--freq", "h", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1, "an alert fired"
    assert f"report: {out.resolve()}" in printed
    assert "<h2>SQL that ran</h2>" in out.read_text()
    md = tmp_path / "ticket.txt"
    assert main([*args, "--out", str(md), "--format", "md"]) == 1
    assert md.read_text().startswith("# Experiment monitoring report")
    assert main([*args, "--out", "r.pdf"]) == 2
    assert "path='r.pdf'" in capsys.readouterr().err


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: run scripts/install_os_packages.sh (as root) first")
    return found


def _open_in_chromium(page, tmp_path, name):
    """Load ``page`` in headless Chromium: its DOM, a screenshot, and the URLs the page requested."""
    net_log, shot = tmp_path / f"{name}-net.json", tmp_path / f"{name}.png"
    flags = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / (name + '-profile')}", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        '--host-resolver-rules=MAP * ~NOTFOUND', f"--log-net-log={net_log}", "--window-size=1200,2400",
    ]  # fmt: skip
    url = page.as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True)
    requested = _page_requests(net_log)
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    return dom.stdout, shot, requested | _page_requests(net_log)


BROWSER_INTERNAL = "not an origin"
"""The net log's initiator of Chromium's own jobs (update checks and the like), not a page's."""


def _page_requests(net_log) -> set[str]:
    """URLs requested on behalf of a page (browser-internal jobs have no origin and are left out)."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return {
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start
        and event.get("params", {}).get("initiator", BROWSER_INTERNAL) != BROWSER_INTERNAL
    }


def test_chromium_renders_the_report_and_no_request_leaves_the_machine(run, tmp_path):
    canary = tmp_path / "canary.html"
    canary.write_text(
        '<html><head><link rel="stylesheet" href="https://fonts.example.invalid/a.css"></head>'
        '<body><h2>canary</h2><img src="http://127.0.0.1:9/pixel.png"></body></html>'
    )
    _, _, canary_requests = _open_in_chromium(canary, tmp_path, "canary")
    assert canary_requests == {"https://fonts.example.invalid/a.css", "http://127.0.0.1:9/pixel.png"}, (
        "the net log sees a page's requests"
    )

    page = write_report(run, tmp_path / "report.html")
    dom, shot, requested = _open_in_chromium(page, tmp_path, "report")
    assert requested == set(), "opening the report requested nothing"
    outline = _Outline()
    outline.feed(dom)
    assert outline.headings == HEADINGS
    image = matplotlib.image.imread(shot)
    assert image.shape[:2] == (2400, 1200)
    assert image[..., :3].std() > 0.05, "the screenshot shows a rendered page, not a blank one"
